#!/usr/bin/python3
"""Write the tiny ONNX classifiers of tests/test_predict_onnx.c (tests/data/predict_*.onnx)
with Debian's python3-onnx (apt-get install python3-onnx; run with /usr/bin/python3):
- predict_rgb.onnx: N x 3 x 8 x 8 images (symbolic batch) -> Flatten -> Gemm -> 5 logits;
- predict_gray.onnx: 1 x 1 x 6 x 4 images (fixed batch, non-square) -> Flatten -> Gemm
  -> Softmax -> 4 probabilities.
A linear classifier lets the test compute the expected scores on the host from the
model's own initializers, so every preprocessed pixel counts."""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

OUT = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def save(model, name):
    onnx.checker.check_model(model)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(model.SerializeToString())


def linear(name, in_shape, classes, softmax):
    feat = int(np.prod(in_shape[1:]))
    w = numpy_helper.from_array((0.1 * rng.standard_normal((classes, feat))).astype(np.float32), "W")
    b = numpy_helper.from_array((0.5 * rng.standard_normal(classes)).astype(np.float32), "B")
    out = "probs" if softmax else "logits"
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [in_shape[0], classes])],
        [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


save(linear("predict_rgb", ["N", 3, 8, 8], 5, False), "predict_rgb.onnx")
save(linear("predict_gray", [1, 1, 6, 4], 4, True), "predict_gray.onnx")
