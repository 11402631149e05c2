#!/bin/sh
# One test binary on Oclgrind's simulated device, for tests/oclgrind/run.sh:
#   check.sh OUTDIR TEST_BINARY [TEST_FUNCTIONS]
# The caller's environment selects Oclgrind (OCL_ICD_VENDORS, CLCNN_TEST_DEVICE) and the
# device class; this adds the checks and the logs. Oclgrind reports what it finds
# (out-of-bounds accesses, data races, barrier divergence, API misuse, ...) in its log and
# never changes the exit status, so the test fails when that log is not empty.
# TEST_FUNCTIONS: the comma-separated cmocka tests to run ($CLCNN_TEST_ONLY; all if none).
# Writes OUTDIR/NAME.out (the test's output, each line prefixed with the seconds since
# the start), OUTDIR/NAME.oclgrind.log and appends the kernels launched to
# OUTDIR/kernels.txt ($CLCNN_TRACE_KERNELS).
set -u
out=$1
bin=$2
only=${3:-}
name=$(basename "$bin")
log="$out/$name.oclgrind.log"
rm -f "$log"
start=$(date +%s)
rcfile="$out/$name.rc"
{
    OCLGRIND_DATA_RACES=1 OCLGRIND_CHECK_API=1 OCLGRIND_LOG="$log" CLCNN_POOL_EXACT=1 \
        CLCNN_TRACE_KERNELS="$out/kernels.txt" CLCNN_TEST_SMALL=1 CLCNN_TEST_ONLY="$only" \
        stdbuf -oL -eL "$bin" 2>&1
    echo $? >"$rcfile"
} | while IFS= read -r line; do echo "$(( $(date +%s) - start )) $line"; done >"$out/$name.out"
rc=$(cat "$rcfile")
secs=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ]; then
    echo "FAIL $out/$name (exit status $rc, ${secs} s); its output ends:"
    tail -n 30 "$out/$name.out" | sed 's/^/    /'
    [ -s "$log" ] && { echo "  Oclgrind log:"; head -n 40 "$log" | sed 's/^/    /'; }
    exit 1
fi
if [ -s "$log" ]; then
    echo "FAIL $out/$name (Oclgrind reported errors, ${secs} s); $log begins:"
    head -n 40 "$log" | sed 's/^/    /'
    exit 1
fi
echo "ok   $out/$name (${secs} s)"
