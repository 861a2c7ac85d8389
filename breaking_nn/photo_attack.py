"""Attack a photo in its own pixels: a same-size file that still fools the network when reloaded.

The blog's :func:`~breaking_nn.attack.trick` works on the network's (3, 224, 224)
float data; saved as an 8-bit image its sub-grey-level perturbation rounds
away. :func:`attack_photo` works on the photo itself, (H, W, 3) uint8, HWC,
RGB, 0-255, at its own size (upright: EXIF orientation applied):

* each step runs the current integer pixels through the model file's own
  pipeline and, in the robust mode (the default), ``samples - 1`` more drawn
  from the real-world family (other resizers, JPEG, crops, smaller copies:
  :mod:`breaking_nn.pipelines`), as one batched forward and backward pass, and
  maps each data gradient back to the photo through its pipeline's exact
  transpose (expectation over transformation: :mod:`breaking_nn.eot`);
* it moves every pixel by whole grey levels along the summed gradient's sign
  (the iterative sign attack of Kurakin et al., 2017, https://arxiv.org/abs/1607.02533),
  then projects onto ``[photo - epsilon, photo + epsilon]`` and 0-255;
* it checks the goal on the very integer pixels it would save, under the
  model's own pipeline every step and, in the robust mode, over the named
  verification suite (:mod:`breaking_nn.suite`) every few steps once that
  holds; it stops as soon as the goal holds (and the suite passes).

:meth:`PhotoAttackResult.save` writes the photo atomically (no metadata but
its ICC colour profile) and proves it: it reloads the file and checks it.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .atomic import atomic_path
from .workspace import Workspace, reusing
from .eot import DEFAULT_SAMPLES, draw_pipelines, passes, pipeline_data, summed_gradient_bands
from .errors import AttackError, SaveError
from .images import ImageSource, Photo, read_photo
from .labels import Label
from .metrics import PerturbationMetrics, grey_levels, perturbation_metrics, top_k
from .model import Classifier
from .pipelines import Pipeline, model_pipeline
from .suite import SuiteResult, check_suite, is_fooled

#: Output formats by file extension: Pillow's format name, and whether it is lossless.
FORMATS = {".png": ("PNG", True), ".webp": ("WEBP", True), ".bmp": ("BMP", True), ".tif": ("TIFF", True),
           ".tiff": ("TIFF", True), ".jpg": ("JPEG", False), ".jpeg": ("JPEG", False)}
#: Largest difference between in-memory and reloaded probabilities a lossless save may show.
LOSSLESS_TOLERANCE = 1e-6
DEFAULT_JPEG_QUALITY = 95
#: In the robust mode, steps between two checks of the suite while the model's own goal holds.
SUITE_EVERY = 3
#: Smallest photo side that can be attacked (Pillow and scikit-image need two samples to interpolate).
MIN_SIDE = 3


def output_format(path: Union[str, Path]) -> tuple[str, bool]:
    """(Pillow format, lossless?) for ``path``'s extension; :class:`SaveError` if it names none.

    >>> output_format("penguin.png")
    ('PNG', True)
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise SaveError(f"cannot tell the image format of {str(path)!r} from its extension {suffix or '(none)'!r}: "
                        f"use one of {known} (.png is lossless)")
    return FORMATS[suffix]


def check_output_path(path: Union[str, Path], *, force: bool = False) -> Path:
    """``path`` as a Path if an image can be written there, else :class:`SaveError`.

    Its folder must exist, its extension name a format (:data:`FORMATS`), and
    it must not exist yet unless ``force``.
    """
    path = Path(path).expanduser()
    output_format(path)
    if not path.parent.is_dir():
        raise SaveError(f"the folder of {path} does not exist: create {path.parent} first")
    if path.is_dir():
        raise SaveError(f"{path} is a folder: give a file name such as {path / 'adversarial.png'}")
    if path.exists() and not force:
        raise SaveError(f"{path} already exists: choose another name, or overwrite it with --force (in Python: force=True)")
    return path


