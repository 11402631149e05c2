"""ONNX Runtime's per-node profile of one model (session 10's comparison with clcnn's
CLCNN_PROFILE=steps): .venv-ort/bin/python ortprof.py MODEL.onnx, batch 8, 2 threads,
3 warm-up and 10 timed runs; prints ms per batch and the 40 costliest nodes. ORT writes
its profile JSON into the current directory."""
import onnxruntime as ort, numpy as np, json, sys, collections
so=ort.SessionOptions(); so.intra_op_num_threads=2; so.enable_profiling=True
s=ort.InferenceSession(sys.argv[1],so,providers=['CPUExecutionProvider'])
x=np.random.rand(8,3,224,224).astype(np.float32)
n=s.get_inputs()[0].name
for i in range(3): s.run(None,{n:x})
import time; t=time.time()
for i in range(10): s.run(None,{n:x})
print("ms/batch",(time.time()-t)*100)
f=s.end_profiling()
ev=json.load(open(f))
d=collections.defaultdict(float); cnt=collections.Counter()
for e in ev:
    if e.get('cat')=='Node' and e['name'].endswith('_kernel_time'):
        d[(e['name'][:-12],e['args'].get('op_name'))]+=e['dur']; cnt[e['name']]+=1
tot=sum(d.values())/13
print("node total ms/batch %.1f"%(tot/1000))
for (k,op),v in sorted(d.items(),key=lambda x:-x[1])[:40]: print("%-50s %-20s %.2f"%(k[:50],op,v/13/1000))
