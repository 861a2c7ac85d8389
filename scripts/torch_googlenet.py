"""BVLC GoogLeNet's deploy architecture in PyTorch, for the benchmark only (not a runtime dependency).

Built from a Caffe net's parameters: ``GoogLeNet(params)`` takes ``{layer name:
[weight, bias]}`` numpy arrays (``model.net.params``, weights (out, in, kh, kw)
for convolutions, (out, in) for the classifier) and copies them, so both
frameworks run the very same numbers. Input (1, 3, 224, 224) BGR 0-255 (no mean,
as in breaking_nn); output (1, 1000) softmax probabilities. Caffe's rules kept:
max pooling 3x3 stride 2 rounds up (``ceil_mode``), LRN across 5 channels with
alpha 1e-4, beta 0.75, k 1 (Caffe's and PyTorch's formulas are the same).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

# name: (in-module branches) as Caffe names them; channels come from the weights.
INCEPTIONS = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
POOL_AFTER = {"3b": "pool3/3x3_s2", "4e": "pool4/3x3_s2"}


def conv(params: dict, name: str, stride: int = 1) -> nn.Conv2d:
    """A Conv2d carrying Caffe layer ``name``'s weights; 'same' padding for odd kernels."""
    weight, bias = (np.asarray(p, dtype=np.float32) for p in params[name])
    out_c, in_c, kh, kw = weight.shape
    layer = nn.Conv2d(in_c, out_c, (kh, kw), stride=stride, padding=(kh // 2, kw // 2))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    return layer


class Inception(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1), concatenated in Caffe's order."""

    def __init__(self, params: dict, tag: str):
        super().__init__()
        p = f"inception_{tag}/"
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.b1 = nn.Sequential(conv(params, p + "1x1"), relu())
        self.b3 = nn.Sequential(conv(params, p + "3x3_reduce"), relu(), conv(params, p + "3x3"), relu())
        self.b5 = nn.Sequential(conv(params, p + "5x5_reduce"), relu(), conv(params, p + "5x5"), relu())
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), conv(params, p + "pool_proj"), relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


class GoogLeNet(nn.Module):
    """models/bvlc_googlenet/deploy.prototxt, layer for layer, in eval mode (dropout off)."""

    def __init__(self, params: dict):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # noqa: E731
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        layers = [conv(params, "conv1/7x7_s2", stride=2), nn.ReLU(inplace=True), pool(), lrn(),
                  conv(params, "conv2/3x3_reduce"), nn.ReLU(inplace=True),
                  conv(params, "conv2/3x3"), nn.ReLU(inplace=True), lrn(), pool()]
        for tag in INCEPTIONS:
            layers.append(Inception(params, tag))
            if tag in POOL_AFTER:
                layers.append(pool())
        layers.append(nn.AvgPool2d(7, 1))
        self.features = nn.Sequential(*layers)
        weight, bias = (np.asarray(p, dtype=np.float32) for p in params["loss3/classifier"])
        self.classifier = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.classifier.weight.copy_(torch.from_numpy(weight))
            self.classifier.bias.copy_(torch.from_numpy(bias))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(torch.flatten(self.features(x), 1)), dim=1)


def from_caffe_params(net_params) -> GoogLeNet:
    """GoogLeNet carrying pycaffe's ``net.params`` (copied), weights frozen: backward reaches the input only."""
    params = {name: [blob.data.copy() for blob in blobs] for name, blobs in net_params.items()}
    model = GoogLeNet(params)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