def check_jpeg_quality(quality: int) -> int:
    """``quality`` as an int if it is a JPEG quality from 1 to 95 (Pillow's useful range), else :class:`SaveError`."""
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 95:
        raise SaveError(f"JPEG quality must be a whole number from 1 to 95, not {quality!r}")
    return int(quality)


def photo_probabilities(model: Classifier, photo: np.ndarray) -> np.ndarray:
    """Class probabilities (K,) of an (H, W, 3) uint8 RGB photo through the model file's own pipeline."""
    return model.forward(model.preprocess(photo))


@dataclass
class SaveCheck:
    """What :meth:`PhotoAttackResult.save` found when it reloaded the file it wrote.

    Attributes:
        path: the file written.
        format: Pillow's format name ("PNG", "JPEG", ...); ``quality``: JPEG's, else None.
        lossless: whether the format keeps every pixel.
        pixels_equal: the reloaded pixels equal the in-memory photo exactly.
        max_abs_diff: largest |reloaded - in-memory| class probability.
        probabilities: (K,) the reloaded file's class probabilities.
        goal_holds: the attack's goal holds for the reloaded file.
        metrics: :class:`~breaking_nn.metrics.PerturbationMetrics` of the reloaded
            file against the original photo (for JPEG they include the
            compression's own error, which can exceed epsilon).
        suite: the reloaded file over the verification suite.
        ok: the save is verified: the goal holds and, for a lossless format,
            the pixels are equal and the probabilities within 1e-6; in the
            robust mode the suite passes too (>= 95 % of its pipelines fooled).
        message: one line saying all this.
    """

    path: Path
    format: str
    quality: Optional[int]
    lossless: bool
    pixels_equal: bool
    max_abs_diff: float
    probabilities: np.ndarray = field(repr=False)
    goal_holds: bool
    metrics: PerturbationMetrics
    suite: SuiteResult
    ok: bool
    message: str

    def as_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        return {"path": str(self.path), "format": self.format, "quality": self.quality, "lossless": self.lossless,
                "pixels_equal": self.pixels_equal, "max_abs_diff": self.max_abs_diff,
                "goal_holds": self.goal_holds, "metrics": self.metrics.as_dict(), "suite": self.suite.as_dict(),
                "ok": self.ok, "message": self.message}


