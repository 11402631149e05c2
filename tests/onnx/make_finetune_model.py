#!/usr/bin/python3
"""The ONNX model of the fine-tuning test (tests/onnx_finetune_cli.sh): a small Fashion-MNIST
CNN with batch norm, conv-bn-relu-pool twice and a linear classifier, defined and exported by
Debian's PyTorch (python3-torch, /usr/bin/python3) with random (seeded) weights. The file is
committed, so the test suite needs no torch. Exported in training form so the
BatchNormalization nodes stay (an eval-mode export folds them into the convolutions), then
rewritten to their inference form (no training_mode, one output), with a symbolic batch
dimension; initializer names are PyTorch's (features.0.weight, ...).

  /usr/bin/python3 tests/onnx/make_finetune_model.py   -> tests/onnx/fmnist_bn_cnn.onnx
"""
import os
import torch
import torch.nn as nn
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(13)  # before FashionCNN() below; make_safetensors_interop.py reseeds


class FashionCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2))
        self.classifier = nn.Linear(32 * 7 * 7, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def export(model, path):
    """model's ONNX export at path (training form, then batch norm in inference form)."""
    model.train()
    torch.onnx.export(model, torch.zeros(2, 1, 28, 28), path, opset_version=15,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    # the training-form BatchNormalization (training_mode 1, running statistics as extra
    # outputs) in its inference form, as a model to fine-tune is shipped: one output, the
    # statistics used
    m = onnx.load(path)
    for n in m.graph.node:
        if n.op_type == "BatchNormalization":
            keep = [a for a in n.attribute if a.name != "training_mode"]
            del n.attribute[:]
            n.attribute.extend(keep)
            del n.output[1:]
    onnx.save(m, path)
    onnx.checker.check_model(path)
    return m


if __name__ == "__main__":
    m = export(FashionCNN(), os.path.join(HERE, "fmnist_bn_cnn.onnx"))
    print([n.op_type for n in m.graph.node], [i.name for i in m.graph.initializer])
