#!/bin/bash
# /tmp/bkab.sh ROUNDS OP SUITE [args]: per-shape min ms, binaries /tmp/old vs /work/main
rounds=$1; op=$2; suite=$3; shift 3
for r in $(seq $rounds); do
  for b in A B; do
    bin=/tmp/old/build/clcnn-perf; [ $b = B ] && bin=/work/main/build/clcnn-perf
    CLCNN_TUNE=off $bin --op $op --suite $suite --runs ${RUNS:-10} --no-peak --format csv --quiet "$@" 2>/dev/null | python3 -c "
import csv,sys
for r in csv.DictReader(sys.stdin): print('$b', r['shape'], r['ms'])"
  done
done | python3 -c "
import sys,collections
d=collections.defaultdict(lambda: collections.defaultdict(list)); order=[]
for l in sys.stdin:
    b,s,m=l.split()
    if s not in order: order.append(s)
    try: d[s][b].append(float(m))
    except: pass
ta=tb=0
for s in order:
    a=min(d[s]['A']); b=min(d[s]['B']); ta+=a; tb+=b
    print('%-14s A %8.3f B %8.3f  A/B %.2f'%(s,a,b,a/b))
print('%-14s A %8.3f B %8.3f  A/B %.2f'%('total',ta,tb,ta/tb))
"
