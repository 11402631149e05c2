#!/usr/bin/python3
"""Write the seed corpus of fuzz_onnx (tests/fuzz/corpus/onnx/): small ONNX models built
with Debian's python3-onnx (apt-get install python3-onnx; run with /usr/bin/python3):
a Conv-BN-Relu-GAP-Gemm net whose flatten is an exported-style Shape/Gather/Unsqueeze/
Concat/Reshape sub-graph, an IR-3 model whose initializers are also inputs, a Concat DAG,
and a model with external data (refused when loaded from memory)."""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "onnx")
rng = np.random.default_rng(1)


def init(name, shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def save(model, name):
    onnx.checker.check_model(model)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(model.SerializeToString())


x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])
nodes = [
    helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
    helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"], epsilon=1e-3),
    helper.make_node("Relu", ["bn"], ["r"]),
    helper.make_node("GlobalAveragePool", ["r"], ["gap"]),
    helper.make_node("Shape", ["gap"], ["shp"]),
    helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
    helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
    helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
    helper.make_node("Concat", ["n1", "minus1"], ["newshape"], axis=0),
    helper.make_node("Reshape", ["gap", "newshape"], ["flat"]),
    helper.make_node("Gemm", ["flat", "fw", "fb"], ["y"], transB=1),
]
inits = [init("w", (4, 3, 3, 3)), init("b", (4,)), init("g", (4,)), init("be", (4,)),
         init("m", (4,)), numpy_helper.from_array(np.ones(4, np.float32), "v"),
         numpy_helper.from_array(np.array([0], np.int64), "ax"),
         numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
         init("fw", (5, 4)), init("fb", (5,))]
g = helper.make_graph(nodes, "net", [x], [y], inits)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "conv_bn_flatten.onnx")

# IR 3: initializers listed as inputs too, opset 7
x2 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])
w2 = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 2, 3, 3])
y2 = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 3])
g2 = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "ir3", [x2, w2], [y2],
                       [init("w", (3, 2, 3, 3))])
m2 = helper.make_model(g2, opset_imports=[helper.make_opsetid("", 7)])
m2.ir_version = 3
save(m2, "ir3_conv.onnx")

# a DAG: two branches concatenated, max pooled, softmax
x3 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 6])
y3 = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5, 3, 3])
nodes3 = [helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
          helper.make_node("LeakyRelu", ["a"], ["la"], alpha=0.2),
          helper.make_node("Conv", ["x", "wb"], ["b"]),
          helper.make_node("Concat", ["la", "b"], ["cat"], axis=1),
          helper.make_node("MaxPool", ["cat"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
g3 = helper.make_graph(nodes3, "dag", [x3], [y3], [init("wa", (3, 3, 3, 3)), init("wb", (2, 3, 1, 1))])
save(helper.make_model(g3, opset_imports=[helper.make_opsetid("", 13)]), "concat_dag.onnx")

# external data: the loader refuses it without a folder
w4 = init("w", (2, 3, 1, 1))
m4 = helper.make_model(helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "ext",
                                         [x3], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2, 6, 6])],
                                         [w4]), opset_imports=[helper.make_opsetid("", 13)])
t = m4.graph.initializer[0]
t.data_location = TensorProto.EXTERNAL
del t.external_data[:]
for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "24")):
    e = t.external_data.add()
    e.key, e.value = k, v
t.ClearField("raw_data")
with open(os.path.join(OUT, "external_data.onnx"), "wb") as f:
    f.write(m4.SerializeToString())
# constant folding of out-of-range numbers (found by fuzz_onnx in CI: a float constant
# cast to int64 overflowed, UBSan float-cast-overflow): Cast of 1e30/NaN/-1e30 to int64,
# int64 Add, Mul and Div that overflow, a Slice with int64-extreme steps; every result
# feeds a Reshape of x, so the loader either folds it or refuses the model cleanly
i64 = np.iinfo(np.int64)
x5 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
y5 = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
const5 = {"big": np.array([1e30, np.nan, -1e30, 2.5], np.float32),
          "max": np.array([i64.max], np.int64), "min": np.array([i64.min], np.int64),
          "one": np.array([1], np.int64), "m1": np.array([-1], np.int64),
          "st": np.array([0], np.int64), "en": np.array([4], np.int64),
          "ax0": np.array([0], np.int64), "huge": np.array([i64.max], np.int64),
          "shape6": np.array([6], np.int64)}
nodes5 = [helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v))
          for k, v in const5.items()]
nodes5 += [helper.make_node("Cast", ["big"], ["bigi"], to=TensorProto.INT64),
           helper.make_node("Add", ["max", "one"], ["ovadd"]),
           helper.make_node("Sub", ["min", "one"], ["ovsub"]),
           helper.make_node("Mul", ["max", "max"], ["ovmul"]),
           helper.make_node("Div", ["min", "m1"], ["ovdiv"]),
           helper.make_node("Slice", ["bigi", "st", "en", "ax0", "huge"], ["sl"]),
           helper.make_node("Concat", ["bigi", "ovadd", "ovsub", "ovmul", "ovdiv", "sl"],
                            ["cat5"], axis=0),
           helper.make_node("ReduceMin", ["cat5"], ["r5"], keepdims=1),
           helper.make_node("Reshape", ["x", "shape6"], ["flat5"]),
           helper.make_node("Reshape", ["flat5", "r5"], ["y"])]
g5 = helper.make_graph(nodes5, "fold_overflow", [x5], [y5])
m5 = helper.make_model(g5, opset_imports=[helper.make_opsetid("", 13)])
with open(os.path.join(OUT, "fold-overflow.onnx"), "wb") as f:
    f.write(m5.SerializeToString())
print("seeds written to", OUT)
