#!/usr/bin/env bash
# perf/compare_pytorch_train.sh: training-step speed, clcnn vs Debian's PyTorch (CPU).
#
#   perf/compare_pytorch_train.sh [--models LIST] [--batch N] [--rounds N] [--runs N]
#       [--threads N] [--variant NAME='ARGS']... [--build DIR] [--csv FILE] [--no-install]
#
#   --models LIST   comma/space-separated (default: resnet50,mobilenet_v2); any of
#                   bn lenet alexnet vgg16 resnet50 mobilenet_v2 (clcnn's zoo; the PyTorch
#                   twins are in perf/pytorch_train_bench.py)
#   --batch N       images per step (default 8)
#   --rounds N      rounds per model (default 2): each round runs every clcnn variant and
#                   PyTorch once, in turn (every other round in reverse order), so a shared,
#                   noisy machine weighs on all of them alike
#   --runs N        timed steps per call after one warm-up, both sides (default 5)
#   --threads N     PyTorch's intra-op threads (default: nproc)
#   --variant NAME='ARGS'  a clcnn run: clcnn-perf --op net_train --model M --batch N
#                   --runs N --no-peak --format csv --quiet ARGS; repeat for several
#                   (e.g. --variant net='--exec layers' --variant plan='--exec plan');
#                   default net='' (clcnn-perf's default row)
#   --build DIR     holds clcnn-perf (default build)
#   --csv FILE      also write every measurement (round, model, runner, images/s, ms)
#   --no-install    fail instead of running apt-get when PyTorch is missing
#
# A step on both sides: forward in training mode, softmax cross-entropy, backward, SGD
# with momentum 0.9. A perf tool only: PyTorch is never a dependency of the library or
# its tests. Prints a table: model | each variant's images/s | PyTorch images/s |
# variant/PyTorch ratios, images/s the median over rounds of each call's median.
set -euo pipefail

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
here=$(cd "$(dirname "$0")" && pwd)
tool=compare_pytorch_train.sh
# shellcheck source=perf/compare_common.sh
. "$here/compare_common.sh"

models="resnet50,mobilenet_v2"
batch=8
rounds=2
runs=5
threads=$(nproc)
build=build
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
    --threads) threads=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare_pytorch_train.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ ${#vnames[@]} -eq 0 ]; then vnames=(net); vargs=(""); fi
models=$(printf '%s' "$models" | tr ',' ' ')

perf=$build/clcnn-perf
[ -x "$perf" ] || die "$perf not found: cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2 --target clcnn-perf"
py=/usr/bin/python3
[ -x "$py" ] || die "$py not found (Debian's python3, which has python3-torch)"
"$py" -c 'import torch, torchvision' 2>/dev/null || cmp_apt "$install" python3-torch python3-torchvision
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
say "clcnn $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), torch $torch_version, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "round,model,runner,images_per_s,ms" >"$results"

run_clcnn() { # round model index
    local out r
    # shellcheck disable=SC2086
    out=$("$perf" --op net_train --model "$2" --batch "$batch" --runs "$runs" --no-peak \
        --format csv --quiet ${vargs[$3]}) || { say "clcnn-perf failed (${vnames[$3]}, $2)"; return 1; }
    r=$(printf '%s\n' "$out" | "$py" -c "$cmp_parse_clcnn") || return 1
    say "round $1 $2 ${vnames[$3]}: ${r%,*} images/s"
    echo "$1,$2,${vnames[$3]},$r" >>"$results"
}

run_torch() { # round model
    local out
    out=$("$py" "$here/pytorch_train_bench.py" "$2" --batch "$batch" --threads "$threads" \
        --runs "$runs" --warmup 1) || { say "PyTorch failed ($2)"; return 1; }
    cmp_baseline "$1" "$2" PyTorch "$out"
}

cmp_measure "$models" "$rounds" run_clcnn run_torch

"$py" - "$results" "$batch" "$torch_version" "${vnames[@]}" <<'PYEOF'
import csv, statistics, sys
path, batch, torch_version, variants = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = list(csv.DictReader(open(path)))
models = list(dict.fromkeys(r["model"] for r in rows))
def vals(model, runner):
    return [float(r["images_per_s"]) for r in rows if r["model"] == model and r["runner"] == runner]
def med(model, runner):
    v = vals(model, runner)
    return statistics.median(v) if v else float("nan")
def per_round(model, runner):
    ratios = []
    for rnd in sorted({r["round"] for r in rows if r["model"] == model}):
        a = [float(r["images_per_s"]) for r in rows
             if r["model"] == model and r["runner"] == runner and r["round"] == rnd]
        b = [float(r["images_per_s"]) for r in rows
             if r["model"] == model and r["runner"] == "PyTorch" and r["round"] == rnd]
        if a and b:
            ratios.append(a[0] / b[0])
    return ratios
head = ["model"] + [f"{v} images/s" for v in variants] + [f"PyTorch {torch_version} images/s"]
head += [f"{v}/PyTorch" for v in variants] + [f"{v}/PyTorch per round" for v in variants]
print(f"training step, batch {batch}, images/s = median over rounds")
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for m in models:
    t = med(m, "PyTorch")
    cells = [m] + [f"{med(m, v):.2f}" for v in variants] + [f"{t:.2f}"]
    cells += [f"{med(m, v) / t:.2f}" for v in variants]
    for v in variants:
        r = per_round(m, v)
        cells.append(f"{min(r):.2f}-{max(r):.2f}" if r else "-")
    print("| " + " | ".join(cells) + " |")
PYEOF
