"""The report figure of a photo attack: original, amplified perturbation, adversarial, top-5 bars, the suite.

>>> fig = draw_report(result)                  # doctest: +SKIP
>>> save_report(result, "report.png")          # doctest: +SKIP
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Union

import numpy as np
from matplotlib.figure import Figure

from .atomic import atomic_path
from .errors import SaveError
from .photo_attack import PhotoAttackResult


def amplification(result: PhotoAttackResult) -> int:
    """The factor the perturbation is multiplied by to be seen: its L-inf fills half the grey range."""
    return max(1, 127 // max(1, result.metrics.linf))


#: Longest side of the photos drawn in the report: larger ones are shown every k-th pixel.
MAX_SIDE = 1200


def display_stride(photo: np.ndarray) -> int:
    """k such that every k-th pixel of ``photo`` (H, W, 3) fits in :data:`MAX_SIDE` (1: the photo as it is)."""
    return max(1, -(-max(photo.shape[:2]) // MAX_SIDE))


def perturbation_picture(result: PhotoAttackResult) -> np.ndarray:
    """(H/k, W/k, 3) RGB 0-1: mid-grey plus the perturbation times :func:`amplification` (grey = unchanged).

    Every k-th pixel (:func:`display_stride`): each one shown is a real pixel's
    change, never an average that would blur it away.
    """
    k = display_stride(result.original)
    delta = result.adversarial[::k, ::k].astype(np.float32) - result.original[::k, ::k].astype(np.float32)
    return np.clip(0.5 + delta * amplification(result) / 255.0, 0.0, 1.0)


def draw_report(result: PhotoAttackResult, *, figsize=(15, 7)) -> Figure:
    """A matplotlib Figure (not shown, no pyplot state): the three photos over two top-5 bar charts
    and the verification suite (a bar per pipeline: p(goal class), red where not fooled)."""
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(2, 6, height_ratios=[3, 2])
    k = display_stride(result.original)
    pictures = [
        (result.original[::k, ::k], "Original"),
        (perturbation_picture(result), f"Perturbation x{amplification(result)} (L-inf {result.metrics.linf})"),
        (result.adversarial[::k, ::k], "Adversarial (what is saved)"),
    ]
    for i, (picture, title) in enumerate(pictures):
        ax = fig.add_subplot(grid[0, 2 * i:2 * i + 2])
        ax.imshow(picture)
        ax.set_title(title)
        ax.axis("off")
    colour = {result.original_class: "tab:green", **({result.target: "tab:red"} if result.target is not None else {})}
    for i, (title, top) in enumerate(result.top_tables()):
        ax = fig.add_subplot(grid[1, 2 * i:2 * i + 2])
        names = [f"{n} {name[:28]}" for n, name, _ in top][::-1]
        values = [p for _, _, p in top][::-1]
        colours = [colour.get(n, "tab:blue") for n, _, _ in top][::-1]  # red: target, green: original class
        bars = ax.barh(names, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:.2%}" for v in values], padding=3)
        ax.set_xlim(0, 1.15)
        ax.set_xlabel("probability")
        ax.set_title(title)
    draw_suite(fig.add_subplot(grid[1, 4:6]), result)
    status = "reached" if result.reached else "not reached"
    title = (f"{result.model.name}, {result.mode_text()}: {result.goal_text()} {status} in {result.steps_text()}, "
             f"{result.suite.summary()} - {result.metrics}")
    fig.suptitle(textwrap.fill(title, width=int(figsize[0] * 13)), fontsize=10)  # about 13 characters an inch
    return fig


def draw_suite(ax, result: PhotoAttackResult) -> None:
    """Bars on ``ax``: each suite pipeline's p(goal class) for the adversarial photo; grey fooled, red not."""
    suite = result.suite
    rows = suite.rows[::-1]
    bars = ax.barh([row.name for row in rows], [row.goal_probability for row in rows],
                   color=["tab:gray" if row.fooled else "tab:red" for row in rows])
    size = 7 if len(rows) <= 14 else 4.5  # a suite of 20-33 members in the same panel
    ax.bar_label(bars, labels=[f"{row.goal_probability:.2f}" for row in rows], padding=2, fontsize=size)
    ax.tick_params(axis="y", labelsize=size)
    ax.set_xlim(0, 1.15)
    goal = "p(target)" if result.target is not None else "p(original class)"
    ax.set_xlabel(goal)
    ax.set_title(f"Suite: {suite.summary().split(' (')[0]}")


def check_report_path(path: Union[str, Path], *, force: bool = True) -> Path:
    """``path`` as a Path if the report can be written there, else :class:`SaveError`.

    It must end in .png, its folder must exist, and it must not exist yet unless ``force``.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        raise SaveError(f"the report is a PNG: give a file name ending in .png, not {str(path)!r}")
    if not path.parent.is_dir():
        raise SaveError(f"the folder of {path} does not exist: create {path.parent} first")
    if path.exists() and not force:
        raise SaveError(f"{path} already exists: choose another name, or overwrite it with --force (in Python: force=True)")
    return path


def save_report(result: PhotoAttackResult, path: Union[str, Path], *, dpi: int = 100) -> Path:
    """Draw :func:`draw_report` into ``path`` as a PNG, atomically; return the path.

    ``path`` must end in .png and its folder must exist (:class:`SaveError`).
    """
    path = check_report_path(path)
    fig = draw_report(result)
    with atomic_path(path) as part:
        fig.savefig(part, format="png", dpi=dpi)  # the temporary name ends in .part: say the format
    return path