@dataclass
class PhotoAttackResult:
    """The outcome of :func:`attack_photo`.

    Attributes:
        model: the attacked :class:`~breaking_nn.model.Classifier`.
        original, adversarial: (H, W, 3) uint8, HWC, RGB, 0-255, the photo's own size.
        target: the class number aimed at; None when ``untargeted``.
        untargeted: the attack lowered ``original_class`` instead.
        original_class: the class the network saw in ``original``.
        epsilon, until: the budget (grey levels) and the goal's threshold
            (None: just fooled, :func:`~breaking_nn.suite.is_fooled`).
        steps: probabilities (K,) under the model's own pipeline of every photo
            the attack evaluated, the original first and ``adversarial``'s last
            (``n_updates + 1`` of them).
        n_updates: sign steps taken (0: the goal held from the start).
        reached: the goal holds for ``adversarial`` under the model's own pipeline.
        metrics: :class:`~breaking_nn.metrics.PerturbationMetrics` of the change.
        robust, samples, seed: the mode (robust: EOT over ``samples``
            pipelines a step, drawn with ``seed``; else exact, the model's own alone).
        suite: ``adversarial`` over the verification suite.
        stopped: ``on_step`` asked the attack to stop before its end.
        icc_profile: the photo's ICC colour profile, kept in saved files.
        saved: the :class:`SaveCheck` of the last :meth:`save`, else None.
    """

    model: Classifier = field(repr=False)
    original: np.ndarray = field(repr=False)
    adversarial: np.ndarray = field(repr=False)
    target: Optional[int]
    untargeted: bool
    original_class: int
    epsilon: float
    until: float
    until: Optional[float]
    steps: list = field(repr=False)
    n_updates: int
    reached: bool
    metrics: PerturbationMetrics
    suite: SuiteResult
    robust: bool = True
    samples: int = 1
    seed: Optional[int] = None
    stopped: bool = False
    icc_profile: Optional[bytes] = field(default=None, repr=False)
    saved: Optional[SaveCheck] = None

    @property
    def fooled(self) -> bool:
        """The verdict behind exit code 0: the goal under the model's own pipeline, and, robust, the suite passes."""
        return self.reached and (not self.robust or self.suite.passes)

    # -- the goal ----------------------------------------------------------------------
    @property
    def probabilities_before(self) -> np.ndarray:
        """(K,) class probabilities of the original photo."""
        return self.steps[0]

    @property
    def probabilities_after(self) -> np.ndarray:
        """(K,) class probabilities of the adversarial photo."""
        return self.steps[-1]

    def top5_before(self) -> list[tuple[int, str, float]]:
        """The five most probable classes of the original: ``[(number, name, probability), ...]``."""
        return top_k(self.probabilities_before, self.model.labels, 5)

    def top5_after(self) -> list[tuple[int, str, float]]:
        """The five most probable classes of the adversarial photo."""
        return top_k(self.probabilities_after, self.model.labels, 5)

    def top_tables(self) -> list[tuple[str, list[tuple[int, str, float]]]]:
        """``[("Top N before", rows), ("Top N after", rows)]``, N the rows shown (5, or fewer classes)."""
        return [(f"Top {len(rows)} {when}", rows) for when, rows in (("before", self.top5_before()),
                                                                       ("after", self.top5_after()))]

    def steps_text(self) -> str:
        """The sign steps taken, in words: ``1 step``, ``3 steps``."""
        return f"{self.n_updates} step" + ("" if self.n_updates == 1 else "s")

    def goal_holds(self, probs: np.ndarray) -> bool:
        """Whether ``probs`` (K,) meets this attack's goal (see :func:`attack_photo`)."""
        return goal_holds(probs, target=self.target, original_class=self.original_class, until=self.until)

    def progress(self, probs: Optional[np.ndarray] = None) -> float:
        """The number the goal compares with ``until``: p(target), or the lead over the original class."""
        return goal_value(self.probabilities_after if probs is None else probs, target=self.target,
                          original_class=self.original_class)

    def goal_text(self) -> str:
        """The goal in words, e.g. ``p(king penguin) >= 0.9``."""
        name = self.model.labels.name
        if self.target is not None:
            if self.until is None:
                return f"{self.target} {name(self.target)} is the top class"
            return f"p({self.target} {name(self.target)}) >= {self.until:g}"
        if self.until is None:
            return f"{self.original_class} {name(self.original_class)} is no longer the top class"
        return f"another class leads {self.original_class} {name(self.original_class)} by >= {self.until:g}"

    def mode_text(self) -> str:
        """``robust (6 pipelines a step, seed 0)`` or ``exact (the model file's pipeline)``."""
        if not self.robust:
            return "exact (the model file's pipeline)"
        return f"robust ({self.samples} pipelines a step, seed {self.seed})"

    def summary(self) -> str:
        """One line: reached or not, steps, the goal's value, the top class, the suite and the perturbation."""
        labels = self.model.labels
        top = int(np.argmax(self.probabilities_after))
        status = ("reached" if self.reached else "NOT reached (stopped by you)" if self.stopped
                  else "NOT reached (budget ran out)")
        what = "p(target)" if self.target is not None else "the best other class's lead"
        return (f"goal {self.goal_text()} {status} after {self.steps_text()}: {what} {self.progress():.4f}, "
                f"top class {top} ({labels.name(top)}) at {self.probabilities_after[top]:.4f}; "
                f"{self.suite.summary()}; {self.metrics}")

    def as_dict(self) -> dict:
        """JSON-ready summary: goal, steps, probabilities of the top 5, metrics, save check."""
        labels = self.model.labels
        return {
            "model": self.model.name, "size": [int(s) for s in self.original.shape[:2]],
            "target": self.target, "target_name": None if self.target is None else labels.name(self.target),
            "untargeted": self.untargeted, "original_class": self.original_class,
            "original_name": labels.name(self.original_class), "epsilon": self.epsilon, "until": self.until,
            "goal": self.goal_text(), "reached": self.reached, "fooled": self.fooled, "steps": self.n_updates,
            "progress": self.progress(), "mode": "robust" if self.robust else "exact", "samples": self.samples,
            "seed": self.seed, "stopped": self.stopped, "suite": self.suite.as_dict(),
            "top5_before": [list(t) for t in self.top5_before()], "top5_after": [list(t) for t in self.top5_after()],
            "metrics": self.metrics.as_dict(), "saved": None if self.saved is None else self.saved.as_dict(),
        }

    # -- saving ------------------------------------------------------------------------
    def save(self, path: Union[str, Path], *, quality: int = DEFAULT_JPEG_QUALITY, force: bool = True) -> SaveCheck:
        """Write :attr:`adversarial` to ``path`` atomically, reload it, and check it still fools the model.

        The format comes from the extension: .png, .webp (lossless), .bmp,
        .tif/.tiff keep every pixel; .jpg/.jpeg is compressed at ``quality``
        (1-95, default 95, 4:4:4) and verified after compression. The file
        carries no metadata but the photo's ICC profile (not in .bmp). It is
        reloaded (``read_photo``) and run through the model's own pipeline and
        the verification suite; the returned :class:`SaveCheck` (also in
        :attr:`saved`) says whether the probabilities equal the in-memory ones
        (<= 1e-6 for lossless formats), whether the goal still holds, and, in
        the robust mode, whether the suite passes. ``force=False`` refuses to overwrite.

        >>> check = result.save("penguin.png")   # doctest: +SKIP
        >>> check.ok, check.max_abs_diff          # doctest: +SKIP
        (True, 0.0)
        """
        path = check_output_path(path, force=force)
        fmt, lossless = output_format(path)
        options: dict = {}
        if fmt == "JPEG":
            options = {"quality": check_jpeg_quality(quality), "subsampling": 0}
        elif fmt == "WEBP":
            options = {"lossless": True, "quality": 100}
        if self.icc_profile and fmt != "BMP":
            options["icc_profile"] = self.icc_profile
        with atomic_path(path) as part:
            Image.fromarray(self.adversarial, "RGB").save(part, format=fmt, **options)
        reloaded = read_photo(path).pixels
        pixels_equal = bool(np.array_equal(reloaded, self.adversarial))
        file_metrics = self.metrics if pixels_equal else perturbation_metrics(self.original, reloaded)
        probs = photo_probabilities(self.model, reloaded)
        diff = float(np.abs(probs - self.probabilities_after).max())
        holds = self.goal_holds(probs)
        suite = self.suite if pixels_equal else check_suite(self.model, reloaded, target=self.target,
                                                            original_class=self.original_class)
        same = not lossless or (pixels_equal and diff <= LOSSLESS_TOLERANCE)
        ok = holds and same and (not self.robust or suite.passes)
        named = f"{fmt} quality {options['quality']}, 4:4:4" if fmt == "JPEG" else fmt
        if ok:
            message = f"verified: {path} ({named}) reloaded gives the goal, {self.goal_text()} (value {self.progress(probs):.4f})"
            if fmt == "JPEG":
                message += f", probabilities moved by up to {diff:.2g} by the compression"
        elif not same:
            message = (f"NOT verified: {path} ({named}) reloaded differs from the attacked photo "
                       f"(pixels equal: {pixels_equal}, probabilities differ by {diff:.2g})")
        elif not self.reached:
            message = (f"saved {path} ({named}); reloaded, it gives {'the same' if lossless else 'about the same'} "
                       f"probabilities (largest difference {diff:.2g}), but the attack did not reach the goal "
                       f"{self.goal_text()} (value {self.progress(probs):.4f})")
        elif not holds:
            message = (f"NOT verified: {path} ({named}) no longer fools the model: after "
                       f"{'compression' if fmt == 'JPEG' else 'reloading'} the goal {self.goal_text()} fails "
                       f"(value {self.progress(probs):.4f} instead of {self.progress():.4f}); save as .png to keep it")
        else:
            message = (f"NOT verified as robust: {path} ({named}) gives the goal {self.goal_text()} under the model's "
                       f"own pipeline, but is {suite.summary()}: fewer than 95 %")
        message += f"; {suite.summary()}"
        if fmt == "JPEG":
            message += (f"; the compressed file differs from the original by L-inf {grey_levels(file_metrics.linf)} "
                        f"(attack budget {self.epsilon:g}), PSNR {file_metrics.psnr:.1f} dB, SSIM {file_metrics.ssim:.4f}")
        self.saved = SaveCheck(path=path, format=fmt, quality=options.get("quality") if fmt == "JPEG" else None,
                               lossless=lossless, pixels_equal=pixels_equal, max_abs_diff=diff, probabilities=probs,
                               goal_holds=holds, metrics=file_metrics, suite=suite, ok=ok, message=message)
        return self.saved


