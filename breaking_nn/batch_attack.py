"""Attack several photos at once: one reshaped batch through the net per step (``evaluate --batch N``).

:func:`attack_photos` runs :func:`~breaking_nn.photo_attack.attack_photo`'s
loop for N photos side by side, each with its own budget and seed: every step
stacks each unfinished photo's pipelines (1 in the exact mode, ``samples``
in the robust mode) into one (M, 3, h, w) batch for
:meth:`~breaking_nn.model.Classifier.forward_backward_batch`, then each photo
moves, is judged and stops exactly as it would alone (same pipelines drawn,
same steps, same suite checks). A photo that is done leaves the batch.

Whether this pays is measured by ``scripts/benchmark_evaluate.py``: on a CPU
Caffe runs each image's convolution GEMMs one after the other, so a batch of
N costs about N single passes; on a GPU the batch runs in parallel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .eot import DEFAULT_SAMPLES, _P_FLOOR, draw_pipelines
from .model import Classifier
from .photo_attack import SUITE_EVERY, check_photo_size, check_settings, goal_holds, photo_probabilities, sign_step
from .pipelines import model_pipeline
from .suite import SuiteResult, check_suite


@dataclass
class BatchAttackResult:
    """One photo's outcome: ``adversarial`` (H, W, 3) uint8 RGB, ``n_updates`` sign steps,
    ``probabilities`` (K,) of the last step under the model's own pipeline, ``suite`` of the adversarial."""

    adversarial: np.ndarray
    n_updates: int
    probabilities: np.ndarray
    suite: SuiteResult
    original_class: int


class _State:
    """One photo's attack in progress (what attack_photo keeps in local variables)."""

    def __init__(self, model: Classifier, photo: np.ndarray, epsilon: int, seed: Optional[int], *,
                 target: Optional[int], untargeted: bool, robust: bool):
        check_photo_size(photo)
        self.original = photo
        self.budget = int(math.floor(epsilon))
        self.current = photo.copy()
        self.rng = np.random.default_rng((seed or 0) if robust else None)
        self.original_class = int(np.argmax(photo_probabilities(model, photo))) if untargeted else -1
        self.label = self.original_class if untargeted else target
        self.n_updates = 0
        self.suite_checked_at = -SUITE_EVERY
        self.suite: Optional[SuiteResult] = None
        self.probs: Optional[np.ndarray] = None
        self.done = False


def attack_photos(model: Classifier, photos: Sequence[np.ndarray], target: Optional[int], *,
                  epsilons: Sequence[int], seeds: Sequence[Optional[int]], max_steps: int = 50,
                  untargeted: bool = False, robust: bool = True, samples: Optional[int] = None,
                  step_size: int = 1) -> list[BatchAttackResult]:
    """Attack ``photos`` ((H, W, 3) uint8 RGB, any sizes) at once, "just fooled" (``until=None``).

    ``target`` is a class number (None with ``untargeted``); ``epsilons`` and
    ``seeds`` hold one budget and one seed per photo. Each result equals what
    :func:`~breaking_nn.photo_attack.attack_photo` with ``until=None`` gives
    for that photo alone (the tests compare them).
    """
    if not (len(photos) == len(epsilons) == len(seeds)):
        raise ValueError("attack_photos needs one epsilon and one seed per photo")
    for epsilon, seed in zip(epsilons, seeds):
        check_settings(epsilon=epsilon, max_steps=max_steps, until=None, robust=robust, samples=samples,
                       seed=seed if robust else None)
    samples = (samples or DEFAULT_SAMPLES) if robust else 1
    own = model_pipeline(model.preprocessing)
    direction = -1 if untargeted else 1
    states = [_State(model, p, e, s, target=target, untargeted=untargeted, robust=robust)
              for p, e, s in zip(photos, epsilons, seeds)]
    while True:
        active = [s for s in states if not s.done]
        if not active:
            break
        drawn = [draw_pipelines(model, samples, s.rng) if robust else [own] for s in active]
        # as eot.eot_gradient: each photo's own pipeline exact, the drawn ones fast
        data = np.stack([p.forward(s.current, fast=i > 0) for s, pipelines in zip(active, drawn)
                         for i, p in enumerate(pipelines)])
        labels = [s.label if s.label >= 0 else target for s, pipelines in zip(active, drawn) for _ in pipelines]
        probs, grads = model.forward_backward_batch(data, labels)
        at = 0
        for state, pipelines in zip(active, drawn):
            k = len(pipelines)
            state_probs, state_grads = probs[at:at + k], grads[at:at + k]
            at += k
            _step(model, state, pipelines, state_probs, state_grads, target=target, robust=robust,
                  max_steps=max_steps, direction=direction, step_size=step_size)
    results = []
    for state in states:
        suite = state.suite or check_suite(model, state.current, target=target, original_class=state.original_class)
        results.append(BatchAttackResult(adversarial=state.current, n_updates=state.n_updates,
                                         probabilities=state.probs, suite=suite,
                                         original_class=state.original_class))
    return results


def _step(model: Classifier, state: _State, pipelines, probs: np.ndarray, grads: np.ndarray, *,
          target: Optional[int], robust: bool, max_steps: int, direction: int, step_size: int) -> None:
    """One iteration of attack_photo's loop for one photo, given its batch rows."""
    state.suite = None  # a suite result always belongs to the current pixels
    own_probs = probs[0]
    state.probs = own_probs
    if state.original_class < 0:
        state.original_class = int(np.argmax(own_probs))
    if goal_holds(own_probs, target=target, original_class=state.original_class, until=None):
        if not robust:
            state.done = True
            return
        if state.n_updates - state.suite_checked_at >= SUITE_EVERY or state.n_updates == max_steps:
            state.suite = check_suite(model, state.current, target=target, original_class=state.original_class)
            state.suite_checked_at = state.n_updates
            if state.suite.passes:
                state.done = True
                return
    if state.n_updates == max_steps:
        state.done = True
        return
    label = state.label if state.label >= 0 else target
    total = np.zeros((3, *state.current.shape[:2]), np.float32)  # CHW, as eot.eot_gradient sums it
    for pipeline, grad, p in zip(pipelines, grads, probs):
        pipeline.adjoint(grad / max(float(p[label]), _P_FLOOR), state.current.shape[:2], out=total)
    sign_step(state.current, total.transpose(1, 2, 0), direction * step_size, state.original, state.budget)
    state.n_updates += 1
