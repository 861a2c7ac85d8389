"""The blog's calls, as the blog writes them, on the current model (pyplot-style).

Two layers, as in matplotlib (``plt.plot`` on the current axes over ``ax.plot``):

* **blog-style calls** (this module, exported as ``bnn.predict`` etc.): no model
  argument; they work on the *current model*, which is the last one
  :func:`~breaking_nn.load_googlenet` / :func:`~breaking_nn.load_model` loaded,
  or the one given to :func:`use_model`. With none, the first call loads
  GoogLeNet. For notebooks and for following the blog::

      probs = predict(img_data, n_preds=1)
      grad = compute_gradient(img_data, mouse)
      new_image, steps = trick(img_data, penguin_label, n_steps=30)
      plot_steps(steps, label_list, figsize=(10, 5))

* **the model object** (``model.predict``, ``model.compute_gradient``,
  :func:`breaking_nn.attack.trick(model, ...) <breaking_nn.attack.trick>`,
  :func:`breaking_nn.plotting.plot_steps`): every call names its model. For
  scripts, libraries and several models at once.

Each call here only picks the current model and hands over to the object
layer, so both layers give the same numbers. Image data is (3, H, W) float32,
CHW, BGR, 0-255, as ``model.preprocess`` returns; labels are class numbers
(145) or names ("king penguin").
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from . import attack, current, plotting
from .labels import Label, get_label_name
from .model import Classifier, load_googlenet

__all__ = ["use_model", "current_model", "predict", "compute_gradient", "trick", "plot_steps", "get_label_name"]


def use_model(model: Classifier) -> None:
    """Make ``model`` the current model, the one the blog-style calls use.

    ``load_googlenet`` and ``load_model`` already do this for the model they
    return; ``use_model`` switches back to one loaded earlier.
    """
    if not isinstance(model, Classifier):
        raise TypeError(
            f"use_model takes a breaking_nn.Classifier, as load_googlenet() or load_model(\"model.toml\") "
            f"return, not {type(model).__module__}.{type(model).__qualname__}"
        )
    current.set_current(model)


def current_model() -> Classifier:
    """The current model; if none has been loaded yet, load GoogLeNet first.

    The load is ``load_googlenet()``'s: weights from ``BREAKING_NN_WEIGHTS`` or
    ``models/bvlc_googlenet/``, downloaded once (53.5 MB) when missing, and
    the same :class:`~breaking_nn.WeightsError` (with how to get the file) when
    they cannot be had. A failed load leaves no current model.
    """
    model = current.get_current()
    return model if model is not None else load_googlenet()


def predict(image_data: np.ndarray, n_preds: int = 6, display_output: bool = True) -> np.ndarray:
    """The current model's class probabilities (K,) for ``image_data`` (3, H, W) BGR 0-255.

    With ``display_output`` (the default), as in the blog: prints the top
    ``n_preds`` (``label: 283 (Persian cat), certainty: 13.94%``) and draws
    the image in a new figure, so a following ``plt.title(...)`` titles it.
    Pass ``display_output=False`` in loops. Object layer: ``model.predict``
    (prints, draws nothing) and :func:`breaking_nn.show_image`.
    """
    model = current_model()
    probs = model.predict(image_data, n_preds=n_preds, display_output=display_output)
    if display_output:
        plotting.show_image(model, image_data)
    return probs


def compute_gradient(image_data: np.ndarray, intended_outcome: Label) -> np.ndarray:
    """d P(intended_outcome) / d image_data on the current model: (3, H, W) float32, CHW BGR.

    Object layer: ``model.compute_gradient(data, label)``.
    """
    return current_model().compute_gradient(image_data, intended_outcome)


def trick(
    image: np.ndarray,
    desired_label: Label,
    n_steps: int = 10,
    *,
    epsilon: float = 0.9,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The blog's attack on the current model; returns ``(new_image, prediction_steps)``.

    ``image`` is (3, H, W) BGR 0-255 data; ``n_steps - 1`` updates of
    ``sign(gradient) * epsilon / n_steps``. Object layer, with the details:
    :func:`breaking_nn.attack.trick(model, image, desired_label, n_steps) <breaking_nn.attack.trick>`.
    """
    return attack.trick(current_model(), image, desired_label, n_steps, epsilon=epsilon, progress=progress)


def plot_steps(steps: Sequence[np.ndarray], label_list: Iterable[Label], **args):
    """Plot each label's probability at each step of :func:`trick`; returns the Axes.

    Names come from the current model's labels if a model is loaded (nothing
    is loaded for a plot), else ILSVRC-2012's; ``labels=`` overrides them.
    Other ``args`` go to ``DataFrame.plot`` (``figsize=(10, 5)``, ``ax=...``).
    Object layer: :func:`breaking_nn.plotting.plot_steps`.
    """
    model = current.get_current()
    if model is not None:
        args.setdefault("labels", model.labels)
    return plotting.plot_steps(steps, label_list, **args)
