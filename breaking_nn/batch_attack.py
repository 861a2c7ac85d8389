"""Attack several photos at once: one reshaped batch through the net per step (``evaluate --batch N``).

:func:`attack_photos` steps one :class:`~breaking_nn.photo_attack.AttackRun`
per photo (the very loop :func:`~breaking_nn.photo_attack.attack_photo`
runs), each with its own budget and seed: every step stacks each unfinished
photo's pipelines (1 in the exact mode, ``samples`` in the robust mode) into
one (M, 3, h, w) batch for
:meth:`~breaking_nn.model.Classifier.forward_backward_batch`, then feeds each
run its rows, so each photo moves, is judged and stops exactly as it would
alone. A photo that is done leaves the batch.

Whether this pays is measured by ``scripts/benchmark_evaluate.py``: on a CPU
Caffe runs each image's convolution GEMMs one after the other, so a batch
saves little and costs memory; on a GPU the batch runs in parallel.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .model import Classifier
from .photo_attack import AttackRun, PhotoAttackResult


def attack_photos(model: Classifier, photos: Sequence[np.ndarray], target: Optional[int], *,
                  epsilons: Sequence[int], seeds: Sequence[Optional[int]], max_steps: int = 50,
                  untargeted: bool = False, robust: bool = True, samples: Optional[int] = None,
                  step_size: int = 1) -> list[PhotoAttackResult]:
    """Attack ``photos`` ((H, W, 3) uint8 RGB, any sizes) at once, "just fooled" (``until=None``).

    ``target`` is a class number (None with ``untargeted``); ``epsilons`` and
    ``seeds`` hold one budget and one seed per photo. Each result equals what
    :func:`~breaking_nn.photo_attack.attack_photo` with ``until=None`` gives
    for that photo alone (the tests compare them).
    """
    if not (len(photos) == len(epsilons) == len(seeds)):
        raise ValueError("attack_photos needs one epsilon and one seed per photo")
    runs = [AttackRun(model, photo, None if untargeted else target, epsilon=epsilon, max_steps=max_steps, until=None,
                      untargeted=untargeted, step_size=step_size, robust=robust, samples=samples,
                      seed=seed if robust else None)
            for photo, epsilon, seed in zip(photos, epsilons, seeds)]
    while True:
        active = [run for run in runs if not run.done]
        if not active:
            break
        drawn = [run.pipelines() for run in active]
        data = np.concatenate([run.data(pipelines) for run, pipelines in zip(active, drawn)])
        labels = [run.label for run, pipelines in zip(active, drawn) for _ in pipelines]
        probs, grads = model.forward_backward_batch(data, labels)
        at = 0
        for run, pipelines in zip(active, drawn):
            run.feed(probs[at:at + len(pipelines)], grads[at:at + len(pipelines)])
            at += len(pipelines)
    return [run.result() for run in runs]
