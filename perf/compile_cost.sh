#!/usr/bin/env bash
# perf/compile_cost.sh: the cold compile cost of kernel programs, per file and in total.
#
#   perf/compile_cost.sh [--build DIR] [--kernels DIR] [--match REGEX] [--test-settings]
#       [--keep FILE] VARIANTS
#
# VARIANTS lists programs, one per line as "FILE -DNAME=V ..." (a CLCNN_TRACE_BUILDS file
# works too: its first three columns are skipped when the second is a number). Every
# distinct program is compiled once, from empty program and POCL caches, by
# `clcnn cache warm` on a copy of the kernel files that names the variants
# ("clcnn-warm:" lines), with CLCNN_TRACE_BUILDS on: the CPU time of the build plus the
# binary fetch, where POCL generates the machine code of every kernel of the program.
#
#   --build DIR      holds clcnn (default build)
#   --kernels DIR    the kernel files to compile (default cl/): compare two versions of a
#                    kernel by running this twice, once per directory
#   --match REGEX    only the variants whose line matches (grep -E)
#   --test-settings  POCL as the tests run it (POCL_WORK_GROUP_SPECIALIZATION=0,
#                    POCL_WORK_GROUP_METHOD=loops); default: POCL's defaults, as a user
#   --keep FILE      write the per-program trace there
#
# Example: what the test suite's convolution programs cost, old kernels against new:
#   CLCNN_TRACE_BUILDS=/tmp/t.txt make test
#   git show OLD:cl/conv2d_implicit.cl > /tmp/old/conv2d_implicit.cl  (and the other files)
#   perf/compile_cost.sh --kernels /tmp/old --match conv2d_implicit /tmp/t.txt
#   perf/compile_cost.sh --match conv2d_implicit /tmp/t.txt
# The machine's load changes CPU times little, but run nothing else beside it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
kernels=$root/cl
match=.
test_env=()
keep=
while [ $# -gt 1 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --kernels) kernels=$2; shift 2 ;;
    --match) match=$2; shift 2 ;;
    --test-settings) test_env=(POCL_WORK_GROUP_SPECIALIZATION=0 POCL_WORK_GROUP_METHOD=loops); shift ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "compile_cost: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 1 ] || { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
list=$1
[ -x "$build/clcnn" ] || { echo "compile_cost: no $build/clcnn (build first)" >&2; exit 1; }
[ -r "$list" ] || { echo "compile_cost: cannot read $list" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cl" "$work/cache" "$work/pocl"
cp "$kernels"/*.cl "$work/cl/"
cp "$kernels"/*.h "$work/cl/" 2>/dev/null || true
# "FILE -DA=1 -DB=2 [-cl-std=...]" -> FILE "A=1 B=2", each program once
awk '$2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { $1 = $2 = $3 = "" } { print }' "$list" |
  grep -E -- "$match" |
  awk '{ d = ""; for (i = 2; i <= NF; i++) if ($i ~ /^-D/) d = d " " substr($i, 3);
         print $1 "\t" substr(d, 2) }' | sort -u > "$work/variants"
n=$(wc -l < "$work/variants")
[ "$n" -gt 0 ] || { echo "compile_cost: no variant of $list matches '$match'" >&2; exit 1; }
# only the listed variants are warmed: the files' own clcnn-warm lines are dropped
for f in "$work"/cl/*.cl; do sed -i 's/clcnn-warm:/clcnn-warm-not-listed:/g' "$f"; done
while IFS=$'\t' read -r file defs; do
  [ -f "$work/cl/$file.cl" ] || { echo "compile_cost: no $kernels/$file.cl" >&2; exit 1; }
  printf '/* clcnn-warm: %s */\n' "$defs" >> "$work/cl/$file.cl"
done < "$work/variants"
# files without a listed variant would be warmed with their defaults: leave them out
for f in "$work"/cl/*.cl; do
  grep -q "clcnn-warm: " "$f" || rm "$f"
done

env "${test_env[@]}" CLCNN_KERNEL_DIR="$work/cl" CLCNN_CACHE_DIR="$work/cache" \
  POCL_CACHE_DIR="$work/pocl" CLCNN_TRACE_BUILDS="$work/trace" \
  "$build/clcnn" cache warm > "$work/warm.out" 2>&1 ||
  { cat "$work/warm.out" >&2; echo "compile_cost: clcnn cache warm failed" >&2; exit 1; }
[ -n "$keep" ] && cp "$work/trace" "$keep"
echo "kernels: $kernels; POCL: ${test_env[*]:-defaults}; $n programs"
awk '{ c[$4] += $2; k[$4]++; t += $2 }
     END { for (f in c) printf "%-20s %4d programs %9.1f s CPU\n", f, k[f], c[f] / 1000;
           printf "%-20s %4d programs %9.1f s CPU\n", "total", NR, t / 1000 }' "$work/trace" |
  sort -k4 -n
