#!/usr/bin/env bash
# Runs every case of ONNX's backend test data that Debian's libonnx-testdata ships
# (data/node, data/pytorch-converted, data/simple), and the whole networks PyTorch exported
# for us (tests/onnx/torch, made by tests/onnx/make_torch_cases.py, PyTorch's outputs as the
# references), with `clcnn onnx test` and compares the
# verdict of each case with tests/onnx/backend_expected.txt: a line per case, "pass NAME"
# or "skip NAME: why" (the unsupported op, element type or attribute). The test fails when
# any case fails, when a case that passed is skipped now, or when a case changes from skip
# to pass without the file being updated (so the list stays the truth).
#
#   tests/onnx_backend.sh CLCNN_BINARY                run and compare (ctest: onnx_backend)
#   tests/onnx_backend.sh CLCNN_BINARY --update       rewrite the expected file
set -euo pipefail
cli="$1"
mode="${2:-check}"
here="$(cd "$(dirname "$0")" && pwd)"
data=/usr/share/libonnx-testdata/data
expected="$here/onnx/backend_expected.txt"
if [ ! -d "$data/node" ]; then
  echo "onnx_backend: $data not found (apt-get install libonnx-testdata, or make deps)"
  exit 77
fi
out="$(mktemp)"
trap 'rm -f "$out" "$out.got"' EXIT
status=0
for suite in node pytorch-converted simple torch; do
  dir="$data/$suite"
  [ "$suite" = torch ] && dir="$here/onnx/torch"
  "$cli" onnx test "$dir"/* >"$out.raw" 2>&1 || status=1
  # one line per case: verdict, suite/name, reason without the model's path
  sed -E -n "s#^(pass|skip|FAIL)  ([^:]*)(: )?(.*)\$#\\1 $suite/\\2\\3\\4#p" "$out.raw" |
    sed -E "s# \\(loading '[^']*'\\)##; s#/usr/share/libonnx-testdata/data/##g; s#$here/##g; s#^(pass [^:]*):.*#\\1#" >>"$out"
  tail -1 "$out.raw"
done
rm -f "$out.raw"
sort "$out" >"$out.got"
summary="$(awk '{c[$1]++} END {printf "%d passed, %d failed, %d skipped\n", c["pass"], c["FAIL"], c["skip"]}' "$out.got")"
if [ "$mode" = "--update" ]; then
  cp "$out.got" "$expected"
  echo "onnx_backend: wrote $expected ($summary)"
  exit 0
fi
grep '^FAIL' "$out.got" && status=1
if ! diff <(cut -d: -f1 "$expected") <(cut -d: -f1 "$out.got") >"$out.diff"; then
  echo "onnx_backend: verdicts differ from tests/onnx/backend_expected.txt (< expected, > now):"
  cat "$out.diff"
  echo "(after adding an operator: tests/onnx_backend.sh build/clcnn --update, and review the diff)"
  status=1
fi
rm -f "$out.diff"
echo "onnx backend cases: $summary"
exit $status
