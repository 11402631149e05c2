# perf/compare_common.sh: shared by perf/compare_onnxruntime.sh and
# perf/compare_pytorch_train.sh (sourced, not run). Each script sets `tool` (its name for
# messages) before sourcing and fills vnames/vargs through cmp_variant.

say() { echo "$tool: $*" >&2; }
die() { say "$*"; exit 1; }

# cmp_variant NAME='ARGS' (or NAME): one clcnn-perf variant
cmp_variant() {
    case $1 in
    *=*) vnames+=("${1%%=*}"); vargs+=("${1#*=}") ;;
    *) vnames+=("$1"); vargs+=("") ;;
    esac
}

# cmp_apt INSTALL PKG...: apt-get install PKGs (as root or via sudo) unless INSTALL is 0
cmp_apt() {
    local install=$1 sudo=
    shift
    [ "$install" = 1 ] || die "missing: apt-get install $*"
    say "installing $* (apt-get)"
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >&2
}

# clcnn-perf's CSV on stdin: "images_per_s,ms" of its one row (status must be ok)
cmp_parse_clcnn='import csv, sys
rows = list(csv.DictReader(sys.stdin))
if len(rows) != 1 or rows[0]["status"] != "ok":
    sys.exit("clcnn-perf: " + (rows[0]["status"] + " " + rows[0]["note"] if rows else "no row"))
print(rows[0]["images_per_s"] + "," + rows[0]["ms"])'

# cmp_rounds MODELS ROUNDS CLCNN_FN BASELINE_FN: per model and round, CLCNN_FN ROUND MODEL
# INDEX for each variant and BASELINE_FN ROUND MODEL, every other round in reverse order
cmp_rounds() {
    local m r i o order rev
    for m in $1; do
        for ((r = 1; r <= $2; r++)); do
            order=()
            for ((i = 0; i < ${#vnames[@]}; i++)); do order+=("$i"); done
            order+=(baseline)
            if ((r % 2 == 0)); then
                rev=()
                for ((i = ${#order[@]} - 1; i >= 0; i--)); do rev+=("${order[$i]}"); done
                order=("${rev[@]}")
            fi
            for o in "${order[@]}"; do
                if [ "$o" = baseline ]; then "$4" "$r" "$m"; else "$3" "$r" "$m" "$o"; fi
            done
        done
    done
}

# cmp_opt "$@": the options every compare script takes (--rounds, --runs, --variant,
# --build, --csv, --no-install) into rounds, runs, vnames/vargs, build, csv_out, install;
# sets cmp_shift to the words consumed (0: $1 is not one of them)
cmp_opt() {
    cmp_shift=2
    case $1 in
    --rounds) rounds=$2 ;;
    --runs) runs=$2 ;;
    --variant) cmp_variant "$2" ;;
    --variant=*) cmp_variant "${1#--variant=}"; cmp_shift=1 ;;
    --build) build=$2 ;;
    --csv) csv_out=$2 ;;
    --no-install) install=0; cmp_shift=1 ;;
    *) cmp_shift=0 ;;
    esac
}

# cmp_baseline ROUND MODEL NAME LINE: record a baseline's "model,batch,images_per_s,ms,..."
# CSV line (the bench scripts' output) as NAME's measurement in $results
cmp_baseline() {
    local ips ms
    ips=$(echo "$4" | cut -d, -f3)
    ms=$(echo "$4" | cut -d, -f4)
    say "round $1 $2 $3: $ips images/s"
    echo "$1,$2,$3,$ips,$ms" >>"$results"
}

# cmp_measure MODELS ROUNDS CLCNN_FN BASELINE_FN: cmp_rounds with timing and load in the log,
# then $results copied to $csv_out when one was asked for
cmp_measure() {
    local t0
    t0=$(date +%s)
    cmp_rounds "$@"
    say "measured in $(($(date +%s) - t0)) s, load now: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "$csv_out" ] || cp "$results" "$csv_out"
}