def goal_value(probs: np.ndarray, *, target: Optional[int], original_class: int) -> float:
    """p(target) for a targeted goal; else the lead max_{k != original} p_k - p_original."""
    probs = np.asarray(probs, np.float64)
    if target is not None:
        return float(probs[target])
    others = np.delete(probs, original_class)
    return float(others.max() - probs[original_class])


def goal_holds(probs: np.ndarray, *, target: Optional[int], original_class: int, until: Optional[float]) -> bool:
    """Targeted: ``target`` is the top class and p(target) >= until. Untargeted: the lead >= until.

    ``until=None``: just fooled (:func:`~breaking_nn.suite.is_fooled`): the
    target on top, or, untargeted, the original class no longer on top.
    """
    if until is None:
        return is_fooled(probs, target=target, original_class=original_class)
    value = goal_value(probs, target=target, original_class=original_class)
    if target is not None:
        return bool(int(np.argmax(probs)) == target and value >= until)
    return bool(value >= until)


def check_settings(*, epsilon: float, max_steps: int, until: Optional[float], robust: bool = True,
                   samples: Optional[int] = None, seed: Optional[int] = None) -> None:
    """Raise :class:`AttackError` unless the attack's settings make sense.

    1 <= epsilon <= 255, max_steps >= 1, until None or in (0, 1), samples a
    whole number >= 1 and seed a whole number >= 0; samples and seed only in
    the robust mode (the exact mode draws nothing).
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon):
        raise AttackError(f"epsilon must be a number of grey levels from 1 to 255, not {epsilon!r}")
    if not 1 <= epsilon <= 255:
        raise AttackError(f"epsilon must be from 1 to 255 grey levels (steps are whole grey levels), not {epsilon:g}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1:
        raise AttackError(f"max_steps must be a whole number >= 1, not {max_steps!r}")
    if until is not None and (isinstance(until, bool) or not isinstance(until, numbers.Real) or not 0 < until < 1):
        raise AttackError(f"until must be a probability strictly between 0 and 1, not {until!r}")
    if not robust and (samples is not None or seed is not None):
        raise AttackError("samples and seed belong to the robust mode: the exact mode attacks the model file's "
                          "pipeline alone and draws nothing; drop them, or drop exact (--exact, robust=False)")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1):
        raise AttackError(f"samples must be a whole number of pipelines per step >= 1, not {samples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise AttackError(f"seed must be a whole number >= 0, not {seed!r}")


def check_photo_size(photo: np.ndarray) -> None:
    """:class:`AttackError` if the photo is too small to resize (both sides need :data:`MIN_SIDE` pixels)."""
    if min(photo.shape[:2]) < MIN_SIDE:
        raise AttackError(f"the photo is {photo.shape[1]}x{photo.shape[0]} pixels: too small to attack, its sides "
                          f"need at least {MIN_SIDE} pixels (a photo smaller than the network's input is fine: "
                          "it is upsized)")


def budget_bounds(original: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), each (H, W, 3) uint8 HWC: max(original - budget, 0) and min(original + budget, 255), budget 1-255.

    What :func:`sign_step_bands` clips to, made once an attack.
    """
    low = np.maximum(original, np.uint8(budget)) - np.uint8(budget)
    high = np.minimum(original, np.uint8(255 - budget)) + np.uint8(budget)
    return low, high


