"""Pictures of images, gradients and attack progress (matplotlib, pandas).

Figures use matplotlib's ``bmh`` style, as the blog's did (:func:`blog_style`).
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from .labels import Label, Labels, imagenet_labels
from .model import Classifier

BLOG_STYLE = "bmh"


@contextlib.contextmanager
def blog_style() -> Iterator[None]:
    """Context manager: draw in the blog's matplotlib style."""
    with plt.style.context(BLOG_STYLE):
        yield


def show_image(model: Classifier, data: np.ndarray, title: Optional[str] = None, ax=None):
    """Draw (3, H, W) BGR 0-255 ``data`` as the picture it is; returns the Axes."""
    ax = ax or plt.figure().gca()
    ax.imshow(model.deprocess(data))
    if title:
        ax.set_title(title)
    return ax


def gradient_picture(model: Classifier, gradient: np.ndarray) -> np.ndarray:
    """The blog's picture of a gradient: (3, H, W) -> (H, W, 3) RGB in 0-1.

    The gradient is divided by its 98th percentile, then shown as image data
    (so /255 and clipped, without the model's mean added back): mostly black,
    bright where the gradient is largest.
    """
    model.check_data(gradient)
    scale = np.percentile(gradient, 98)
    if not np.isfinite(scale) or scale == 0:
        scale = np.abs(gradient).max() or 1.0
    return np.clip(model.preprocessing.deprocess(gradient / scale, add_mean=False), 0.0, 1.0)


def show_gradient(model: Classifier, gradient: np.ndarray, title: Optional[str] = None, ax=None):
    """Draw :func:`gradient_picture` of a (3, H, W) gradient; returns the Axes."""
    ax = ax or plt.figure().gca()
    ax.imshow(gradient_picture(model, gradient))
    if title:
        ax.set_title(title)
    return ax


def plot_steps(steps: Sequence[np.ndarray], label_list: Iterable[Label], labels: Optional[Labels] = None, **kwargs):
    """Plot each label's probability at each step of :func:`breaking_nn.attack.trick`.

    ``steps`` is the list of (K,) probability arrays ``trick`` returns (the
    blog's (1, K) arrays work too); ``label_list`` holds class numbers or names;
    ``labels`` (the model's, K names) defaults to ILSVRC-2012's; ``kwargs`` go
    to ``DataFrame.plot`` (``figsize=(10, 5)``, ``ax=...``). Returns the Axes.
    The blog-style ``bnn.plot_steps`` passes the current model's labels.
    """
    labels = labels or imagenet_labels()
    if len(steps) == 0:
        raise ValueError("steps is empty: pass the prediction steps that trick() returned")
    sizes = {np.size(s) for s in steps}
    if sizes != {len(labels)}:
        raise ValueError(
            f"steps hold {', '.join(map(str, sorted(sizes)))} probabilities each but the labels name "
            f"{len(labels)} classes: pass labels= of the model whose trick() made the steps"
        )
    columns = {}
    for label in label_list:
        index = labels.index(label)
        columns[labels.name(index)] = [float(np.ravel(s)[index]) for s in steps]
    ax = pd.DataFrame(columns).plot(**kwargs)
    ax.set_xlabel("Step number")
    ax.set_ylabel("Probability of label")
    return ax
