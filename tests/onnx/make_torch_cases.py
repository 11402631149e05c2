#!/usr/bin/python3
"""Whole networks exported by PyTorch, as ONNX backend test cases for `clcnn onnx test`
(tests/onnx/torch/<name>/model.onnx and test_data_set_0/input_0.pb, output_0.pb holding
PyTorch's own outputs). Run with Debian's python3-torch, python3-torchvision and
python3-onnx (/usr/bin/python3); the outputs are committed, so the test suite needs no
torch. Random weights (seeded), eval mode, batch-norm statistics randomised so that
folding them is exercised, 32x32 inputs and few channels so the files stay small.

  small_resnet       torchvision BasicBlocks, widths 8-16-32-64, one block per stage
  small_mobilenet_v2 torchvision's MobileNet-V2 at width 0.25 (ReLU6 = Clip), 10 classes
  shuffle_concat     a ShuffleNet-V2 style unit: split by slicing, a branch, Concat, channel
                     shuffle (Reshape, Transpose, Reshape), plus an SE-like Mul
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "torch")
torch.manual_seed(0)


def randomise_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


class SmallResNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, inp = [], 8
        for width, stride in ((8, 1), (16, 2), (32, 2), (64, 2)):
            down = None
            if stride != 1 or inp != width:
                down = nn.Sequential(nn.Conv2d(inp, width, 1, stride, bias=False),
                                     nn.BatchNorm2d(width))
            layers.append(BasicBlock(inp, width, stride, down))
            inp = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


class ShuffleConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                    nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.BatchNorm2d(8),
                                    nn.Conv2d(8, 8, 1), nn.ReLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 4, 1), nn.ReLU(),
                                nn.Conv2d(4, 16, 1), nn.Sigmoid())
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        a, b = x[:, :8], x[:, 8:]
        x = torch.cat((a, self.branch(b)), 1)
        n, c, h, w = x.shape
        x = x.reshape(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        x = x * self.se(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def save_case(name, model, batch=2, size=32):
    model.eval()
    randomise_bn(model)
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        y = model(x)
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    torch.onnx.export(model, x, os.path.join(d, "model.onnx"), opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    onnx.checker.check_model(os.path.join(d, "model.onnx"))
    for kind, t in (("input_0", x), ("output_0", y)):
        with open(os.path.join(d, "test_data_set_0", kind + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy().astype(np.float32)).SerializeToString())
    print(name, "written;", sum(p.numel() for p in model.parameters()), "parameters")


save_case("small_resnet", SmallResNet())
save_case("small_mobilenet_v2", torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10))
save_case("shuffle_concat", ShuffleConcat())
