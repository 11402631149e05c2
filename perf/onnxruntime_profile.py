#!/usr/bin/env python3
"""perf/onnxruntime_profile.py: ONNX Runtime's CPU time per node of one ONNX model.

    python perf/onnxruntime_profile.py MODEL.onnx [--batch 8] [--threads N] [--runs 10]
                                       [--warmup 3] [--seed 0] [--csv]

For comparison only, beside clcnn's own per-step profile of the same export
(CLCNN_PROFILE=steps build/clcnn-perf --op net_infer --exec plan --model MODEL.onnx
--batch 8): which layers ONNX Runtime runs faster. onnxruntime is no dependency of
clcnn or its tests; run this with the interpreter that has it (e.g. .venv-ort/bin/python,
which perf/compare_onnxruntime.sh makes).

The session is set up as perf/onnxruntime_bench.py's (CPUExecutionProvider, every graph
optimization, --threads intra-op threads, sequential execution) with ONNX Runtime's
profiler on. After --warmup untimed calls, --runs calls are profiled; per node (after
ORT's fusions: a Conv may carry its ReLU or Add, and ORT's NCHWc reorders appear as
nodes of their own) it prints the median of its kernel times over the runs, in ms, in
the order the nodes ran, then their sum. --csv prints node,op,ms,output_shape lines
instead of the table. The profile's JSON file is written to the system's temporary
directory and removed.
"""
import argparse
import json
import os
import statistics
import tempfile

import onnxruntime as ort

# the session and input of perf/onnxruntime_bench.py (this script's folder is on sys.path)
from onnxruntime_bench import add_run_args, check_run_args, make_session, random_feed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, warmup=3)
    ap.add_argument("--csv", action="store_true", help="node,op,ms,output_shape lines")
    args = ap.parse_args()
    check_run_args(ap, args)

    tmp = tempfile.mkdtemp(prefix="ort-profile-")
    sess = make_session(args.model, args.threads, os.path.join(tmp, "profile"))
    feed = random_feed(sess, args.model, args.batch, args.seed)
    for _ in range(args.warmup + args.runs):
        sess.run(None, feed)
    path = sess.end_profiling()
    try:
        with open(path) as f:
            events = json.load(f)
    finally:
        os.remove(path)
        os.rmdir(tmp)

    # kernel times per node, in the order the nodes first ran; the last --runs of each
    times, info = {}, {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        times.setdefault(node, []).append(e["dur"] / 1000.0)
        a = e.get("args", {})
        shapes = a.get("output_type_shape", [])
        shape = "x".join(str(d) for s in shapes[:1] for v in s.values() for d in v)
        info[node] = (a.get("op_name", ""), shape)
    rows = [(n, info[n][0], statistics.median(t[-args.runs:]), info[n][1])
            for n, t in times.items()]
    total = sum(r[2] for r in rows)
    if args.csv:
        print("node,op,ms,output_shape")
        for n, op, ms, shape in rows:
            print(f"{n},{op},{ms:.4f},{shape}")
        return
    width = max([len(r[0]) for r in rows] + [4])
    for n, op, ms, shape in rows:
        print(f"{n:<{width}}  {op:<18} {ms:8.3f}  {shape}")
    print(f"{'total':<{width}}  {'':<18} {total:8.3f}  ms per batch of {args.batch}, "
          f"ONNX Runtime {ort.__version__}, {args.threads} threads")


if __name__ == "__main__":
    main()
