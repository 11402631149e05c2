#!/bin/sh
# perf/sweep.sh: one full performance sweep: every suite, every op, every algorithm.
#
#   perf/sweep.sh [-b BUILD] [-d DEVICE] [-o OUTDIR] [-r RUNS] [SUITE...]
#
#   -b BUILD   build directory holding clcnn-perf and clcnn (default: build)
#   -d DEVICE  device selector, or all (default: $CLCNN_DEVICE, else the default device)
#   -o OUTDIR  where the results go (default: perf/results/<date>-<device name>)
#   -r RUNS    timed runs per row (default 5)
#   SUITE...   suites to run (default: anchors alexnet vgg16 resnet50 mobilenet_v2)
#
# Writes OUTDIR/<suite>.csv (clcnn-perf --op all --algo all), the charts of each CSV
# (perf/chart.sh, when gnuplot is installed), and OUTDIR/sweep.txt: the date, the
# commit, the devices, the machine's load and the exact commands with their run times.
set -eu

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

build=build
device=${CLCNN_DEVICE:-}
out=
runs=5
while getopts b:d:o:r:h opt; do
    case $opt in
    b) build=$OPTARG ;;
    d) device=$OPTARG ;;
    o) out=$OPTARG ;;
    r) runs=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
suites=${*:-anchors alexnet vgg16 resnet50 mobilenet_v2}

perf=$build/clcnn-perf
tool=$build/clcnn
for b in "$perf" "$tool"; do
    [ -x "$b" ] || { echo "perf/sweep.sh: $b not found: build first (make build)" >&2; exit 1; }
done
here=$(cd "$(dirname "$0")" && pwd)
devarg=
[ -n "$device" ] && devarg="--device $device"

if [ -z "$out" ]; then
    # perf/results/<date>-<first device's name, lower case, non-alphanumerics as '-'>
    # shellcheck disable=SC2086
    name=$("$perf" --op peak $devarg --format csv --quiet 2>/dev/null |
        awk -F, 'NR == 2 { print $1 }')
    slug=$(printf '%s' "${name:-device}" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' |
        sed 's/^-//; s/-$//' | cut -c1-48)
    out=$here/results/$(date +%F)-$slug
fi
mkdir -p "$out"
log=$out/sweep.txt

{
    echo "clcnn performance sweep"
    echo "date:    $(date -u '+%F %T UTC')"
    echo "commit:  $(git -C "$here/.." describe --always --dirty 2>/dev/null || echo unknown)"
    echo "machine: $(uname -srm), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "env:     CLCNN_TUNE=${CLCNN_TUNE:-on} CLCNN_DEVICE=${device:-default}"
    echo
    echo "devices:"
    "$tool" devices 2>&1 | sed 's/^/  /'
    echo
} >"$log"

# The ops clcnn-perf knows, minus peak (measured with every suite anyway): net timings
# are included when this build has them.
ops=$("$perf" --help 2>&1 | tr ' ,' '\n\n' |
    grep -E '^(conv2d_fwd|conv2d_bwd_data|conv2d_bwd_filter|pool2d_fwd|pool2d_bwd|linear_fwd|gemm|net_[a-z_]+)$' |
    sort -u | paste -sd, -)

status=0
for s in $suites; do
    name=$(basename "$s" .txt)
    cmd="$perf --op $ops --suite $s $devarg --algo all --runs $runs --format csv"
    echo "sweep: $name" >&2
    t0=$(date +%s)
    # shellcheck disable=SC2086
    $cmd >"$out/$name.csv" || status=1
    t1=$(date +%s)
    echo "$ $cmd > $name.csv    # $((t1 - t0)) s, load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$log"
    if command -v gnuplot >/dev/null 2>&1; then
        "$here/chart.sh" "$out/$name.csv" "$out" || status=1
    fi
done
echo "$ perf/chart.sh <suite>.csv .    # one PNG + SVG per (suite, op)" >>"$log"
echo "sweep: results in $out" >&2
exit $status
