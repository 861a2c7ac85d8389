"""Expectation over transformation: one attack gradient that holds across many pipelines.

Athalye, Engstrom, Ilyas and Kwok, "Synthesizing Robust Adversarial Examples"
(ICML 2018, https://arxiv.org/abs/1707.07397). A photo that fools one exact
preprocessing pipeline is a lab result; averaging the gradient over pipelines
drawn from the real-world family (:func:`~breaking_nn.pipelines.random_pipeline`)
gives one that fools them all.

Each step: the model's own pipeline plus ``k - 1`` drawn ones turn the photo,
(H, W, 3) uint8 RGB 0-255, into k data (3, h, w); batched forward and backward
passes (:meth:`~breaking_nn.model.Classifier.forward_backward_batch`: all k in
one on a GPU, one at a time on the CPU, where a batch saves no time and costs
memory: :meth:`~breaking_nn.model.Classifier.batch_size`) give each one's
d p(label) / d data; each is divided by its p(label) (the
gradient of log p, so a pipeline where the label is still unlikely counts as
much as one where it is likely), mapped back to the photo through its own
adjoint (Pillow's rounding and the JPEG steps straight through: BPDA), and
summed into one (H, W, 3) float32 array. With k = 1 (the exact mode) the sign
of the result is the plain attack's.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .model import Classifier
from .pipelines import Pipeline, model_pipeline, random_pipeline

#: Default number of pipelines per step in the robust mode (measured: see the README's photo section).
DEFAULT_SAMPLES = 6
#: Smallest probability a gradient is divided by (float32 softmax can round to 0).
_P_FLOOR = 1e-30


def draw_pipelines(model: Classifier, samples: int, rng: Optional[np.random.Generator]) -> list[Pipeline]:
    """The model's own pipeline, then ``samples - 1`` drawn from the family with ``rng``."""
    own = model_pipeline(model.preprocessing)
    return [own] + [random_pipeline(model.preprocessing, rng) for _ in range(samples - 1)]


def eot_gradient(model: Classifier, photo: np.ndarray, label: int,
                 pipelines: list[Pipeline]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (k, K), gradient (H, W, 3) float32) of ``photo`` over ``pipelines``.

    ``gradient`` is the sum over the pipelines of d log p(label) / d photo,
    per 0-1 unit of the photo (HWC, RGB); ``probabilities[i]`` is what
    ``pipelines[i]`` gives, so row 0 is the model's own when the list starts
    with it (:func:`draw_pipelines`). Row 0 is computed exactly; the others
    take scikit-image's resizes as matrices (``fast``, the same linear map
    without a full-resolution Gaussian filter: seconds less a step on a 48 MP photo).
    """
    total = np.zeros((3, *photo.shape[:2]), np.float32)  # CHW: each channel contiguous while summing
    probs = []
    step = model.batch_size(len(pipelines))  # all at once on a GPU, one by one on the CPU
    for start in range(0, len(pipelines), step):
        chunk = pipelines[start:start + step]
        # the first pipeline's probabilities judge the goal: exact; the drawn ones only steer the gradient
        data = np.stack([p.forward(photo, fast=start + i > 0) for i, p in enumerate(chunk)])
        chunk_probs, grads = model.forward_backward_batch(data, [label] * len(chunk))
        for pipeline, grad, p in zip(chunk, grads, chunk_probs):
            pipeline.adjoint(grad / max(float(p[label]), _P_FLOOR), photo.shape[:2], out=total)
        probs.append(chunk_probs)
    return np.concatenate(probs), total.transpose(1, 2, 0)
