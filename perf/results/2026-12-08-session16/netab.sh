#!/bin/bash
# /tmp/netab.sh ROUNDS OP MODEL BIN_A BIN_B [extra args] -> ms per call (median of runs) per round, alternating
rounds=$1; op=$2; model=$3; A=$4; B=$5; shift 5
for r in $(seq $rounds); do
  order="A B"; [ $((r % 2)) -eq 0 ] && order="B A"
  for b in $order; do
    bin=$A; [ $b = B ] && bin=$B
    ms=$(CLCNN_TUNE=off $bin --op $op --model $model --batch 8 --runs ${RUNS:-3} --no-peak --format csv --quiet "$@" 2>/dev/null | python3 -c 'import csv,sys; r=list(csv.DictReader(sys.stdin)); print(r[0]["ms"])')
    echo "$r $b $ms"
  done
done | python3 -c "
import sys,collections
d=collections.defaultdict(list)
for l in sys.stdin:
    r,b,m=l.split(); d[b].append(float(m))
print('$model $op A', ' '.join('%.1f'%x for x in d['A']), '| B', ' '.join('%.1f'%x for x in d['B']), '| A/B min %.2f'%(min(d['A'])/min(d['B'])))
"
