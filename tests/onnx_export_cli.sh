#!/usr/bin/env bash
# The command's round trip: `clcnn train` one short epoch into a checkpoint, `clcnn export`
# it with a test case (a seeded input and the checkpoint's outputs computed through a plan
# of its graph), then `clcnn onnx test` runs the exported file on that input and must give
# the same bytes (--rtol 0 --atol 0). Also: a zoo model with its initial weights exports,
# and a failed export (missing folder, a write that fails) leaves an existing file alone.
#
#   tests/onnx_export_cli.sh CLCNN_BINARY      (ctest: onnx_export_cli)
set -euo pipefail
cli="$1"
tag=onnx_export_cli
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
cli_need_data
cli_tmp
"$cli" train --epochs 1 --limit-train 512 --limit-test 100 --batch 64 --seed 3 \
  --checkpoint "$tmp/bn.safetensors" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
mkdir -p "$tmp/case"
"$cli" export --checkpoint "$tmp/bn.safetensors" --out "$tmp/case/model.onnx" \
  --test-data "$tmp/case/test_data_set_0" --batch 5
"$cli" onnx test --rtol 0 --atol 0 "$tmp/case"

# a zoo model with its initial weights, the same way
mkdir -p "$tmp/lenet"
"$cli" export --model lenet --seed 9 --out "$tmp/lenet/model.onnx" \
  --test-data "$tmp/lenet/test_data_set_0"
"$cli" onnx test --rtol 0 --atol 0 "$tmp/lenet"

# the exported model takes another batch size than the test data's (symbolic N)
"$cli" summary --model "$tmp/case/model.onnx" --batch 3 >"$tmp/summary.txt" 2>&1 ||
  { cat "$tmp/summary.txt"; exit 1; }

# a failed export exits 1 naming the problem; a write that fails half way (a file size
# limit of 16 KiB, SIGXFSZ ignored so the write returns EFBIG) leaves the old file and no
# temporary file
if "$cli" export --model lenet --out "$tmp/no/such/dir/model.onnx" 2>"$tmp/err.txt"; then
  echo "onnx_export_cli: export into a missing folder succeeded"; exit 1
fi
grep -q "no/such/dir" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
echo "keep me" >"$tmp/keep.onnx"
if (trap '' XFSZ; ulimit -f 16; exec "$cli" export --model lenet --out "$tmp/keep.onnx") \
  2>"$tmp/err.txt"; then
  echo "onnx_export_cli: export past the file size limit succeeded"; exit 1
fi
grep -q "left as it was" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
[ "$(cat "$tmp/keep.onnx")" = "keep me" ] || { echo "onnx_export_cli: keep.onnx changed"; exit 1; }
if ls "$tmp"/keep.onnx.tmp.* >/dev/null 2>&1; then
  echo "onnx_export_cli: temporary file left behind"; exit 1
fi
echo "onnx_export_cli: ok"
