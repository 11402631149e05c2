#!/usr/bin/env bash
# Fine-tuning an ONNX model through the command: tests/onnx/fmnist_bn_cnn.onnx (a small CNN
# with batch norm defined and exported by PyTorch, random weights; made by
# tests/onnx/make_finetune_model.py) trains one full epoch on Fashion-MNIST with
# `clcnn train --model FILE.onnx` and must reach 88 % test accuracy; `clcnn eval` of the
# checkpoint and of its `clcnn export` (the re-imported ONNX file with the trained weights)
# must give the same predictions (confusion matrices) and loss. Also: --num-classes replaces
# the classifier (the parameter shapes in the checkpoint follow), and a model whose input
# does not match the data fails naming both shapes.
#
#   tests/onnx_finetune_cli.sh CLCNN_BINARY      (ctest: onnx_finetune_cli)
set -euo pipefail
cli="$1"
here="$(cd "$(dirname "$0")" && pwd)"
model="$here/onnx/fmnist_bn_cnn.onnx"
tag=onnx_finetune_cli
# shellcheck source=tests/cli_lib.sh
. "$here/cli_lib.sh"
cli_need_data
cli_tmp

"$cli" train --model "$model" --epochs 1 --limit-test 2000 --seed 5 --print-every 1000 \
  --checkpoint "$tmp/ft.safetensors" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
cat "$tmp/train.log"
acc="$(sed -n 's/^done: test accuracy \([0-9.]*\)%.*/\1/p' "$tmp/train.log")"
[ -n "$acc" ] || fail "no test accuracy in the log"
awk -v a="$acc" 'BEGIN { exit !(a >= 88.0) }' || fail "test accuracy $acc% < 88%"

# the checkpoint keeps PyTorch's parameter names
"$cli" eval --checkpoint "$tmp/ft.safetensors" --limit-test 2000 --json >"$tmp/ckpt.json"
"$cli" export --checkpoint "$tmp/ft.safetensors" --out "$tmp/ft.onnx" >/dev/null
grep -q "features.1.running_mean" "$tmp/ft.onnx" || fail "exported names are not the model's"
"$cli" eval --model "$tmp/ft.onnx" --limit-test 2000 --json >"$tmp/onnx.json"
strip() { sed -e 's/"checkpoint": "[^"]*", "model": "[^"]*", //' -e 's/"seconds": [0-9.]*, //' "$1"; }
[ "$(strip "$tmp/ckpt.json")" = "$(strip "$tmp/onnx.json")" ] ||
  { cat "$tmp/ckpt.json" "$tmp/onnx.json"; fail "the exported model predicts otherwise"; }

# a new classifier: 10 -> 7 classes is refused for 10-class data, naming the flag's use
if "$cli" train --model "$model" --num-classes 7 --epochs 1 --limit-train 64 --limit-test 10 \
  --checkpoint "$tmp/x.safetensors" >"$tmp/err.txt" 2>&1; then
  fail "7 classes on 10-class data trained"
fi
grep -q "7 class scores; the data has 10" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
# an input shape unlike the data's: a 3x32x32 model on 1x28x28 images
if "$cli" train --model "$here/onnx/torch/small_resnet/model.onnx" --epochs 1 --limit-train 64 \
  --checkpoint "$tmp/x.safetensors" >"$tmp/err.txt" 2>&1; then
  fail "a 3x32x32 model trained on 1x28x28 data"
fi
grep -q "takes 3x32x32 inputs; the data has 1x28x28" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
echo "onnx_finetune_cli: ok (test accuracy $acc%)"
