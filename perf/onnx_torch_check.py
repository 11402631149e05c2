#!/usr/bin/python3
"""Full-size torchvision networks (random weights, eval mode) exported to ONNX with their
PyTorch outputs, as ONNX backend test cases under OUT/<name>/, then run by
`clcnn onnx test` for the table of largest errors. Debian's python3-torch,
python3-torchvision and python3-onnx; run with /usr/bin/python3. Not part of the test
suite (the files are hundreds of MB): the small cases in tests/onnx/torch are.

  /usr/bin/python3 perf/onnx_torch_check.py [--out build/onnx-full] [--batch 8]
        [--clcnn build/clcnn] [--models resnet18,resnet50,...]
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision.models as tvm
import onnx
from onnx import numpy_helper

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "alexnet", "vgg16",
          "squeezenet1_0", "googlenet", "densenet121", "shufflenet_v2_x1_0", "efficientnet_b0",
          "regnet_y_400mf", "mnasnet1_0"]


def build(name):
    kw = {"weights": None}
    if name == "googlenet":
        kw.update(aux_logits=False, init_weights=True)
    return getattr(tvm, name)(**kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/onnx-full")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--clcnn", default="build/clcnn")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rtol", default="1e-3")
    ap.add_argument("--atol", default="1e-4")
    a = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    for name in a.models.split(","):
        d = os.path.join(a.out, name)
        os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
        t0 = time.time()
        m = build(name).eval()
        for mod in m.modules():  # non-trivial batch-norm statistics
            if isinstance(mod, torch.nn.BatchNorm2d):
                with torch.no_grad():
                    mod.running_mean.uniform_(-0.1, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
        x = torch.randn(a.batch, 3, 224, 224)
        with torch.no_grad():
            y = m(x)
        torch.onnx.export(m, x, os.path.join(d, "model.onnx"), opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        for kind, t in (("input_0", x), ("output_0", y)):
            with open(os.path.join(d, "test_data_set_0", kind + ".pb"), "wb") as f:
                f.write(numpy_helper.from_array(t.numpy().astype(np.float32)).SerializeToString())
        r = subprocess.run([a.clcnn, "onnx", "test", "--rtol", a.rtol, "--atol", a.atol, d],
                           capture_output=True, text=True)
        line = r.stdout.splitlines()[0] if r.stdout else r.stderr.strip()
        rows.append((name, line, time.time() - t0))
        print(f"{name}: {line} ({time.time() - t0:.0f} s)", flush=True)
    print("\n| model | clcnn onnx test (rtol %s, atol %s) |" % (a.rtol, a.atol))
    print("|---|---|")
    for name, line, _ in rows:
        print(f"| {name} | {line} |")


if __name__ == "__main__":
    sys.exit(main())
