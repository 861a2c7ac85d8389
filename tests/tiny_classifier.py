"""A small real classifier trained by the tests with Caffe's own SGD solver.

Three classes of 16x16 colour images generated here: faint fixed patterns
under noise. The network (conv 3x3 -> ReLU -> max-pool -> fully connected ->
softmax) takes the same input as GoogLeNet does in breaking_nn: (3, H, W) BGR
0-255, scaled to 0-1 by its first layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import breaking_nn as bnn
from breaking_nn.caffe_runtime import import_caffe

CLASSES = ["pattern A", "pattern B", "pattern C"]
SIZE = 16
#: Each class is a faint fixed +-1 pattern (16, 16, 3) under heavy noise: the
#: network must add up weak evidence from every pixel, as an ImageNet model
#: does, which is what makes small sign-gradient steps effective.
PATTERNS = np.random.default_rng(1234).choice([-1.0, 1.0], size=(len(CLASSES), SIZE, SIZE, 3))
SIGNAL, NOISE = 0.04, 0.12


def make_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, 16, 16, 3) RGB 0-1 and their labels (n,) in 0..2."""
    labels = rng.integers(0, len(CLASSES), size=n)
    images = 0.5 + SIGNAL * PATTERNS[labels] + rng.normal(0.0, NOISE, (n, SIZE, SIZE, 3))
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels


def net_prototxt(batch: int, train: bool) -> str:
    """The network definition; ``train`` adds the label input and the loss."""
    inputs = f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: {batch} dim: 3 dim: {SIZE} dim: {SIZE} }} }} }}\n'
    if train:
        inputs += f'layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ dim: {batch} }} }} }}\n'
    body = """
layer { name: "scale" type: "Power" bottom: "data" top: "scaled" power_param { scale: 0.00392156862745098 } }
layer { name: "conv1" type: "Convolution" bottom: "scaled" top: "conv1"
        convolution_param { num_output: 12 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
"""
    head = ('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }\n' if train
            else 'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }\n')
    return 'name: "TinyStripes"\n' + inputs + body + head


#: (old, new) edits of the deploy prototxt: a layer OpenCV 4.11's dnn lacks (Caffe runs it) ...
OPENCV_LACKS = ('layer { name: "relu1"', 'layer { name: "thr" type: "Threshold" bottom: "conv1" top: "conv1" '
                'threshold_param { threshold: 0.5 } }\nlayer { name: "relu1"')
#: ... and one this Caffe lacks (OpenCV runs it). The weights stay those of the plain net.
CAFFE_LACKS = ('type: "ReLU"', 'type: "Mish"')


def write_deploy(path: Path, edit: "tuple[str, str] | None" = None) -> Path:
    """Write the deploy prototxt (batch 1) to ``path``, with ``edit`` = (old, new) applied; return ``path``."""
    text = net_prototxt(1, train=False)
    if edit is not None:
        assert edit[0] in text, edit
        text = text.replace(*edit)
    path.write_text(text)
    return path


def to_data(images: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) RGB 0-1 -> (n, 3, H, W) BGR 0-255, as Classifier.preprocess does."""
    return (images[..., ::-1] * 255.0).transpose(0, 3, 1, 2).astype(np.float32)


def train(workdir: Path, *, iterations: int = 400, batch: int = 64, seed: int = 0) -> bnn.Classifier:
    """Train the network with Caffe's SGD solver; return it loaded as a Classifier."""
    caffe = import_caffe()
    caffe.set_mode_cpu()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train.prototxt").write_text(net_prototxt(batch, train=True))
    write_deploy(workdir / "deploy.prototxt")
    (workdir / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    (workdir / "solver.prototxt").write_text(
        f'train_net: "{workdir / "train.prototxt"}"\n'
        'base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: "fixed"\n'
        f'max_iter: {iterations}\ndisplay: 0\nsnapshot: 0\nsolver_mode: CPU\nrandom_seed: {seed}\n'
    )
    solver = caffe.SGDSolver(str(workdir / "solver.prototxt"))
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        images, labels = make_images(batch, rng)
        solver.net.blobs["data"].data[...] = to_data(images)
        solver.net.blobs["label"].data[...] = labels
        solver.step(1)
    solver.net.save(str(workdir / "tiny.caffemodel"))
    return bnn.load_model(workdir / "deploy.prototxt", workdir / "tiny.caffemodel", workdir / "labels.txt")
