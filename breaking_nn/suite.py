"""Is a photo fooled in the real world? One definition, checked over the verification suite.

**Fooled** (:func:`is_fooled`), the one definition the suite, the CLI, the app
and ``evaluate`` all use:

* targeted: the target is the pipeline's top class;
* untargeted: the original class is no longer its top class.

:func:`check_suite` runs a photo, (H, W, 3) uint8 RGB 0-255, through every
pipeline of :func:`~breaking_nn.pipelines.verification_suite` (batched as
:meth:`~breaking_nn.model.Classifier.batch_size` says) and returns a :class:`SuiteResult`, a row per pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .model import Classifier
from .pipelines import Pipeline, verification_suite

#: The share of the suite's pipelines a robust attack must fool (with 12 pipelines: all of them).
ROBUST_FRACTION = 0.95


def is_fooled(probs: np.ndarray, *, target: Optional[int], original_class: int) -> bool:
    """Targeted (``target`` given): it is the top class of ``probs`` (K,). Untargeted: ``original_class`` is not."""
    top = int(np.argmax(probs))
    return top == target if target is not None else top != original_class


@dataclass(frozen=True)
class SuiteRow:
    """One pipeline's verdict: its name and steps, probabilities (K,), top class, p(goal class), fooled."""

    name: str
    steps: str
    probabilities: np.ndarray = field(repr=False)
    top_class: int
    goal_probability: float
    fooled: bool

    def as_dict(self) -> dict:
        return {"pipeline": self.name, "steps": self.steps, "top_class": self.top_class,
                "goal_probability": self.goal_probability, "fooled": self.fooled}


@dataclass(frozen=True)
class SuiteResult:
    """A photo checked over the verification suite.

    ``goal_probability`` is p(target), or, untargeted, p(original class)
    (which the attack lowers). ``passes``: at least :data:`ROBUST_FRACTION`
    of the pipelines are fooled.
    """

    rows: list[SuiteRow]
    target: Optional[int]
    original_class: int

    @property
    def n_fooled(self) -> int:
        return sum(row.fooled for row in self.rows)

    @property
    def n_total(self) -> int:
        return len(self.rows)

    @property
    def fraction(self) -> float:
        return self.n_fooled / self.n_total

    @property
    def passes(self) -> bool:
        return self.fraction >= ROBUST_FRACTION

    def summary(self) -> str:
        """``fooled under 11 of 12 pipelines (not: file as JPEG 75)``."""
        missed = [row.name for row in self.rows if not row.fooled]
        return (f"fooled under {self.n_fooled} of {self.n_total} pipelines"
                + (f" (not: {', '.join(missed)})" if missed else ""))

    def table(self, labels=None) -> str:
        """A text table, a row per pipeline: fooled, p(goal class), top class, steps."""
        goal = "p(target)" if self.target is not None else "p(original)"
        lines = [f"{'pipeline':<26} {'fooled':<6} {goal:>11}  top class", "-" * 70]
        for row in self.rows:
            top = f"{row.top_class}" + (f" {labels.name(row.top_class)[:24]}" if labels is not None else "")
            lines.append(f"{row.name:<26} {'yes' if row.fooled else 'NO':<6} {row.goal_probability:>11.4f}  {top}")
        lines.append(self.summary())
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"fooled": self.n_fooled, "total": self.n_total, "fraction": self.fraction, "passes": self.passes,
                "pipelines": [row.as_dict() for row in self.rows]}


def check_suite(model: Classifier, photo: np.ndarray, *, target: Optional[int], original_class: int,
                pipelines: Optional[list[Pipeline]] = None) -> SuiteResult:
    """Run ``photo`` (H, W, 3) uint8 RGB through every pipeline (default: the model's suite) and judge each.

    >>> suite = check_suite(model, photo, target=1, original_class=0)   # doctest: +SKIP
    >>> suite.summary()                                                  # doctest: +SKIP
    'fooled under 12 of 12 pipelines'
    """
    pipelines = verification_suite(model.preprocessing) if pipelines is None else pipelines
    step = model.batch_size(len(pipelines))
    probs = np.concatenate([model.forward_batch(np.stack([p.forward(photo) for p in pipelines[i:i + step]]))
                            for i in range(0, len(pipelines), step)])
    goal_class = target if target is not None else original_class
    rows = [SuiteRow(name=p.name, steps=p.describe(), probabilities=pr, top_class=int(np.argmax(pr)),
                     goal_probability=float(pr[goal_class]),
                     fooled=is_fooled(pr, target=target, original_class=original_class))
            for p, pr in zip(pipelines, probs)]
    return SuiteResult(rows=rows, target=target, original_class=original_class)
