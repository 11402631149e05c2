#!/usr/bin/env bash
# perf/compare_onnxruntime.sh: whole-network inference, clcnn vs ONNX Runtime (CPU).
#
#   perf/compare_onnxruntime.sh [--models LIST] [--batch N] [--rounds N] [--runs N]
#       [--warmup N] [--threads N] [--variant NAME='ARGS']... [--build DIR]
#       [--onnx-dir DIR] [--venv DIR] [--csv FILE] [--no-install]
#
#   --models LIST   comma/space-separated (default: resnet50,mobilenet_v2); any of
#                   resnet50 mobilenet_v2 alexnet vgg16 (clcnn's zoo, perf/onnx_export.py)
#                   and resnet18 efficientnet_b0 (not in the zoo: clcnn runs the ONNX
#                   export, as ORT does)
#   --batch N       images per call (default 8)
#   --rounds N      rounds per model (default 2): each round runs every clcnn variant and
#                   ORT once, in turn (every other round in reverse order), so a shared,
#                   noisy machine weighs on all of them alike
#   --runs N        timed runs per call, clcnn-perf and ORT alike (default 5)
#   --warmup N      ORT's untimed calls (default 1, as clcnn-perf's one warm-up)
#   --threads N     ORT's intra-op threads (default: nproc)
#   --variant NAME='ARGS'  a clcnn run: clcnn-perf --op net_infer --model M --batch N
#                   --runs N --no-peak --format csv --quiet ARGS; repeat for several
#                   (e.g. --variant layers='--exec layers' --variant plan='--exec plan'
#                   --variant onnx='--model {onnx}', {onnx} being the model's export);
#                   default plan='--exec plan' (clcnn-perf's --exec all would give two rows)
#   --build DIR     holds clcnn-perf (default build)
#   --onnx-dir DIR  the exports (default build/onnx; made by perf/onnx_export.py if missing)
#   --venv DIR      Python venv with onnxruntime (default .venv-ort; made if missing,
#                   from /usr/bin/python3 with --system-site-packages)
#   --csv FILE      also write every measurement (round, model, runner, images/s, ms)
#   --no-install    fail instead of running apt-get / pip when something is missing
#
# A perf tool only: onnxruntime (PyPI) and Debian's PyTorch (the exporter) are never
# dependencies of the library or its tests. Environment: ORT_VERSION pins the pip
# install (default: the newest onnxruntime pip finds); CLCNN_* pass through to clcnn-perf.
# Prints a table: model | each variant's images/s | ORT images/s | variant/ORT ratios,
# each images/s the median over the rounds of each call's median (mean for 2 rounds).
set -euo pipefail

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; }
here=$(cd "$(dirname "$0")" && pwd)
tool=compare_onnxruntime.sh
# shellcheck source=perf/compare_common.sh
. "$here/compare_common.sh"

models="resnet50,mobilenet_v2"
batch=8
rounds=2
runs=5
warmup=1
threads=$(nproc)
build=build
onnx_dir=build/onnx
venv=.venv-ort
csv_out=
install=1
vnames=()
vargs=()

