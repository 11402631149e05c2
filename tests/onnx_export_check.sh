#!/usr/bin/env bash
# Runs ONNX's own checker (onnx.checker.check_model with full_check=True: every node
# against its opset-17 schema, attribute types, topological order, and ONNX's shape
# inference agreeing with the shapes the file declares) on the files test_onnx_export
# left in DIR, and checks what clcnn promises of them: IR 8, opset 17, the batch as the
# symbolic dimension "N" on every input and output, initializers as raw_data and not
# listed as inputs. Uses Debian's /usr/bin/python3 with python3-onnx; without it the test
# is skipped (exit 77) saying so.
#
#   tests/onnx_export_check.sh DIR      (ctest: onnx_export_check, after test_onnx_export)
set -euo pipefail
dir="$1"
py=/usr/bin/python3
if ! "$py" -c 'import onnx' 2>/dev/null; then
  echo "onnx_export_check: skipped: $py cannot import onnx (apt-get install python3-onnx, or make deps)"
  exit 77
fi
shopt -s nullglob
files=("$dir"/*.onnx)
if [ ${#files[@]} -lt 4 ]; then
  echo "onnx_export_check: expected the files of test_onnx_export in $dir, found ${#files[@]}"
  exit 1
fi
"$py" - "${files[@]}" <<'PY'
import sys
import onnx
from onnx import TensorProto

bad = 0
for path in sys.argv[1:]:
    m = onnx.load(path)
    why = []
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception as e:  # the checker's own message says what is wrong
        why.append("checker: %s" % str(e).strip().splitlines()[0])
    if m.ir_version != 8:
        why.append("ir_version %d" % m.ir_version)
    ops = {o.domain: o.version for o in m.opset_import}
    if ops != {"": 17}:
        why.append("opset_import %s" % ops)
    inits = {t.name for t in m.graph.initializer}
    for t in m.graph.initializer:
        if t.data_type in (TensorProto.FLOAT, TensorProto.INT64) and not t.raw_data:
            why.append("initializer %s without raw_data" % t.name)
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name in inits:
            why.append("initializer %s listed as a graph input" % v.name)
        d0 = v.type.tensor_type.shape.dim[0]
        if d0.dim_param != "N":
            why.append("%s: first dimension %s, not N" % (v.name, d0))
    print("%s %s: %d nodes, %d initializers%s" % ("FAIL" if why else "ok  ", path,
          len(m.graph.node), len(m.graph.initializer), "".join("\n    " + w for w in why)))
    bad += bool(why)
sys.exit(1 if bad else 0)
PY
