#!/usr/bin/env bash
# Build and run the libFuzzer harnesses of tests/fuzz for a fixed time each, and print
# the executions per harness. Exit status 1 when any harness found a crash, a leak or a
# sanitizer report (the reproducer is saved under BUILD/artifacts/).
#
#   tests/fuzz/run.sh                      every harness for 300 s (the long run)
#   tests/fuzz/run.sh --seconds 60         every harness for 60 s (make fuzz FUZZ_SECONDS=60)
#   tests/fuzz/run.sh --only idx --seconds 3600
#   tests/fuzz/run.sh --seeds              rewrite the generated seeds of corpus/ and exit
#
# Inputs libFuzzer finds go to BUILD/corpus/<harness>/ (kept between runs), never into
# the committed seed corpus tests/fuzz/corpus/<harness>/. A crash found here becomes a
# regression test: copy the artifact into tests/fuzz/corpus/<harness>/ — test_fuzz_corpus
# replays every committed input in the normal and the sanitizer test suites.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$ROOT/build-fuzz"
SECONDS_EACH=300
ONLY=""
SEEDS=0
CC_FUZZ="${CC_FUZZ:-clang-14}"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --seeds) SEEDS=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

command -v "$CC_FUZZ" >/dev/null || { echo "run.sh: $CC_FUZZ not found (apt-get install clang-14 libclang-rt-14-dev, or make fuzz)" >&2; exit 2; }
cmake -S "$HERE" -B "$BUILD" -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

# The device harnesses share a program cache, so kernels compile once.
export CLCNN_CACHE_DIR="${CLCNN_CACHE_DIR:-$BUILD/cache}"
# Leaks of the OpenCL driver are not ours (see tests/lsan.supp).
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

if [ "$SEEDS" = 1 ]; then
  python3 "$HERE/make_corpus.py"
  CLCNN_FUZZ_WRITE_SEEDS="$HERE/corpus/safetensors" "$BUILD/fuzz_safetensors" -runs=0 \
    "$HERE/corpus/safetensors" >/dev/null 2>&1
  echo "seeds written under $HERE/corpus"
  exit 0
fi

# harness  max input length (bytes)  extra libFuzzer options
HARNESSES="idx:65536 safetensors:16384 selector:64 image:65536 tune:8192 onnx:16384"
mkdir -p "$BUILD/artifacts" "$BUILD/logs"
failed=0
total_execs=0
printf '%-18s %10s %8s %10s %8s %8s  %s\n' harness executions seconds exec/s corpus cov result
for entry in $HARNESSES; do
  name="${entry%%:*}"
  maxlen="${entry#*:}"
  [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && continue
  bin="$BUILD/fuzz_$name"
  [ -x "$bin" ] || { echo "fuzz_$name: not built (missing sources?)"; continue; }
  work="$BUILD/corpus/$name"
  mkdir -p "$work"
  log="$BUILD/logs/$name.log"
  t0=$(date +%s)
  set +e
  # -rss_limit_mb / -malloc_limit_mb: an input that makes a reader allocate more than
  # 1 GiB at once (trusting a size field) is reported as a bug.
  "$bin" "$work" "$HERE/corpus/$name" -max_total_time="$SECONDS_EACH" -max_len="$maxlen" \
    -timeout=30 -rss_limit_mb=3072 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$name-" >"$log" 2>&1
  rc=$?
  set -e
  t1=$(date +%s)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  [ -n "$execs" ] || execs=0
  cov=$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -1 | awk '{print $2}')
  corp=$({ grep -oE 'corp: [0-9]+' "$log" || true; } | tail -1 | awk '{print $2}')
  secs=$((t1 - t0))
  rate=$((execs / (secs > 0 ? secs : 1)))
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAILED (rc $rc; log $log)"
    failed=1
  fi
  total_execs=$((total_execs + execs))
  printf '%-18s %10s %8s %10s %8s %8s  %s\n' "fuzz_$name" "$execs" "$secs" "$rate" "${corp:-?}" "${cov:-?}" "$result"
  if [ $rc -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|check failed|Test unit written' "$log" | head -20 || true
  fi
done
echo "fuzz: $total_execs executions in total; artifacts (if any) in $BUILD/artifacts"
exit $failed
