#!/bin/sh
# Data-parallel training cost (tests/dist_train.c --bench): images/s of 1 vs 2 replicas
# (threads in one process, and MPI ranks), and the cost of the exchange: the ordered
# reduction vs MPI_Allreduce vs no exchange at all, with the bytes each process moves per
# step; synchronised batch norm's cost (--bn sync) on 1 and 2 replicas. Every configuration
# runs in this one invocation, so compare within it.
#
# Usage: perf/dist.sh [-b BUILD] [-m MODEL] [-g GLOBAL] [-u MICRO] [-s STEPS]
#   defaults: build, bn (the zoo's default model, 1x28x28), global 64, micro 16, 12 steps
#   (the first 2 are warm-up and not counted). POCL_DEVICES="pthread pthread" is set unless
#   POCL_DEVICES is already set. Prints a table and writes CSV to stdout's end.
set -eu
build=build model=bn global=64 micro=16 steps=12
while getopts b:m:g:u:s: o; do
    case $o in
    b) build=$OPTARG ;; m) model=$OPTARG ;; g) global=$OPTARG ;; u) micro=$OPTARG ;;
    s) steps=$OPTARG ;; *) exit 2 ;;
    esac
done
drv=$build/dist_train
[ -x "$drv" ] || { echo "perf/dist.sh: $drv not built (cmake --build $build --target dist_train)" >&2; exit 2; }
export POCL_DEVICES="${POCL_DEVICES:-pthread pthread}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=$(command -v mpirun || true)
args="--model $model --global $global --micro $micro --steps $steps --samples $((global * steps)) --check-every 0 --bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median of column $2 (a field name) over the bench lines after the warm-up
median() {
    awk -v key="$2" '/^bench/ { n++; if (n <= 2) next; for (i = 1; i < NF; i++) if ($i == key) print $(i + 1) }' "$1" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# cpu_ms_per_image: CPU time of every process of the run (rank 0's times the process count;
# the ranks do the same work) per image: the fair comparison on a machine shared with
# other jobs, where wall time depends on what else runs.
echo "config,replicas,reduce,ms_per_step,images_per_s,cpu_ms_per_image,compute_ms,exchange_ms,bytes_sent,bytes_received,params"
run() { # name processes reduce command...
    name=$1 procs=$2 red=$3
    shift 3
    if ! "$@" --reduce "$red" $args >"$tmp/$name" 2>&1; then
        echo "$name,$reps,$red,error: $(tail -1 "$tmp/$name")"
        return
    fi
    cpu=$(median "$tmp/$name" cpu_ms | awk -v p="$procs" -v g="$global" '{ printf "%.3f", $1 * p / g }')
    reps=$(awk '/^bench/ { print $3; exit }' "$tmp/$name")
    echo "$name,$reps,$red,$(median "$tmp/$name" ms),$(median "$tmp/$name" images/s),$cpu,$(median "$tmp/$name" compute_ms),$(median "$tmp/$name" exchange_ms),$(median "$tmp/$name" bytes_sent),$(median "$tmp/$name" bytes_received),$(median "$tmp/$name" params)"
}
run local1 1 ordered "$drv"
run local1 1 none "$drv"
for red in ordered allreduce none; do
    run local2 1 $red "$drv" --replicas 2 --devices 0,1
done
# synchronised batch norm: its extra passes (docs/distributed.md), against local2 ordered
run local1_bnsync 1 ordered "$drv" --bn sync
run local2_bnsync 1 ordered "$drv" --replicas 2 --devices 0,1 --bn sync
if [ -n "$mpirun" ]; then
    for red in ordered allreduce none; do
        run mpi2 2 $red "$mpirun" -np 2 --oversubscribe --mca btl self,vader --bind-to none "$drv" --mpi
    done
else
    echo "mpi2,2,-,skipped: no mpirun"
fi