def sign_step_bands(pixels: np.ndarray, bands, step: int, bounds: tuple[np.ndarray, np.ndarray]) -> None:
    """In place: ``pixels += step * sign(grad)``, kept within ``bounds`` (:func:`budget_bounds`: the budget
    around the original, and 0-255).

    ``pixels`` is (H, W, 3) uint8, C-contiguous; the gradient comes a band of rows at a time,
    (rows slice, (rows, W, 3) float), as :func:`~breaking_nn.eot.summed_gradient_bands` makes it: no
    full-size gradient or int16 copy is ever held. The pixels are always within the bounds already (the
    attack starts at the original), so a step of one grey level moves a pixel only where it may, in
    8 bits, which equals the clip.
    """
    if not pixels.flags.c_contiguous:
        raise ValueError("sign_step_bands changes C-contiguous (H, W, 3) pixels in place")
    low_all, high_all = bounds
    for rows, grad in bands:
        low, high, view = low_all[rows], high_all[rows], pixels[rows]  # views: the band is changed in place
        if abs(step) == 1:  # whole grey levels of one: in 8 bits, pixels stay in range by moving only where they may
            up = (grad > 0 if step == 1 else grad < 0).view(np.uint8)  # 0 or 1 a pixel
            np.minimum(view, high - up, out=view)  # one below the bound where it moves up (high >= 1)
            view += up
            down = (grad < 0 if step == 1 else grad > 0).view(np.uint8)
            np.maximum(view, low + down, out=view)  # low <= 254
            view -= down
        else:
            moved = view.astype(np.int16) + np.sign(grad).astype(np.int16) * np.int16(step)
            view[...] = np.clip(moved, low, high)


