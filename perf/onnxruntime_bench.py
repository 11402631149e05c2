#!/usr/bin/env python3
"""perf/onnxruntime_bench.py: time ONNX Runtime's CPU inference of one ONNX model.

    python perf/onnxruntime_bench.py MODEL.onnx [--batch 8] [--threads N] [--runs 10]
                                     [--warmup 2] [--seed 0] [--header]

For comparison only (perf/compare_onnxruntime.sh): onnxruntime is no dependency of clcnn
or its tests. Run it with the interpreter that has onnxruntime (e.g. .venv-ort/bin/python).

CPUExecutionProvider, every graph optimization (ORT_ENABLE_ALL), intra_op_num_threads =
--threads (default: the number of cores), one inter-op thread, sequential execution.
Input: seeded uniform random values of shape (batch, C, H, W), C/H/W read from the model.
--warmup untimed calls, then --runs timed ones (wall clock around session.run, the output
copied back to numpy as a caller would). Prints one CSV line:

    model,batch,images_per_s,ms_per_batch_median,ort_version

model is the file name without .onnx; images_per_s = batch / median.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def add_run_args(ap, warmup):
    """The options every ORT perf script takes: the model, --batch, --threads, --runs,
    --warmup (default warmup) and --seed."""
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--seed", type=int, default=0)


def check_run_args(ap, args):
    """Exits through ap with a message when add_run_args' numbers are out of range."""
    if args.batch < 1 or args.runs < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--batch, --runs and --threads must be >= 1, --warmup >= 0")


def make_session(model, threads, profile_prefix=None):
    """model's CPU session as every perf script runs it (see the top); with
    profile_prefix, ONNX Runtime's profiler writes there."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def random_feed(sess, model, batch, seed):
    """The input feed: seeded uniform values in [-1, 1] of shape (batch, C, H, W), C/H/W
    read from the model; exits with a message when its input is not 4-D."""
    inp = sess.get_inputs()[0]
    dims = [d if isinstance(d, int) else None for d in inp.shape]
    if len(dims) != 4 or any(d is None for d in dims[1:]):
        sys.exit(f"{model}: expected an input (batch, C, H, W), got {inp.shape}")
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, *dims[1:])).astype(np.float32)
    return {inp.name: x}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap, warmup=2)
    ap.add_argument("--header", action="store_true", help="print the CSV header first")
    args = ap.parse_args()
    check_run_args(ap, args)

    sess = make_session(args.model, args.threads)
    feed = random_feed(sess, args.model, args.batch, args.seed)

    for _ in range(args.warmup):
        out = sess.run(None, feed)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    if not np.all(np.isfinite(out[0])):
        sys.exit(f"{args.model}: non-finite outputs")

    med = statistics.median(times)
    name = os.path.basename(args.model)
    if name.endswith(".onnx"):
        name = name[:-5]
    if args.header:
        print("model,batch,images_per_s,ms_per_batch_median,ort_version")
    print(f"{name},{args.batch},{args.batch / med:.2f},{med * 1e3:.2f},{ort.__version__}")


if __name__ == "__main__":
    main()
