#!/usr/bin/env bash
# clcnn's checkpoints through the official safetensors reader and writer (the PyPI package
# `safetensors`; Debian 12 has none, so this test is skipped, exit 77, where the Python it
# uses cannot import it — set CLCNN_TEST_PYTHON to a venv's python that can, e.g. one made
# with `/usr/bin/python3 -m venv --system-site-packages` plus `pip install safetensors`).
# The other direction, PyTorch's state_dict written by the official writer loading into
# clcnn, is test_safetensors_interop, which always runs.
#
# 1. `clcnn train --model tests/onnx/fmnist_bn_cnn.onnx` for a few steps writes a checkpoint;
# 2. safetensors.safe_open reads it: every initializer of the ONNX file is there under its
#    name (PyTorch's), float32, with the ONNX shape; the optimizer state and the metadata too;
# 3. safetensors.numpy.save_file writes the tensors and metadata it read to a new file, and
#    `clcnn eval` of that file gives exactly what `clcnn eval` of the original gives.
#
#   tests/safetensors_official.sh CLCNN_BINARY     (ctest: safetensors_official)
set -euo pipefail
cli="$1"
here="$(cd "$(dirname "$0")" && pwd)"
py="${CLCNN_TEST_PYTHON:-/usr/bin/python3}"
tag=safetensors_official
# shellcheck source=tests/cli_lib.sh
. "$here/cli_lib.sh"
if ! "$py" -c 'import safetensors.numpy, onnx' 2>/dev/null; then
  echo "$tag: skipped: $py cannot import safetensors (PyPI only) and onnx"
  exit 77
fi
cli_need_data
cli_tmp
model="$here/onnx/fmnist_bn_cnn.onnx"
"$cli" train --model "$model" --epochs 1 --limit-train 256 --limit-test 200 --seed 3 \
  --checkpoint "$tmp/c.safetensors" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
"$py" - "$model" "$tmp/c.safetensors" "$tmp/d.safetensors" <<'PY'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
from safetensors import safe_open
from safetensors.numpy import save_file

model, src, dst = sys.argv[1:]
init = {i.name: numpy_helper.to_array(i) for i in onnx.load(model).graph.initializer}
with safe_open(src, framework="np") as f:
    meta = f.metadata()
    tensors = {k: f.get_tensor(k) for k in f.keys()}
for name, ref in init.items():
    t = tensors.get(name)
    if t is None:
        sys.exit(f"safetensors_official: {name} is not in clcnn's checkpoint")
    if t.dtype != np.float32 or t.shape != ref.shape:
        sys.exit(f"safetensors_official: {name}: {t.dtype} {t.shape}, ONNX has {ref.shape}")
    if not np.isfinite(t).all():
        sys.exit(f"safetensors_official: {name} holds NaN or Inf")
moved = [n for n in init if n.endswith("weight") and not np.array_equal(tensors[n], init[n])]
optim = [k for k in tensors if k.startswith("optim.")]
if not moved or not optim or "optim.kind" not in meta:
    sys.exit(f"safetensors_official: trained weights {moved}, optimizer state {optim}, "
             f"metadata {sorted(meta)}")
save_file(tensors, dst, metadata=meta)
print(f"official reader: {len(tensors)} tensors ({len(init)} ONNX initializers by name, "
      f"{len(optim)} optimizer slots), metadata {sorted(meta)}; rewritten by the official writer")
PY
"$cli" eval --checkpoint "$tmp/c.safetensors" --limit-test 200 --json >"$tmp/c.json"
"$cli" eval --checkpoint "$tmp/d.safetensors" --limit-test 200 --json >"$tmp/d.json"
strip() { sed -e 's/"checkpoint": "[^"]*", //' -e 's/"seconds": [0-9.]*, //' "$1"; }
if [ "$(strip "$tmp/c.json")" != "$(strip "$tmp/d.json")" ]; then
  cat "$tmp/c.json" "$tmp/d.json"
  fail "the rewritten checkpoint evaluates otherwise"
fi
echo "safetensors_official: clcnn eval of the official writer's copy equals the original"