def as_photo(photo: Union[ImageSource, np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 RGB 0-255, upright, from a path, URL, PIL image or array (see ``read_photo``)."""
    return read_photo(photo).pixels


def attack_photo(
    model: Classifier,
    photo: Union[ImageSource, np.ndarray, Photo],
    target: Optional[Label] = None,
    *,
    epsilon: float = 4,
    max_steps: int = 50,
    until: Optional[float] = 0.9,
    untargeted: bool = False,
    step_size: int = 1,
    progress: bool = False,
    robust: bool = True,
    samples: Optional[int] = None,
    seed: Optional[int] = None,
    on_step: Optional[Callable[[int, np.ndarray], Optional[bool]]] = None,
) -> PhotoAttackResult:
    """Perturb ``photo`` in its own pixels until ``model`` sees ``target``; return a :class:`PhotoAttackResult`.

    Arguments:
        model: a :class:`~breaking_nn.model.Classifier` (its model file's
            pipeline is followed exactly; gradients go back through adjoints).
        photo: a path, URL, PIL image, array or :class:`~breaking_nn.images.Photo`;
            used as (H, W, 3) uint8, HWC, RGB, 0-255 at its own size, upright
            (float 0-1 arrays are rounded to grey levels).
        target: class number (145) or name ("king penguin"); None with ``untargeted``.
        epsilon: the budget, in grey levels (default 4): no channel of any pixel
            moves by more than ``floor(epsilon)``; 1 to 255.
        max_steps: the most sign steps (default 50).
        until: the goal's threshold in (0, 1) (default 0.9), under the model
            file's pipeline. Targeted: the target is the top class and
            p(target) >= until. Untargeted: the originally predicted class c is
            lowered until another class *leads it by* ``until``: max over
            k != c of p_k, minus p_c, >= until. None: just fooled (the target
            on top; untargeted, c no longer on top).
        untargeted: lower the original class instead of raising a target.
        step_size: grey levels per step (default 1, a whole number).
        progress: show a tqdm progress bar with the goal's value.
        robust: (default True) expectation over transformation: each step
            averages the gradient over the model's pipeline and ``samples - 1``
            drawn from the real-world family, and the attack ends only when
            the goal holds *and* at least 95 % of the verification suite is
            fooled. False: the exact mode, the model file's pipeline alone
            (one forward and one backward pass a step).
        samples: pipelines per step in the robust mode (default
            :data:`~breaking_nn.eot.DEFAULT_SAMPLES`, 6); each costs one
            forward and one backward pass (in one batch on a GPU).
        seed: seeds the drawing of pipelines (default 0), so a run repeats.
        on_step: called as ``on_step(n_updates, probabilities)`` after every
            photo evaluated (the original first, with 0; probabilities (K,)
            under the model's own pipeline); returning True stops the attack
            there (``result.stopped``).

    Every step keeps the pixels whole grey levels in 0-255 and within
    epsilon of ``photo``. The goal is checked on exactly those integer
    pixels; ``result.fooled`` says whether the attack succeeded (robust: the
    goal and the suite), ``result.summary()`` how far it got.

    >>> model = load_model("models/open_nsfw/model.toml")          # doctest: +SKIP
    >>> result = attack_photo(model, "chelsea.png", 1, epsilon=4)  # doctest: +SKIP
    >>> result.fooled, result.suite.summary()                       # doctest: +SKIP
    (True, 'fooled under 31 of 31 pipelines')
    >>> result.save("chelsea-flagged.png").ok                      # doctest: +SKIP
    True
    """
    source = photo if isinstance(photo, Photo) else read_photo(photo)
    run = AttackRun(model, source.pixels, target, epsilon=epsilon, max_steps=max_steps, until=until,
                    untargeted=untargeted, step_size=step_size, robust=robust, samples=samples, seed=seed,
                    on_step=on_step)
    desc = f"{model.name} -> " + ("untargeted" if untargeted else model.labels.name(run.target)[:30])
    with tqdm(total=max_steps, desc=desc, disable=not progress, leave=False) as bar:
        while not run.done:
            pipelines = run.pipelines()
            run.feed(*passes(model, run.data(pipelines), [run.label] * len(pipelines)))
            bar.n = run.n_updates
            bar.set_postfix_str(f"{'p(target)' if run.target is not None else 'lead'}={run.value():.4f}")
    return run.result(icc_profile=source.icc_profile)


class AttackRun:
    """:func:`attack_photo`'s loop for one photo, one step at a time, so that several photos can share passes.

    Each step: :meth:`pipelines` says which pipelines to run the photo
    through (the model's own first); whoever runs the passes hands their
    probabilities (k, K) and data gradients (k, 3, h, w) to :meth:`feed`,
    which judges the goal (and the suite), then moves the pixels one sign
    step, or sets :attr:`done`. :meth:`result` gives the
    :class:`PhotoAttackResult`. Arguments as for :func:`attack_photo`;
    ``photo`` is (H, W, 3) uint8 RGB.
    """

    def __init__(self, model: Classifier, photo: np.ndarray, target: Optional[Label] = None, *,
                 epsilon: float = 4, max_steps: int = 50, until: Optional[float] = 0.9, untargeted: bool = False,
                 step_size: int = 1, robust: bool = True, samples: Optional[int] = None, seed: Optional[int] = None,
                 on_step: Optional[Callable[[int, np.ndarray], Optional[bool]]] = None):
        check_settings(epsilon=epsilon, max_steps=max_steps, until=until, robust=robust, samples=samples, seed=seed)
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or not 1 <= step_size <= 127:
            raise AttackError(f"step_size must be a whole number of grey levels from 1 to 127, not {step_size!r}")
        if untargeted and target is not None:
            raise AttackError("give a target or untargeted=True, not both: an untargeted attack has no target")
        if not untargeted and target is None:
            raise AttackError("give a target class (number or name), or untargeted=True")
        check_photo_size(photo)
        self.model, self.original, self.current = model, photo, photo.copy()
        self.target = None if untargeted else model.labels.index(target)
        self.untargeted, self.until, self.max_steps, self.on_step = untargeted, until, max_steps, on_step
        self.epsilon, self.budget, self.step_size = float(epsilon), int(math.floor(epsilon)), int(step_size)
        self.robust = robust
        self.samples = (samples or DEFAULT_SAMPLES) if robust else 1
        self.seed = (seed or 0) if robust else None
        self.rng = np.random.default_rng(self.seed)
        self.own = model_pipeline(model.preprocessing)
        # untargeted: the class to lower, from one extra forward pass; targeted: set from the first step
        self.original_class = int(np.argmax(photo_probabilities(model, photo))) if untargeted else -1
        self.label = self.original_class if untargeted else self.target
        self.steps: list[np.ndarray] = []
        self.n_updates, self.done, self.stopped = 0, False, False
        self.suite: Optional[SuiteResult] = None  # always of the current pixels
        self._suite_checked_at = -SUITE_EVERY
        self._pipelines: list[Pipeline] = []
        self._bounds: Optional[tuple[np.ndarray, np.ndarray]] = None
        self.workspace = Workspace()  # the full-resolution scratch arrays' buffer, reused every step

    def pipelines(self) -> list[Pipeline]:
        """This step's pipelines: the model's own, then (robust) ``samples - 1`` drawn."""
        self._pipelines = (draw_pipelines(self.model, self.samples, self.rng, photo_size=self.current.shape[:2])
                           if self.robust else [self.own])
        return self._pipelines

    def data(self, pipelines: list[Pipeline]) -> np.ndarray:
        """(k, 3, h, w) float32: the current pixels through ``pipelines`` (:func:`~breaking_nn.eot.pipeline_data`)."""
        with reusing(self.workspace):
            return pipeline_data(self.current, pipelines)

    def value(self) -> float:
        """The goal's number for the last photo evaluated (see :meth:`PhotoAttackResult.progress`)."""
        return goal_value(self.steps[-1], target=self.target, original_class=self.original_class)

    def feed(self, probs: np.ndarray, grads: np.ndarray) -> None:
        """Take this step's passes (probabilities (k, K), gradients (k, 3, h, w)); judge, then move or finish."""
        self.suite = None
        own_probs = probs[0]
        self.steps.append(own_probs)
        if self.original_class < 0:
            self.original_class = int(np.argmax(own_probs))
        if self.on_step is not None and self.on_step(self.n_updates, own_probs):
            self.stopped = self.done = True
            return
        if goal_holds(own_probs, target=self.target, original_class=self.original_class, until=self.until):
            if not self.robust:
                self.done = True
                return
            if self.n_updates - self._suite_checked_at >= SUITE_EVERY or self.n_updates == self.max_steps:
                self.workspace.release()  # the check's full-resolution stages need the memory more
                self.suite = check_suite(self.model, self.current, target=self.target,
                                         original_class=self.original_class, stop_early=True)
                self._suite_checked_at = self.n_updates
                if self.suite.passes:
                    self.done = True
                    return
        if self.n_updates == self.max_steps:
            self.done = True
            return
        direction = -1 if self.untargeted else 1  # lower p(original class), or raise p(target)
        if self._bounds is None:  # made at the first step: (H, W, 3) uint8 twice, the clip of every step
            self._bounds = budget_bounds(self.original, self.budget)
        with reusing(self.workspace):
            bands = summed_gradient_bands(self.current.shape[:2], self._pipelines, probs, grads, self.label)
            sign_step_bands(self.current, bands, direction * self.step_size, self._bounds)
        self.n_updates += 1

    def result(self, *, icc_profile: Optional[bytes] = None) -> "PhotoAttackResult":
        """The outcome so far (the suite is checked on the current pixels if it was not yet)."""
        if self.suite is None or not self.suite.complete:  # an early-stopped check: the verdict runs every member
            self.workspace.release()
            self.suite = check_suite(self.model, self.current, target=self.target, original_class=self.original_class)
        return PhotoAttackResult(
            model=self.model, original=self.original, adversarial=self.current, target=self.target,
            untargeted=self.untargeted, original_class=self.original_class, epsilon=self.epsilon, until=self.until,
            steps=self.steps, n_updates=self.n_updates,
            reached=goal_holds(self.steps[-1], target=self.target, original_class=self.original_class,
                               until=self.until),
            metrics=perturbation_metrics(self.original, self.current), suite=self.suite, robust=self.robust,
            samples=self.samples, seed=self.seed, stopped=self.stopped, icc_profile=icc_profile,
        )
