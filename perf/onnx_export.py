#!/usr/bin/python3
"""perf/onnx_export.py: export the architectures of clcnn's model zoo to ONNX, with random
weights, for timing other runtimes on the same networks (perf/compare_onnxruntime.sh).

    /usr/bin/python3 perf/onnx_export.py [OUTDIR] [--models NAMES] [--opset N]

OUTDIR defaults to build/onnx; writes OUTDIR/<name>.onnx for each model (default: all of
resnet50 mobilenet_v2 alexnet vgg16 resnet18 efficientnet_b0). Needs Debian's PyTorch (apt-get install
python3-torch python3-torchvision python3-onnx), hence /usr/bin/python3, not a pyenv one.

Weights: torchvision's default initialisation after torch.manual_seed(0); the models are
in evaluation mode (batchnorm uses its running statistics, dropout is off). The batch axis
is dynamic ("batch"); height and width are fixed. Architectures, matched to
lib/nn/zoo.c (the GFLOP per image printed here is the convolution and linear work, 2 per
multiply-add, as clcnn-perf's gflop column counts it, so the two can be compared):

  resnet50      torchvision resnet50 (v1.5, as clcnn's), 3x224x224
  mobilenet_v2  torchvision mobilenet_v2 with every ReLU6 replaced by ReLU (clcnn has no
                ReLU6; same shapes and cost), 3x224x224
  alexnet       clcnn's AlexNet, built here: the original one-tower widths (conv 96 11x11
                s4 p0, 256 5x5 p2, 384, 384, 256 3x3 p1; 3x3 s2 max pools; fc 9216-4096-
                4096-1000), 3x227x227. torchvision's alexnet has other widths (64, 192,
                384, 256, 256, conv1 pad 2) and an adaptive pool, so it is not used.
  vgg16         torchvision vgg16 (configuration D, no batchnorm), 3x224x224; its adaptive
                pool is the identity at 7x7
  resnet18      torchvision resnet18, 3x224x224 (not in clcnn's zoo)
  efficientnet_b0  torchvision efficientnet_b0, 3x224x224 (not in clcnn's zoo): SiLU
                (exported as x * Sigmoid(x)), squeeze-excitation (GlobalAveragePool, two
                1x1 convolutions, a broadcast Mul), depthwise 3x3 and 5x5 at strides 1
                and 2
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torchvision

MODELS = ["resnet50", "mobilenet_v2", "alexnet", "vgg16", "resnet18", "efficientnet_b0"]


class ClcnnAlexNet(nn.Module):
    """lib/nn/zoo.c build_alexnet: 227 -> conv1 55 -> pool 27 -> conv2 27 -> pool 13 ->
    conv3-5 13 -> pool 6; dropout 0.5 before fc6 and fc7."""

    def __init__(self, classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4, padding=0), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def relu6_to_relu(module):
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, nn.ReLU(inplace=True))
        else:
            relu6_to_relu(child)
    return module


def build(name):
    """(model, input size) for one name."""
    tv = torchvision.models
    if name == "resnet50":
        return tv.resnet50(weights=None), 224
    if name == "resnet18":
        return tv.resnet18(weights=None), 224
    if name == "vgg16":
        return tv.vgg16(weights=None), 224
    if name == "mobilenet_v2":
        return relu6_to_relu(tv.mobilenet_v2(weights=None)), 224
    if name == "alexnet":
        return ClcnnAlexNet(), 227
    if name == "efficientnet_b0":
        return tv.efficientnet_b0(weights=None), 224
    raise ValueError(f"unknown model {name!r} (models: {', '.join(MODELS)})")


def work(model, x):
    """(GFLOP per image of the convolutions and linear layers, parameter count)."""
    flop = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            flop[0] += 2 * out[0].numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            flop[0] += 2 * m.in_features * m.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return flop[0] / 1e9, sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", nargs="?", default="build/onnx")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated (default: %(default)s)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--force", action="store_true", help="overwrite existing files")
    args = ap.parse_args()

    names = [m for m in args.models.replace(",", " ").split() if m]
    for n in names:
        if n not in MODELS:
            ap.error(f"unknown model {n!r} (models: {', '.join(MODELS)})")
    os.makedirs(args.outdir, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"opset {args.opset}", file=sys.stderr)
    for name in names:
        path = os.path.join(args.outdir, name + ".onnx")
        if os.path.exists(path) and not args.force:
            print(f"{path}: exists (--force to redo)", file=sys.stderr)
            continue
        t0 = time.time()
        torch.manual_seed(0)
        model, size = build(name)
        model.eval()
        x = torch.randn(2, 3, size, size)
        gflop, params = work(model, x)
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, opset_version=args.opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              do_constant_folding=True)
        os.replace(tmp, path)
        print(f"{path}: 3x{size}x{size}, {params / 1e6:.2f} M parameters, "
              f"{gflop:.4f} GFLOP/image, {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
