#!/bin/bash
# /tmp/cfgcmp.sh ROUNDS SUITE OP "cfg1" "cfg2" ... -> min ms per (shape,cfg) over rounds
rounds=$1; suite=$2; op=$3; shift 3
for r in $(seq $rounds); do
  for cfg in "$@"; do
    CLCNN_CONV_IMPLICIT_CFG="$cfg" CLCNN_TUNE=off /work/main/build/clcnn-perf --op $op --suite $suite --algo ${ALGO:-implicit_gemm} --runs ${RUNS:-20} --no-peak --quiet 2>&1 | awk -v c="$cfg" 'NR>2{print $3"|"c"|"$(NF-6)}'
  done
done | python3 -c "
import sys,collections
d=collections.defaultdict(list)
for l in sys.stdin:
    s,c,m=l.strip().split('|'); d[(s,c)].append(float(m))
for (s,c),v in d.items(): print('%-14s %-22s min %.3f  all %s'%(s,'['+c+']',min(v),' '.join('%.2f'%x for x in v)))
"
