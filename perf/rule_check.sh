#!/bin/sh
# Checks the built-in AUTO rules (lib/ops/conv2d.c, pick_algo) against measurement: for every
# convolution shape of the perf suites and every pass, times each algorithm (clcnn-perf
# --algo all, with CLCNN_TUNE=off so that AUTO uses its rule and nothing tuned), and
# compares the algorithm the rule picks (the auto row's "chose ALGO (rule)" note) with the
# fastest one: ratio = ms of the rule's algorithm / best ms, both rows of the same run; ms is
# each row's fastest run (min_ms: on a shared machine a load spike in one algorithm's runs
# moves its median, rarely its minimum) or, with --stat median, its median. Prints one line per suite and pass with the worst ratio and its shape, then
# every shape above the limit (1.5 unless --limit says otherwise). Exit status 1 when a
# ratio is above the limit, 2 on a usage or run error. Nothing here depends on this
# machine: run it on every device family you can reach (--device SEL).
#
# Usage: perf/rule_check.sh [--perf PATH] [--device SEL] [--suites a,b,...]
#                           [--ops conv2d_fwd,conv2d_bwd_data,conv2d_bwd_filter]
#                           [--runs N] [--limit X] [--stat min|median] [--out FILE.csv]
#                           [--csv FILE.csv ...]
#   --perf    the clcnn-perf binary (default build/clcnn-perf)
#   --suites  default anchors,resnet50,mobilenet_v2,vgg16,alexnet
#   --ops     default conv2d_fwd
#   --runs    timed runs per algorithm and shape (default 3)
#   --out     keep the measurements (clcnn-perf's CSV, all suites) in FILE.csv
#   --csv     check measurements made before (clcnn-perf CSV files) instead of running
set -eu

perf=build/clcnn-perf
device=""
suites=anchors,resnet50,mobilenet_v2,vgg16,alexnet
ops=conv2d_fwd
runs=3
limit=1.5
stat=min
out=""
csvs=""
while [ $# -gt 0 ]; do
    case $1 in
    --perf) perf=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --suites) suites=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --stat) stat=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --csv) csvs="$csvs $2"; shift 2 ;;
    -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "rule_check: unknown option $1" >&2; exit 2 ;;
    esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$csvs" ]; then
    [ -x "$perf" ] || { echo "rule_check: no clcnn-perf at $perf (build it, or --perf PATH)" >&2; exit 2; }
    for s in $(echo "$suites" | tr ',' ' '); do
        echo "rule_check: suite $s, $ops, every algorithm, $runs runs" >&2
        # exit status 1 only means some row failed; such rows are left out below
        CLCNN_TUNE=off "$perf" ${device:+--device "$device"} --op "$ops" --suite "$s" \
            --algo all --runs "$runs" --no-peak --format csv >"$tmp/$s.csv" 2>"$tmp/$s.err" || true
        [ -s "$tmp/$s.csv" ] || { cat "$tmp/$s.err" >&2; exit 2; }
        sed "s/^/$s,/" "$tmp/$s.csv" | sed "1s/^$s,/suite,/" >"$tmp/$s.tagged"
        csvs="$csvs $tmp/$s.tagged"
    done
    if [ -n "$out" ]; then
        first=1
        for f in $csvs; do
            if [ $first = 1 ]; then cat "$f"; first=0; else tail -n +2 "$f"; fi
        done >"$out"
    fi
fi

# CSV fields (perf/README.md), with a leading suite column when this script ran them:
# [suite,]device,op,algo,shape,dims,status,runs,ms,min_ms,...,note (last, may be quoted)
for f in $csvs; do cat "$f"; done | awk -F, -v limit="$limit" -v stat="$stat" '
    /^device,|^suite,/ { base = ($1 == "suite") ? 1 : 0; next }
    {
        suite = base ? $1 : "-"
        op = $(base + 2); algo = $(base + 3); shape = $(base + 4); status = $(base + 6)
        ms = (stat == "median" ? $(base + 8) : $(base + 9)) + 0
        key = suite SUBSEP op SUBSEP shape
        if (!(key in seen)) { seen[key] = 1; order[++n] = key }
        if (status != "ok") next
        if (algo == "auto") {
            if (match($0, /chose [a-z_]+ \(rule\)/)) {
                split(substr($0, RSTART, RLENGTH), w, " ")
                chose[key] = w[2]
            } else if (match($0, /chose [a-z_]+ \(tuning file\)/)) {
                tuned[key] = 1
            }
            automs[key] = ms
            next
        }
        t[key, algo] = ms
        if (!(key in best) || ms < best[key]) { best[key] = ms; bestalgo[key] = algo }
    }
    END {
        bad = 0
        for (i = 1; i <= n; i++) {
            key = order[i]
            if (!(key in best)) continue
            split(key, k, SUBSEP)
            group = k[1] " " k[2]
            if (key in tuned) { note[group] = " (some shapes tuned: run with CLCNN_TUNE=off)"; continue }
            a = (key in chose) ? chose[key] : ""
            rule = (a != "" && (key, a) in t) ? t[key, a] : automs[key]
            if (a == "") a = "auto"
            r = rule / best[key]
            if (!(group in worst) || r > worst[group]) {
                worst[group] = r
                wline[group] = sprintf("%s: %s %.2f ms, best %s %.2f ms", k[3], a, rule, bestalgo[key], best[key])
            }
            if (!(group in gorder)) { gorder[group] = ++ng; gname[ng] = group }
            count[group]++
            if (r > limit) {
                over[++nover] = sprintf("  %-14s %-17s %-18s rule %-13s %9.2f ms  best %-13s %9.2f ms  %.2fx",
                                        k[1], k[2], k[3], a, rule, bestalgo[key], best[key], r)
                bad = 1
            }
        }
        printf "%-14s %-17s %6s %8s  %s\n", "suite", "pass", "shapes", "worst", "shape: rule vs best"
        for (i = 1; i <= ng; i++) {
            g = gname[i]
            split(g, k, " ")
            printf "%-14s %-17s %6d %7.2fx  %s%s\n", k[1], k[2], count[g], worst[g], wline[g], note[g]
        }
        if (nover) {
            printf "\nabove %.2fx:\n", limit
            for (i = 1; i <= nover; i++) print over[i]
        }
        exit bad
    }'
