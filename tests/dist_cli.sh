#!/bin/sh
# clcnn train data-parallel (tools/clcnn/train_dist.c), on Fashion-MNIST cut to 512 images:
#   local: --devices 0,1 writes the same checkpoint bytes as --devices 0 at the same global
#          and micro batch, and clcnn eval reads it (the last epoch's accuracy); one epoch
#          then --resume to two gives the bytes of two epochs at once; --bn sync on 2
#          devices writes the bytes of 1 device and not those of --bn local; --devices without
#          --optimizer sgd is a clear error;
#   mpi:   mpirun -np 2 clcnn train writes the same bytes as one device, and only rank 0
#          prints progress (exit 77, skipped, without MPI).
# Usage: tests/dist_cli.sh local|mpi CLCNN HAVE_MPI MPIRUN
set -u
tag=dist_cli
. "$(dirname "$0")/dist_lib.sh"
mode=$1
cli=$(abspath "$2")
have=${3:-OFF}
mpirun=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
args="--optimizer sgd --limit-train 512 --limit-test 128 --batch 64 --seed 3"

run one "$cli" train --devices 0 --micro-batch 32 $args --epochs 2 --checkpoint one.st
if [ "$mode" = local ]; then
    run two "$cli" train --devices 0,1 $args --epochs 2 --checkpoint two.st
    cat two.out
    same one.st two.st
    # clcnn eval reads the checkpoint and agrees with the last epoch's evaluation
    acc=$(sed -n 's/^epoch 2\/2: .* acc \([0-9.]*%\).*/\1/p' two.out)
    run eval "$cli" eval --checkpoint two.st --limit-test 128
    if [ -n "$acc" ] && grep -q "accuracy $acc" eval.out; then
        echo "dist_cli: clcnn eval of the checkpoint: $(head -1 eval.out)"
    else
        echo "dist_cli: FAIL: clcnn eval does not give the last epoch's accuracy '$acc':"
        cat eval.out
        fail=1
    fi
    run const2 "$cli" train --devices 0,1 $args --schedule constant --epochs 2 --checkpoint c2.st
    run const1 "$cli" train --devices 0,1 $args --schedule constant --epochs 1 --checkpoint c1.st
    run resume "$cli" train --devices 0,1 $args --schedule constant --epochs 2 --resume \
        --checkpoint c1.st
    same c1.st c2.st
    # --bn sync: 2 devices = 1 device at the same micro-batch, and not local batch norm
    run sync1 "$cli" train --devices 0 --micro-batch 32 --bn sync $args --epochs 1 \
        --checkpoint s1.st
    run sync2 "$cli" train --devices 0,1 --bn sync $args --epochs 1 --checkpoint s2.st
    cat sync2.out
    same s1.st s2.st
    run local1 "$cli" train --devices 0,1 $args --epochs 1 --checkpoint l1.st
    if cmp -s s1.st l1.st; then
        echo "dist_cli: FAIL: --bn sync wrote the bytes of --bn local"
        fail=1
    fi
    if "$cli" train --devices 0,1 --epochs 1 >adam.out 2>&1 ||
        ! grep -q "pass --optimizer sgd" adam.out; then
        echo "dist_cli: FAIL: --devices without --optimizer sgd:"
        cat adam.out
        fail=1
    fi
    exit $fail
fi

case $have in ON | 1 | TRUE | YES | on) ;; *)
    echo "dist_cli: clcnn was built without MPI; skipped"
    exit 77
    ;;
esac
[ -n "$mpirun" ] && [ -x "$mpirun" ] || { echo "dist_cli: no mpirun; skipped"; exit 77; }
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" # dist_mpi.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run mpi "$mpirun" -np 2 --oversubscribe --mca btl self,vader --bind-to none \
    "$cli" train $args --epochs 2 --timeout 120 --checkpoint mpi.st
cat mpi.out
same one.st mpi.st
n=$(grep -c "^epoch 2/2" mpi.out)
[ "$n" = 1 ] || { echo "dist_cli: FAIL: $n progress lines for epoch 2 (rank 0 only: 1)"; fail=1; }
exit $fail
