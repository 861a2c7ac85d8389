"""Is a photo fooled in the real world? One definition, checked over the verification suite.

**Fooled** (:func:`is_fooled`), the one definition the suite, the CLI, the app
and ``evaluate`` all use:

* targeted: the target is the pipeline's top class;
* untargeted: the original class is no longer its top class.

**Fooled in the real world** (:attr:`SuiteResult.passes`): the goal under the
model file's own pipeline (the attack's ``until``, judged by the caller) plus
at least :data:`ROBUST_FRACTION` (95 %) of the suite's members fooled. With a
suite of 20 to 39 members that allows one member not fooled.

:func:`check_suite` runs a photo, (H, W, 3) uint8 RGB 0-255, through every
member of :func:`suite_for` (:func:`~breaking_nn.pipelines.verification_suite`
for that photo's size: members that change nothing for it are left out),
sharing the full-resolution stages between members; Caffe members run on
Caffe (batched as :meth:`~breaking_nn.model.Classifier.batch_size` says),
engine members on OpenCV's dnn. It returns a :class:`SuiteResult`, a row per
member, the table grouped as resampling, compression, geometry and engine.
With ``stop_early`` it stops as soon as more than 5 % have failed (the attack's
checks between steps do that; the verdict on a saved file runs every member).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .model import Classifier
from .opencv_engine import OpenCVNet
from .pipelines import GROUPS, Pipeline, verification_suite
from .preprocessing import Size

#: The share of the suite's members a robust attack must fool (with 20 to 39 members: all but one).
ROBUST_FRACTION = 0.95


def is_fooled(probs: np.ndarray, *, target: Optional[int], original_class: int) -> bool:
    """Targeted (``target`` given): it is the top class of ``probs`` (K,). Untargeted: ``original_class`` is not."""
    top = int(np.argmax(probs))
    return top == target if target is not None else top != original_class


@dataclass(frozen=True)
class SuiteRow:
    """One member's verdict: name, steps, probabilities (K,), top class, p(goal class), fooled, group, engine."""

    name: str
    steps: str
    probabilities: np.ndarray = field(repr=False)
    top_class: int
    goal_probability: float
    fooled: bool
    group: str = "resampling"
    engine: str = "caffe"

    def as_dict(self) -> dict:
        return {"pipeline": self.name, "group": self.group, "engine": self.engine, "steps": self.steps,
                "top_class": self.top_class, "goal_probability": self.goal_probability, "fooled": self.fooled}


@dataclass(frozen=True)
class SuiteResult:
    """A photo checked over the verification suite.

    ``goal_probability`` is p(target), or, untargeted, p(original class)
    (which the attack lowers). ``total``: the suite's size (rows may be fewer
    after an early stop: :attr:`complete`). ``passes``: at least
    :data:`ROBUST_FRACTION` of the suite's members are fooled.
    """

    rows: list[SuiteRow]
    target: Optional[int]
    original_class: int
    total: Optional[int] = None

    @property
    def n_fooled(self) -> int:
        return sum(row.fooled for row in self.rows)

    @property
    def n_total(self) -> int:
        return len(self.rows) if self.total is None else self.total

    @property
    def complete(self) -> bool:
        """Whether every member was run (False after an early stop)."""
        return len(self.rows) == self.n_total

    @property
    def fraction(self) -> float:
        return self.n_fooled / self.n_total

    @property
    def passes(self) -> bool:
        return self.fraction >= ROBUST_FRACTION

    @property
    def missed(self) -> list[SuiteRow]:
        """The members run and not fooled, in suite order."""
        return [row for row in self.rows if not row.fooled]

    def summary(self) -> str:
        """``fooled under 29 of 30 pipelines (not: rotate +5)``; after an early stop, how many were not run."""
        missed = [row.name for row in self.missed]
        notes = ([f"not: {', '.join(missed)}"] if missed else []) + \
            ([f"stopped early, {self.n_total - len(self.rows)} not run"] if not self.complete else [])
        return f"fooled under {self.n_fooled} of {self.n_total} pipelines" + (f" ({'; '.join(notes)})" if notes else "")

    def table(self, labels=None) -> str:
        """A text table, a row per member under its group's heading: fooled, p(goal class), engine, top class."""
        goal = "p(target)" if self.target is not None else "p(original)"
        lines = [f"{'pipeline':<28} {'fooled':<6} {goal:>11}  {'engine':<7} top class", "-" * 78]
        for group in GROUPS:
            rows = [row for row in self.rows if row.group == group]
            if rows:
                lines.append(f"[{group}]")
            for row in rows:
                top = f"{row.top_class}" + (f" {labels.name(row.top_class)[:24]}" if labels is not None else "")
                lines.append(f"{row.name:<28} {'yes' if row.fooled else 'NO':<6} {row.goal_probability:>11.4f}  "
                             f"{row.engine:<7} {top}")
        lines.append(self.summary())
        return "\n".join(lines)

    def by_group(self) -> dict[str, tuple[int, int]]:
        """{group: (fooled, run)} in :data:`GROUPS` order, groups with members only."""
        counts = {g: (sum(r.fooled for r in self.rows if r.group == g), sum(r.group == g for r in self.rows))
                  for g in GROUPS}
        return {g: c for g, c in counts.items() if c[1]}

    def as_dict(self) -> dict:
        return {"fooled": self.n_fooled, "total": self.n_total, "fraction": self.fraction, "passes": self.passes,
                "complete": self.complete, "groups": {g: {"fooled": f, "total": n} for g, (f, n) in self.by_group().items()},
                "pipelines": [row.as_dict() for row in self.rows]}


