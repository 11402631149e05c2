#!/usr/bin/python3
"""perf/pytorch_train_bench.py: images/s of a PyTorch training step on the architectures of
clcnn's model zoo, for perf/compare_pytorch_train.sh.

    /usr/bin/python3 perf/pytorch_train_bench.py MODEL [--batch N] [--runs N]
        [--warmup N] [--threads N] [--classes N]

Prints one CSV line: model,batch,images_per_s,ms (the median of --runs timed steps after
--warmup untimed ones). A step is what `clcnn-perf --op net_train` times: forward in
training mode (batch statistics, dropout on), softmax cross-entropy with random labels,
backward, and SGD with momentum 0.9 (lr 0.01, no weight decay). Needs Debian's PyTorch
(python3-torch, python3-torchvision), hence /usr/bin/python3.

Models: bn and lenet (1x28x28, 10 classes, as lib/nn/zoo.c builds them), alexnet (clcnn's
one-tower AlexNet, 3x227x227), vgg16, resnet50, mobilenet_v2 (3x224x224; see
perf/onnx_export.py for how each matches the zoo).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_export import build as build_imagenet  # noqa: E402


def build_fashion(name, classes):
    """lib/nn/zoo.c's bn (conv-bn-relu-pool x2, fc128) and lenet (ReLU, max pooling)."""
    if name == "bn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32, eps=1e-5, momentum=0.1),
            nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64, eps=1e-5, momentum=0.1),
            nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(inplace=True),
            nn.Linear(128, classes))
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True), nn.Linear(84, classes))


def build(name):
    """(model, channels, size, classes)"""
    if name in ("bn", "lenet"):
        return build_fashion(name, 10), 1, 28, 10
    model, size = build_imagenet(name)
    return model, 3, size, 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=["bn", "lenet", "alexnet", "vgg16", "resnet50",
                                      "mobilenet_v2"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, c, size, classes = build(args.model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch, c, size, size)
    y = torch.randint(0, classes, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    print(f"{args.model},{args.batch},{args.batch / ms * 1e3:.3f},{ms:.3f}")


if __name__ == "__main__":
    main()
