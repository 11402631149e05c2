#!/bin/sh
# perf/chart.sh: bar charts (PNG and SVG) of a clcnn-perf CSV sweep, with gnuplot.
#
#   perf/chart.sh SWEEP.csv [OUTDIR]
#
# One chart per (device, op) in the CSV: the shapes along x, one bar per algorithm,
# GFLOPS up (GB/s for pool2d_fwd and pool2d_bwd, which move memory rather than computing); rows that
# did not run (unsupported, error) leave a gap. Files: OUTDIR/<csv name>-<op>[-<device
# number>].png and .svg (OUTDIR defaults to the CSV's directory).
#
# Needs gnuplot (Debian: apt-get install gnuplot-nox); nothing else in clcnn does.
set -eu

if [ $# -lt 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    [ $# -ge 1 ] && exit 0 || exit 2
fi
csv=$1
out=${2:-$(dirname "$csv")}
[ -r "$csv" ] || { echo "perf/chart.sh: cannot read $csv" >&2; exit 1; }
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "perf/chart.sh: gnuplot is not installed; on Debian: apt-get install gnuplot-nox" >&2
    exit 1
fi
head -n 1 "$csv" | grep -q '^device,op,algo,shape,' ||
    { echo "perf/chart.sh: $csv is not a clcnn-perf CSV (run clcnn-perf --format csv)" >&2; exit 1; }
mkdir -p "$out"
base=$(basename "$csv" .csv)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# CSV -> one whitespace-separated table per (device, op):
#   "shape" algo1 algo2 ...   then one line per shape with the values ("?" = missing)
# plus an index file: table path, op, device, peak, metric. POSIX awk (mawk works).
awk -v tmp="$tmp" '
function parse(line,    n, i, c, field, inq) {
    n = 0; field = ""; inq = 0
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (inq) {
            if (c == "\"") {
                if (substr(line, i + 1, 1) == "\"") { field = field "\""; i++ }
                else inq = 0
            } else field = field c
        } else if (c == "\"") inq = 1
        else if (c == ",") { f[++n] = field; field = "" }
        else field = field c
    }
    f[++n] = field
    return n
}
NR == 1 { n = parse($0); for (i = 1; i <= n; i++) col[f[i]] = i; next }
{
    sub(/\r$/, "")
    parse($0)
    dev = f[col["device"]]; op = f[col["op"]]; algo = f[col["algo"]]; shape = f[col["shape"]]
    metric = (op ~ /^pool2d_/) ? "gbps" : "gflops"
    v = (f[col["status"]] == "ok" && f[col[metric]] != "") ? f[col[metric]] : "?"
    if (!(dev in devnum)) { devnum[dev] = ++ndev; devname[ndev] = dev }
    key = devnum[dev] SUBSEP op
    if (!(key in nkeys)) {
        nkeys[key] = 1; keys[++nk] = key; kdev[nk] = devnum[dev]; kop[nk] = op
        kmetric[nk] = metric
        kpeak[nk] = (metric == "gbps") ? f[col["peak_gbps"]] : f[col["peak_gflops"]]
    }
    if (!((key, algo) in algoidx)) { algoidx[key, algo] = ++nalgo[key]; algoname[key, nalgo[key]] = algo }
    if (!((key, shape) in shapeidx)) { shapeidx[key, shape] = ++nshape[key]; shapename[key, nshape[key]] = shape }
    val[key, shapeidx[key, shape], algoidx[key, algo]] = v
    if (v != "?") ran[key, algoidx[key, algo]] = 1
}
END {
    for (k = 1; k <= nk; k++) {
        key = keys[k]
        file = tmp "/t" k ".dat"
        # only algorithms that ran at least once (an all-unsupported one has no bars)
        line = "shape"; nran = 0
        for (a = 1; a <= nalgo[key]; a++)
            if ((key, a) in ran) { line = line " " algoname[key, a]; nran++ }
        if (nran == 0) continue
        print line > file
        for (s = 1; s <= nshape[key]; s++) {
            line = shapename[key, s]
            for (a = 1; a <= nalgo[key]; a++) {
                if (!((key, a) in ran)) continue
                v = ((key, s, a) in val) ? val[key, s, a] : "?"
                line = line " " v
            }
            print line > file
        }
        close(file)
        printf "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n", file, kop[k], kdev[k], devname[kdev[k]], kpeak[k], kmetric[k], nran, ndev > (tmp "/index")
    }
}' "$csv"

[ -s "$tmp/index" ] || { echo "perf/chart.sh: no rows in $csv" >&2; exit 1; }
made=0
while IFS="$(printf '\t')" read -r table op devno device peak metric nalgo ndev; do
    name="$base-$op"
    [ "$ndev" -gt 1 ] && name="$name-$devno"
    if [ "$metric" = "gbps" ]; then ylabel="GB/s"; else ylabel="GFLOPS"; fi
    peaktxt=""
    [ -n "$peak" ] && peaktxt=" (measured peak $peak $ylabel)"
    # gnuplot strings: escape backslashes and double quotes of the device name
    title=$(printf '%s on %s%s' "$op" "$device" "$peaktxt" | sed 's/\\/\\\\/g; s/"/\\"/g; s/_/\\\\_/g')
    for term in png svg; do
        if [ "$term" = png ]; then setterm='set terminal pngcairo size 1200,600 font ",10"'
        else setterm='set terminal svg size 1200,600 dynamic font "sans,10"'; fi
        gnuplot <<EOF
$setterm
set output "$out/$name.$term"
set title "$title"
set ylabel "$ylabel"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key top right noenhanced
set xtics rotate by -35 noenhanced
plot for [i=2:$((nalgo + 1))] "$table" using i:xtic(1) title columnhead
EOF
    done
    echo "$out/$name.png $out/$name.svg"
    made=$((made + 1))
done <"$tmp/index"
[ "$made" -gt 0 ]
