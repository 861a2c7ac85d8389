"""The blog's own loop, transcribed on a raw ``caffe.Net``: the yardstick for ``trick``.

Used by the tests (same results) and ``scripts/benchmark.py`` (speed). Per
step it runs two forward passes and one backward pass, as the blog did.
"""
from __future__ import annotations

import numpy as np


def blog_trick(net, image: np.ndarray, desired_label: int, n_steps: int = 10):
    """The blog's ``trick`` on ``net`` (blobs "data" and "prob"); ``image`` is (1, 3, H, W).

    Returns ``(image, prediction_steps)`` with (1, K) probability arrays, as the blog's did.
    """
    def predict(data):
        net.blobs["data"].data[...] = data
        return net.forward()["prob"]

    def compute_gradient(data, label):
        predict(data)
        probs = np.zeros_like(net.blobs["prob"].data)
        probs[0][label] = 1
        return net.backward(prob=probs)["data"].copy()

    prediction_steps = []
    for _ in range(n_steps - 1):
        prediction_steps.append(np.copy(predict(image)))
        delta = np.sign(compute_gradient(image, desired_label))
        image = image + delta * 0.9 / n_steps
    return image, prediction_steps
