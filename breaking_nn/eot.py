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

Full-resolution work is done once a step, not once a pipeline: each
pipeline's linear part is one banded pair of matrices (its windows, resizes
and the model's resize multiplied), so the k adjoints are one stacked banded
product (:func:`~breaking_nn.pipelines.summed_adjoint_bands`, a band of rows at
a time, never a full-size gradient), and on a large photo the drawn
pipelines' data are one stacked product too (:data:`LINEAR_DRAWS_FROM`), both
as BLAS tiles (:mod:`breaking_nn.banded`) over the HWC photo's rows, their
full-size arrays in the attack's reused :class:`~breaking_nn.banded.Workspace`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .model import Classifier
from .pipelines import Pipeline, linear_data, model_pipeline, random_pipeline, summed_adjoint, summed_adjoint_bands

#: Default number of pipelines per step in the robust mode (measured: see the README's photo section).
DEFAULT_SAMPLES = 6
#: Photos of at least this many pixels (1024x768 and up) get the drawn pipelines' data from their
#: linear parts (:func:`~breaking_nn.pipelines.linear_data`: one full-resolution pass a step; at 1 MP
#: 0.04 s a step against 0.11 s for the libraries' calls, measured), smaller ones from the libraries'
#: own calls, which cost little there (and keep the attacks measured on the README's photos, all
#: under 0.4 MP, as they were).
LINEAR_DRAWS_FROM = 786_432
#: Smallest probability a gradient is divided by (float32 softmax can round to 0).
_P_FLOOR = 1e-30


def draw_pipelines(model: Classifier, samples: int, rng: Optional[np.random.Generator], *,
                   photo_size: Optional[tuple[int, int]] = None) -> list[Pipeline]:
    """The model's own pipeline, then ``samples - 1`` drawn from the family with ``rng`` (fitting a ``photo_size`` photo)."""
    own = model_pipeline(model.preprocessing)
    return [own] + [random_pipeline(model.preprocessing, rng, photo_size=photo_size) for _ in range(samples - 1)]


def pipeline_data(photo: np.ndarray, pipelines: list[Pipeline]) -> np.ndarray:
    """(k, 3, h, w) float32: ``photo`` (H, W, 3) uint8 RGB through each pipeline.

    The first pipeline's data is exact, the libraries' own calls (its
    probabilities judge the goal); the others only steer the gradient. On a
    photo of :data:`LINEAR_DRAWS_FROM` pixels or more they come from their
    linear parts, all in one full-resolution pass
    (:func:`~breaking_nn.pipelines.linear_data`: the very map their gradients
    are the transpose of, without the libraries' full-resolution rounding,
    rotations and re-saves, seconds a step on a 12 MP photo); on a smaller
    one from the libraries, scikit-image's resize as its matrices (``fast``:
    the same linear map without a full-resolution Gaussian filter).
    """
    own = pipelines[0].forward(photo)[None]
    if len(pipelines) == 1:
        return own
    if photo.shape[0] * photo.shape[1] >= LINEAR_DRAWS_FROM:
        return np.concatenate([own, linear_data(photo, pipelines[1:])])
    return np.concatenate([own, np.stack([p.forward(photo, fast=True) for p in pipelines[1:]])])


def passes(model: Classifier, data: np.ndarray, labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward passes of ``data`` (N, 3, h, w): (probabilities (N, K), gradients (N, 3, h, w)).

    All N in one batch on a GPU, one at a time on the CPU, where a batch
    saves no time and costs memory (:meth:`~breaking_nn.model.Classifier.batch_size`).
    """
    step = model.batch_size(len(data))
    results = [model.forward_backward_batch(data[i:i + step], labels[i:i + step]) for i in range(0, len(data), step)]
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def summed_gradient(photo_size: tuple[int, int], pipelines: list[Pipeline], probs: np.ndarray, grads: np.ndarray,
                    label: int) -> np.ndarray:
    """(H, W, 3) float32: the sum over ``pipelines`` of d log p(label) / d photo, per 0-1 unit (HWC, RGB).

    ``probs`` (k, K) and ``grads`` (k, 3, h, w) are the passes' results for
    the pipelines' data; each gradient is divided by its p(label) and sent
    back through its pipeline's adjoint, all k at once
    (:func:`~breaking_nn.pipelines.summed_adjoint`: each full-resolution row
    is written once a step, not once a pipeline).
    """
    return summed_adjoint(_factors(photo_size, pipelines, probs, grads, label), photo_size)


def summed_gradient_bands(photo_size: tuple[int, int], pipelines: list[Pipeline], probs: np.ndarray,
                          grads: np.ndarray, label: int):
    """:func:`summed_gradient` a band of rows at a time: (rows slice, (rows, W, 3) float32 HWC) (the sign step's)."""
    return summed_adjoint_bands(_factors(photo_size, pipelines, probs, grads, label), photo_size)


def _factors(photo_size, pipelines, probs, grads, label) -> list:
    """Each pipeline's :meth:`~breaking_nn.pipelines.Pipeline.adjoint_factors` of its gradient over p(label)."""
    return [pipeline.adjoint_factors(grad / max(float(p[label]), _P_FLOOR), photo_size)
            for pipeline, grad, p in zip(pipelines, grads, probs)]


def eot_gradient(model: Classifier, photo: np.ndarray, label: int,
                 pipelines: list[Pipeline]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (k, K), gradient (H, W, 3) float32) of ``photo`` over ``pipelines``.

    ``gradient`` is :func:`summed_gradient`; ``probabilities[i]`` is what
    ``pipelines[i]`` gives, so row 0 is the model's own when the list starts
    with it (:func:`draw_pipelines`).
    """
    probs, grads = passes(model, pipeline_data(photo, pipelines), [label] * len(pipelines))
    return probs, summed_gradient(photo.shape[:2], pipelines, probs, grads, label)
