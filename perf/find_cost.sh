#!/bin/sh
# What Find (CLCNN_TUNE=find: plans measure the convolution passes the tuning file does not
# know) costs per network: for each model and plan kind, one clcnn-perf run (one warm-up
# and --runs 1 of the network) without Find, then with Find on an empty tuning file, then
# with Find again (the file now knows every shape: nothing to measure), each in its own
# process, timed with /usr/bin/time (wall and CPU seconds). Find's cost is the second
# run's time minus the first's; the third should cost what the first did. The rounds
# repeat --rounds times, interleaved. Every run starts from the same program binaries
# (a copy of --programs, default build/cache), so kernel builds that Find's candidate
# parameter sets need are counted, and nothing is written there.
#
# Usage: perf/find_cost.sh [--perf PATH] [--models resnet50:8,mobilenet_v2:8,bn:64]
#                          [--ops net_infer,net_train] [--rounds N] [--programs DIR]
#                          [--out FILE.csv]
# Prints one CSV line per run: model,batch,op,mode,round,wall_s,cpu_s,measured
# (mode: off = no Find, find = Find on an empty file, again = Find on the file it wrote;
# measured: convolution passes Find stored, counted in the tuning file).
set -eu

perf=build/clcnn-perf
models=resnet50:8,mobilenet_v2:8,bn:64
ops=net_infer,net_train
rounds=1
programs=build/cache
out=""
while [ $# -gt 0 ]; do
    case $1 in
    --perf) perf=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --programs) programs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "find_cost: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$perf" ] || { echo "find_cost: no clcnn-perf at $perf" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "find_cost: needs /usr/bin/time (Debian package time)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$out" ] && : >"$out"
emit() {
    echo "$1"
    [ -z "$out" ] || echo "$1" >>"$out"
}
emit "model,batch,op,mode,round,wall_s,cpu_s,measured"

# One run: $1 model, $2 batch, $3 op, $4 mode, $5 cache dir.
run() {
    exec_arg="--exec plan"
    tune=on
    [ "$4" = off ] || tune=find
    CLCNN_CACHE_DIR=$5 CLCNN_TUNE=$tune /usr/bin/time -f "%e %U %S" -o "$tmp/time" \
        "$perf" --op "$3" --model "$1" --batch "$2" $exec_arg --runs 1 --no-peak --format csv \
        >"$tmp/out.csv" 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
    set -- "$@" $(cat "$tmp/time")
    measured=$(cat "$5"/tune-*.json 2>/dev/null | grep -c '"pass"' || true)
    emit "$1,$2,$3,$4,$r,$6,$(echo "$7 $8" | awk '{printf "%.2f", $1 + $2}'),$measured"
}

r=1
while [ "$r" -le "$rounds" ]; do
    for mb in $(echo "$models" | tr ',' ' '); do
        m=${mb%%:*}
        b=${mb#*:}
        for op in $(echo "$ops" | tr ',' ' '); do
            dir="$tmp/cache-$m-$op"
            rm -rf "$dir"
            mkdir -p "$dir"
            cp "$programs"/*.clbin "$dir"/ 2>/dev/null || true
            run "$m" "$b" "$op" off "$dir"
            run "$m" "$b" "$op" find "$dir"
            run "$m" "$b" "$op" again "$dir"
        done
    done
    r=$((r + 1))
done