while [ $# -gt 0 ]; do
    cmp_opt "$@"
    if [ "$cmp_shift" -gt 0 ]; then shift "$cmp_shift"; continue; fi
    case $1 in
    --models) models=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --onnx-dir) onnx_dir=$2; shift 2 ;;
    --venv) venv=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_onnxruntime.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ ${#vnames[@]} -eq 0 ]; then vnames=(plan); vargs=("--exec plan"); fi
models=$(printf '%s' "$models" | tr ',' ' ')

# ---- prerequisites -----------------------------------------------------------------------
perf=$build/clcnn-perf
[ -x "$perf" ] || die "$perf not found: cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2 --target clcnn-perf"
syspy=/usr/bin/python3
[ -x "$syspy" ] || die "$syspy not found (Debian's python3, which has python3-torch)"

"$syspy" -c 'import torch, torchvision, onnx' 2>/dev/null ||
    cmp_apt "$install" python3-torch python3-torchvision python3-onnx python3-venv
if [ ! -x "$venv/bin/python" ]; then
    [ "$install" = 1 ] || die "no venv at $venv: $syspy -m venv --system-site-packages $venv"
    say "creating $venv"
    "$syspy" -m venv --system-site-packages "$venv"
fi
py=$venv/bin/python
if ! "$py" -c 'import onnxruntime' 2>/dev/null; then
    [ "$install" = 1 ] || die "onnxruntime missing: $py -m pip install onnxruntime"
    spec=onnxruntime${ORT_VERSION:+==$ORT_VERSION}
    say "pip install $spec into $venv"
    "$py" -m pip install -q "$spec" >&2
fi
missing=
for m in $models; do [ -f "$onnx_dir/$m.onnx" ] || missing="$missing,$m"; done
if [ -n "$missing" ]; then
    say "exporting ${missing#,} to $onnx_dir"
    "$syspy" "$here/onnx_export.py" "$onnx_dir" --models "${missing#,}"
fi

ort_version=$("$py" -c 'import onnxruntime; print(onnxruntime.__version__)')
torch_version=$("$syspy" -c 'import torch; print(torch.__version__)')
say "clcnn $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), onnxruntime $ort_version, torch $torch_version (export), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- measurements ------------------------------------------------------------------------
results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "round,model,runner,images_per_s,ms" >"$results"

run_clcnn() { # round model index
    local out args
    # {onnx} in a variant's ARGS is the model's ONNX export (clcnn running the same file
    # ORT runs: --variant onnx='--model {onnx}')
    args=${vargs[$3]//\{onnx\}/$onnx_dir/$2.onnx}
    local model=$2
    case $2 in resnet50 | mobilenet_v2 | alexnet | vgg16) ;; *) model=$onnx_dir/$2.onnx ;; esac
    # shellcheck disable=SC2086
    out=$("$perf" --op net_infer --model "$model" --batch "$batch" --runs "$runs" --no-peak \
        --format csv --quiet $args) || { say "clcnn-perf failed (${vnames[$3]}, $2)"; return 1; }
    local r
    r=$(printf '%s\n' "$out" | "$syspy" -c "$cmp_parse_clcnn") || return 1
    say "round $1 $2 ${vnames[$3]}: ${r%,*} images/s"
    echo "$1,$2,${vnames[$3]},$r" >>"$results"
}

run_ort() { # round model
    local out
    out=$("$py" "$here/onnxruntime_bench.py" "$onnx_dir/$2.onnx" --batch "$batch" \
        --threads "$threads" --runs "$runs" --warmup "$warmup") || { say "ORT failed ($2)"; return 1; }
    cmp_baseline "$1" "$2" ORT "$out"
}

cmp_measure "$models" "$rounds" run_clcnn run_ort

# ---- table -------------------------------------------------------------------------------
"$syspy" - "$results" "$batch" "$ort_version" "${vnames[@]}" <<'EOF'
import csv, statistics, sys
path, batch, ort_version, variants = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = list(csv.DictReader(open(path)))
models = list(dict.fromkeys(r["model"] for r in rows))
def med(model, runner):
    v = [float(r["images_per_s"]) for r in rows if r["model"] == model and r["runner"] == runner]
    return statistics.median(v) if v else float("nan")
head = ["model"] + [f"{v} images/s" for v in variants] + [f"ORT {ort_version} images/s"]
head += [f"{v}/ORT" for v in variants]
print(f"batch {batch}, images/s = median over rounds")
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for m in models:
    o = med(m, "ORT")
    cells = [m] + [f"{med(m, v):.2f}" for v in variants] + [f"{o:.2f}"]
    cells += [f"{med(m, v) / o:.2f}" for v in variants]
    print("| " + " | ".join(cells) + " |")
EOF
