#!/usr/bin/python3
"""Test data of safetensors_interop (tests/test_safetensors_interop.c): the fine-tuning test's
architecture (make_finetune_model.FashionCNN) with other seeded weights and non-trivial
batch-norm statistics, written twice by PyTorch: as ONNX (fmnist_bn_cnn_b.onnx, through
make_finetune_model.export) and as its state_dict by the official safetensors writer
(fmnist_bn_cnn_b.safetensors, `safetensors.torch.save_file`, num_batches_tracked included).
The test loads the state_dict into the net of fmnist_bn_cnn.onnx by name and requires the
outputs of fmnist_bn_cnn_b.onnx. Needs Debian's PyTorch and the PyPI safetensors package
(test data only; neither is a dependency), e.g. in a venv made with
`/usr/bin/python3 -m venv --system-site-packages`:

  VENV/bin/python tests/onnx/make_safetensors_interop.py
"""
import os

import torch
from safetensors.torch import save_file

import make_finetune_model as ft

torch.manual_seed(14)
model = ft.FashionCNN()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.num_batches_tracked.fill_(1234)
ft.export(model, os.path.join(ft.HERE, "fmnist_bn_cnn_b.onnx"))
state = {k: v.contiguous() for k, v in model.state_dict().items()}
save_file(state, os.path.join(ft.HERE, "fmnist_bn_cnn_b.safetensors"), metadata={"format": "pt"})
print({k: tuple(v.shape) for k, v in state.items()})
