"""The blog's attack: nudge an image, a little at a time, toward a class of our choice.

Iterative targeted sign-gradient attack: the fast gradient sign method
(Goodfellow et al., 2015, https://arxiv.org/abs/1412.6572) repeated in small
steps (Kurakin et al., 2017, https://arxiv.org/abs/1607.02533), raising the
probability of the desired class instead of lowering the true one.
"""
from __future__ import annotations

import numbers

import numpy as np
from tqdm.auto import tqdm

from .errors import AttackError
from .labels import Label
from .model import Classifier


def trick(
    model: Classifier,
    image: np.ndarray,
    desired_label: Label,
    n_steps: int = 10,
    *,
    epsilon: float = 0.9,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Make ``model`` see ``desired_label`` in ``image``; return ``(new_image, prediction_steps)``.

    The object layer: ``bnn.trick(image, desired_label, n_steps)``, the blog's
    call, runs this on the current model.

    Arguments:
        image: (3, H, W) float32 data, CHW, BGR, 0-255, as ``model.preprocess`` returns.
        desired_label: class number (145) or name ("king penguin").
        n_steps: the blog's step count (default 10): ``n_steps - 1`` updates of
            ``sign(gradient) * epsilon / n_steps`` each. Must be >= 2.
        epsilon: the blog's multiplier (default 0.9, in 0-255 grey levels); no
            pixel moves by more than ``epsilon * (n_steps - 1) / n_steps``.
        progress: show a tqdm progress bar.

    Returns the perturbed (3, H, W) float32 data (not rounded or clipped, as in
    the blog) and the probabilities (K,) before each update, ``n_steps - 1`` of
    them. Each step runs one forward and one backward pass: the probabilities
    come from the same forward pass that feeds the gradient.

    >>> new_image, steps = trick(model, data, "king penguin", n_steps=30)  # doctest: +SKIP
    >>> model.predict(new_image, n_preds=1)                                # doctest: +SKIP
    label: 145 (king penguin, Aptenodytes patagonica)
    certainty: 51.84%
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 2:
        raise AttackError(
            f"n_steps must be a whole number >= 2 (the attack makes n_steps - 1 updates), not {n_steps!r}"
        )
    if (isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not np.isfinite(epsilon)
            or epsilon <= 0):
        raise AttackError(f"epsilon must be a positive number of grey levels (the blog uses 0.9), not {epsilon!r}")
    model.check_data(image)
    target = model.labels.index(desired_label)
    prediction_steps = []
    for _ in tqdm(range(n_steps - 1), desc=f"trick -> {model.labels.name(target)}", disable=not progress):
        probs, grad = model.forward_backward(image, target)
        prediction_steps.append(probs)
        image = image + np.sign(grad) * epsilon / n_steps  # the blog's order of operations
    return image, prediction_steps
