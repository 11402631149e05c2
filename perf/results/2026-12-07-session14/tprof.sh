#!/bin/bash
# /tmp/tprof.sh MODEL [ENV] : per-node training ms per step (runs 3 - runs 1)/2
B=${BIN:-/work/main/build}
for r in 1 3; do env $2 CLCNN_PROFILE=steps CLCNN_TUNE=off $B/clcnn-perf --op net_train --model $1 --batch ${BATCH:-8} --runs $r --no-peak --quiet > /tmp/tp$r.txt 2>&1; done
python3 - <<'PY'
import re
def rd(f):
    d={}
    for l in open(f):
        m=re.match(r'\s+(\S.*?)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+[\d.]+%',l)
        if m: d[m.group(1)]=(float(m.group(2)),int(m.group(3)))
    return d
a=rd('/tmp/tp1.txt'); b=rd('/tmp/tp3.txt')
rows=[((b[k][0]-a.get(k,(0,0))[0])/2,k) for k in b if k!='total']
rows.sort(reverse=True)
import os
for t,k in rows[:int(os.environ.get('TOP','60'))]: print('%8.2f  %s'%(t,k))
print('sum %.1f'%sum(r[0] for r in rows))
PY
