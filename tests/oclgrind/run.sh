#!/bin/sh
# make test-oclgrind: the kernel-level tests on Oclgrind's simulated OpenCL device, which
# checks every memory access, barrier and data race inside the kernels.
#   tests/oclgrind/run.sh [-b BUILD] [-j JOBS] [-o OUT] [TEST...]
# Oclgrind's ICD is registered in a private vendors folder (BUILD/oclgrind/vendors, with
# OCL_ICD_VENDORS pointing there), so the system's drivers stay as they are; programs are
# cached in BUILD/oclgrind/cache. Each line of tests/oclgrind/tests.txt,
#   TEST RUN[,RUN...] [FUNCTION,FUNCTION...]
# runs that test binary's cmocka tests (those FUNCTIONs only, when named:
# $CLCNN_TEST_ONLY) with CLCNN_TEST_SMALL=1 (the tests' small shapes: odd sizes, one tile
# plus a remainder, batch 1) in each RUN:
#   gpu         CLCNN_DEVICE_CLASS=gpu: the library chooses as for a GPU
#   cpu         CLCNN_DEVICE_CLASS=cpu: as for a CPU
#   gpu-limits  as gpu, on a device with a 256-item work-group limit and 48 KiB of local
#               memory (OCLGRIND_MAX_WGSIZE, OCLGRIND_LOCAL_MEM_SIZE), as many GPUs have
# A test fails when it fails or when Oclgrind's log for it is not empty (check.sh, which
# also turns on Oclgrind's data-race and API checks and exact-sized buffers,
# CLCNN_POOL_EXACT=1, so that one element past a tensor is outside its cl_mem).
# Then the summary: per run, every kernel and define set launched
# ($CLCNN_TRACE_KERNELS); the define sets only the GPU class launched; and every kernel
# of cl/ that no run launched and tests/oclgrind/not-covered.txt does not excuse, which
# fails the run (only when every test runs: no TEST named). Results in OUT/<run>/ (default
# BUILD/oclgrind).
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$src/build
jobs=$(nproc 2>/dev/null || echo 2)
root=
while getopts b:j:o: opt; do
    case $opt in
    b) build=$(cd "$OPTARG" && pwd) ;;
    j) jobs=$OPTARG ;;
    o) root=$OPTARG ;;
    *) echo "usage: $0 [-b BUILD] [-j JOBS] [-o OUT] [TEST...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
only="$*"

icd=
for lib in /usr/lib/oclgrind/liboclgrind-rt-icd.so /usr/lib/*/oclgrind/liboclgrind-rt-icd.so \
    /usr/lib/*/liboclgrind-rt-icd.so; do
    [ -f "$lib" ] && { icd=$lib; break; }
done
[ -n "$icd" ] || { echo "oclgrind: Oclgrind's ICD library is not installed (apt-get install oclgrind)" >&2; exit 1; }

root=${root:-$build/oclgrind}
rm -rf "$root"
mkdir -p "$root/vendors" "$root/cache"
echo "$icd" >"$root/vendors/oclgrind.icd"
# POCL too, for the test that builds one program on both drivers into one cache
# (test_program_drivers); every other test opens Oclgrind ($CLCNN_TEST_DEVICE).
for f in /etc/OpenCL/vendors/pocl.icd; do [ -f "$f" ] && cp "$f" "$root/vendors/"; done

runs="gpu cpu gpu-limits"
joblist=$root/jobs.txt
: >"$joblist"
grep -v '^[[:space:]]*\(#\|$\)' "$here/tests.txt" | while read -r test which functions; do
    if [ -n "$only" ]; then
        case " $only " in *" $test "*) ;; *) continue ;; esac
    fi
    [ -x "$build/$test" ] || { echo "oclgrind: $build/$test is not built" >&2; echo missing >"$root/missing"; }
    # no trailing blank: xargs -L would join the next line to this one
    for r in $(echo "$which" | tr ',' ' '); do echo "$r $test${functions:+ $functions}"; done >>"$joblist"
done
[ -f "$root/missing" ] && exit 1
for r in $runs; do mkdir -p "$root/$r"; : >"$root/$r/kernels.txt"; done

start=$(date +%s)
echo "oclgrind: $(wc -l <"$joblist") test runs on Oclgrind ($icd), $jobs at a time; results in $root"
# Longest first is the order of tests.txt.
export OCL_ICD_VENDORS="$root/vendors" CLCNN_TEST_DEVICE=oclgrind CLCNN_CACHE_DIR="$root/cache"
xargs -P "$jobs" -L 1 sh -c '
    run=$0 test=$1 functions=${2:-}
    case $run in
    gpu) export CLCNN_DEVICE_CLASS=gpu ;;
    cpu) export CLCNN_DEVICE_CLASS=cpu ;;
    gpu-limits) export CLCNN_DEVICE_CLASS=gpu OCLGRIND_MAX_WGSIZE=256 OCLGRIND_LOCAL_MEM_SIZE=49152 ;;
    esac
    "'"$here"'/check.sh" "'"$root"'/$run" "'"$build"'/$test" "$functions" || echo "$run $test" >>"'"$root"'/failed"
' <"$joblist"
secs=$(( $(date +%s) - start ))

# ---- summary: kernels and define sets launched per run, coverage ----
echo
echo "oclgrind: kernels launched (file kernel defines), per run:"
for r in $runs; do
    sort -u "$root/$r/kernels.txt" -o "$root/$r/kernels.txt"
    echo "== $r: $(cut -d' ' -f1,2 "$root/$r/kernels.txt" | sort -u | wc -l) kernels, $(wc -l <"$root/$r/kernels.txt") kernel/define sets"
    sed 's/^/  /' "$root/$r/kernels.txt"
done
cat "$root/gpu/kernels.txt" "$root/gpu-limits/kernels.txt" | sort -u >"$root/gpu-all.txt"
echo "== define sets launched with CLCNN_DEVICE_CLASS=gpu and never with cpu:"
comm -23 "$root/gpu-all.txt" "$root/cpu/kernels.txt" | sed 's/^/  /'

perl "$here/kernels.pl" "$src"/cl/*.cl | sort -u >"$root/defined.txt"
cat "$root"/*/kernels.txt | cut -d' ' -f1,2 | sort -u >"$root/launched.txt"
grep -v '^[[:space:]]*\(#\|$\)' "$here/not-covered.txt" | cut -d' ' -f1,2 | sort -u >"$root/excused.txt"
comm -23 "$root/defined.txt" "$root/launched.txt" | comm -23 - "$root/excused.txt" >"$root/uncovered.txt"
echo
echo "oclgrind: $(wc -l <"$root/launched.txt") of $(wc -l <"$root/defined.txt") kernels of cl/ launched; not run here (tests/oclgrind/not-covered.txt):"
comm -12 "$root/defined.txt" "$root/excused.txt" | comm -23 - "$root/launched.txt" | sed 's/^/  /'
status=0
if [ -s "$root/uncovered.txt" ] && [ -z "$only" ]; then
    echo "oclgrind: FAIL: kernels no run launched and not-covered.txt does not list:"
    sed 's/^/  /' "$root/uncovered.txt"
    status=1
fi
if [ -f "$root/failed" ]; then
    echo "oclgrind: FAIL: $(wc -l <"$root/failed") of $(wc -l <"$joblist") test runs failed:"
    sed 's/^/  /' "$root/failed"
    status=1
fi
[ $status = 0 ] && echo "oclgrind: all $(wc -l <"$joblist") test runs passed, no Oclgrind errors, in ${secs} s"
exit $status