def suite_for(model: Classifier, photo_size: Size) -> list[Pipeline]:
    """The verification suite of ``model`` for a photo of ``photo_size`` (H, W): engine members if it has files."""
    return verification_suite(model.preprocessing, photo_size=photo_size,
                              engines=getattr(model, "model_files", None) is not None)


def check_suite(model: Classifier, photo: np.ndarray, *, target: Optional[int], original_class: int,
                pipelines: Optional[list[Pipeline]] = None, stop_early: bool = False) -> SuiteResult:
    """Run ``photo`` (H, W, 3) uint8 RGB through every pipeline (default: :func:`suite_for`) and judge each.

    Members share their full-resolution stages: a prefix of photo steps that
    several members start with, and each network-side resize, is made once.
    A member whose data equal an earlier one's on the same engine (for this
    photo: OpenCV's linear and area resizes at exactly 2x, blobFromImage's crop
    of a photo already of the input's shape) is left out: every row is a
    different pipeline. Caffe members run in batches
    (:meth:`~breaking_nn.model.Classifier.batch_size`), engine members on
    :class:`~breaking_nn.opencv_engine.OpenCVNet`. ``stop_early``: stop once
    more than ``1 - ROBUST_FRACTION`` of the suite has failed (it can no longer
    pass); the members not run are not in the rows (:attr:`SuiteResult.complete` is False).

    >>> suite = check_suite(model, photo, target=1, original_class=0)   # doctest: +SKIP
    >>> suite.summary()                                                  # doctest: +SKIP
    'fooled under 31 of 31 pipelines'
    """
    pipelines = suite_for(model, photo.shape[:2]) if pipelines is None else pipelines
    goal_class = target if target is not None else original_class
    prefixes = [p.steps[:k] for p in pipelines for k in range(1, len(p.steps) + 1)]
    stages: dict = {key: None for key in set(prefixes) if prefixes.count(key) > 1}  # only shared ones are kept
    seen: set = set()
    total, rows = len(pipelines), []
    step = model.batch_size(len(pipelines))
    for start in range(0, len(pipelines), step):
        members, data = [], []
        for p in pipelines[start:start + step]:
            x = p.forward(photo, stages=stages)
            key = (p.engine, hashlib.sha1(x.tobytes()).digest())
            if key in seen:
                total -= 1
                continue
            seen.add(key)
            members.append(p)
            data.append(x)
        for engine in ("caffe", "opencv"):
            run = [i for i, p in enumerate(members) if p.engine == engine]
            if not run:
                continue
            batch = np.stack([data[i] for i in run])
            probs = (model.forward_batch(batch) if engine == "caffe"
                     else OpenCVNet.for_model(model).probabilities(batch))
            for i, pr in zip(run, probs):
                members[i] = SuiteRow(name=members[i].name, steps=members[i].describe(), probabilities=pr,
                                      top_class=int(np.argmax(pr)), goal_probability=float(pr[goal_class]),
                                      group=members[i].group, engine=engine,
                                      fooled=is_fooled(pr, target=target, original_class=original_class))
        rows += members
        allowed = total - math.ceil(ROBUST_FRACTION * total - 1e-9)  # total only shrinks: a stop stays right
        if stop_early and sum(not row.fooled for row in rows) > allowed:
            break
    return SuiteResult(rows=rows, target=target, original_class=original_class, total=total)
