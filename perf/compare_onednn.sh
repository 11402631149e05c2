#!/usr/bin/env bash
# perf/compare_onednn.sh: convolution forward per layer, clcnn vs oneDNN (CPU, native layouts).
#
#   perf/compare_onednn.sh [--suites LIST] [--rounds N] [--runs N] [--filter TEXT]
#       [--variant NAME='ARGS']... [--build DIR] [--csv FILE] [--no-install]
#
#   --suites LIST   comma/space-separated clcnn-perf suites (default: anchors); any of
#                   perf/suites/*.txt by name, or paths
#   --rounds N      rounds (default 2): each runs every clcnn variant and oneDNN on the
#                   whole suite in turn, every other round in reverse order
#   --runs N        timed runs per shape after one warm-up, both sides (default 5)
#   --filter TEXT   only shapes whose name contains TEXT
#   --variant NAME='ARGS'  a clcnn run: clcnn-perf --op conv2d_fwd --suite S --runs N
#                   --no-peak --format csv --quiet ARGS (default auto='--algo auto')
#   --build DIR     holds clcnn-perf; onednn-bench is built there (default build)
#   --csv FILE      also write every measurement (round, suite, shape, runner, ms)
#   --no-install    fail instead of apt-get installing libdnnl-dev when it is missing
#
# oneDNN: perf/onednn_bench.c built against Debian's libdnnl-dev (a perf tool only, never a
# dependency of the library or its tests): forward inference with bias, fp32, every tensor
# in the layout oneDNN chooses (no reorders timed), its OpenMP threads (OMP_NUM_THREADS,
# default nproc). clcnn-perf's ms is device time (OpenCL profiling), oneDNN's wall-clock
# time of a synchronous execution; both the median of --runs after one warm-up. The table:
# per shape the median over rounds of each, the ratio oneDNN ms / clcnn ms (above 1: clcnn
# faster), and clcnn's GFLOPS as a share of the device peak clcnn-perf --op peak measures
# at the start (its FMA probe; it reads low on a loaded machine).
set -euo pipefail

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
here=$(cd "$(dirname "$0")" && pwd)
tool=compare_onednn.sh
# shellcheck source=perf/compare_common.sh
. "$here/compare_common.sh"

suites=anchors
rounds=2
runs=5
filter=
build=build
csv_out=
install=1
vnames=()
vargs=()
while [ $# -gt 0 ]; do
    cmp_opt "$@"
    if [ "$cmp_shift" -gt 0 ]; then shift "$cmp_shift"; continue; fi
    case $1 in
    --suites) suites=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$tool: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ ${#vnames[@]} -eq 0 ]; then vnames=(auto); vargs=("--algo auto"); fi
suites=$(printf '%s' "$suites" | tr ',' ' ')

perf=$build/clcnn-perf
[ -x "$perf" ] || die "$perf not found: cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2 --target clcnn-perf"
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || cmp_apt "$install" libdnnl-dev
bench=$build/onednn-bench
if [ ! -x "$bench" ] || [ "$here/onednn_bench.c" -nt "$bench" ]; then
    say "building $bench"
    ${CC:-cc} -O2 -std=c11 -D_POSIX_C_SOURCE=200809L "$here/onednn_bench.c" -ldnnl -o "$bench"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
py=/usr/bin/python3
peak=$("$perf" --op peak --format csv --quiet 2>/dev/null | "$py" -c \
    'import csv, sys; print(next(csv.DictReader(sys.stdin))["peak_gflops"])') || peak=
say "clcnn $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), $("$bench" /dev/null 2>&1 >/dev/null), $(nproc) cores, device peak ${peak:-?} GFLOPS, load: $(cut -d' ' -f1-3 /proc/loadavg)"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "round,suite,shape,runner,ms,gflop" >"$results"

suite_path() { case $1 in */* | *.txt) echo "$1" ;; *) echo "$here/suites/$1.txt" ;; esac; }

run_clcnn() { # round suite index
    local out
    # shellcheck disable=SC2086
    out=$("$perf" --op conv2d_fwd --suite "$(suite_path "$2")" --runs "$runs" --no-peak \
        --format csv --quiet ${filter:+--filter "$filter"} ${vargs[$3]}) ||
        { say "clcnn-perf failed (${vnames[$3]}, $2)"; return 1; }
    printf '%s\n' "$out" | "$py" -c '
import csv, sys
for r in csv.DictReader(sys.stdin):
    if r["status"] == "ok":
        print(",".join([sys.argv[1], sys.argv[2], r["shape"], sys.argv[3], r["ms"], r["gflop"]]))
    else:
        print(sys.argv[3], r["shape"], r["status"], r["note"], file=sys.stderr)' "$1" "$2" "${vnames[$3]}" >>"$results"
    say "round $1 $2 ${vnames[$3]} done"
}

run_onednn() { # round suite
    local out
    out=$("$bench" "$(suite_path "$2")" --runs "$runs" ${filter:+--filter "$filter"} 2>/dev/null) ||
        say "onednn-bench reported a failure ($2)"
    printf '%s\n' "$out" | "$py" -c '
import csv, sys
for r in csv.DictReader(sys.stdin):
    print(",".join([sys.argv[1], sys.argv[2], r["shape"], "oneDNN", r["ms"], r["gflop"]]))' "$1" "$2" >>"$results"
    say "round $1 $2 oneDNN done"
}

cmp_measure "$suites" "$rounds" run_clcnn run_onednn

"$py" - "$results" "${peak:-0}" "${vnames[@]}" <<'PYEOF'
import csv, statistics, sys
path, peak, variants = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
rows = list(csv.DictReader(open(path)))
keys = list(dict.fromkeys((r["suite"], r["shape"]) for r in rows))
def med(key, runner):
    v = [float(r["ms"]) for r in rows if (r["suite"], r["shape"]) == key and r["runner"] == runner]
    return statistics.median(v) if v else float("nan")
gflop = {(r["suite"], r["shape"]): float(r["gflop"]) for r in rows}
head = ["suite", "shape"] + [f"{v} ms" for v in variants] + ["oneDNN ms"]
head += [f"oneDNN/{v}" for v in variants] + [f"{v} % peak" for v in variants]
print("conv forward, ms = median over rounds; oneDNN/clcnn > 1: clcnn faster")
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for k in keys:
    o = med(k, "oneDNN")
    cells = list(k) + [f"{med(k, v):.2f}" for v in variants] + [f"{o:.2f}"]
    cells += [f"{o / med(k, v):.2f}" for v in variants]
    cells += [f"{gflop[k] / med(k, v) * 1e3 / peak * 100:.0f}" if peak > 0 else "-" for v in variants]
    print("| " + " | ".join(cells) + " |")
PYEOF
