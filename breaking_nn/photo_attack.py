"""Attack a photo in its own pixels: a same-size file that still fools the network when reloaded.

The blog's :func:`~breaking_nn.attack.trick` works on the network's (3, 224, 224)
float data; saved as an 8-bit image its sub-grey-level perturbation rounds
away. :func:`attack_photo` works on the photo itself, (H, W, 3) uint8, HWC,
RGB, 0-255, at its own size:

* each step preprocesses the current integer pixels (``/ 255`` ->
  ``model.preprocess``), runs one forward and one backward pass, and maps the
  data gradient back to the photo with the preprocessing's exact transpose
  (:meth:`~breaking_nn.preprocessing.Preprocessing.adjoint`);
* it moves every pixel by whole grey levels along the gradient's sign (the
  iterative sign attack of Kurakin et al., 2017, https://arxiv.org/abs/1607.02533),
  then projects onto ``[photo - epsilon, photo + epsilon]`` and 0-255;
* it checks the goal on the very integer pixels it would save and stops as
  soon as the goal holds.

:meth:`PhotoAttackResult.save` writes the photo atomically and proves it:
it reloads the file through ``load_image`` -> ``preprocess`` -> forward.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .atomic import atomic_path
from .errors import AttackError, SaveError
from .images import ImageSource, load_image
from .labels import Label
from .metrics import PerturbationMetrics, perturbation_metrics, top_k
from .model import Classifier

#: Output formats by file extension: Pillow's format name, and whether it is lossless.
FORMATS = {".png": ("PNG", True), ".webp": ("WEBP", True), ".bmp": ("BMP", True), ".tif": ("TIFF", True),
           ".tiff": ("TIFF", True), ".jpg": ("JPEG", False), ".jpeg": ("JPEG", False)}
#: Largest difference between in-memory and reloaded probabilities a lossless save may show.
LOSSLESS_TOLERANCE = 1e-6
DEFAULT_JPEG_QUALITY = 95


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
        raise SaveError(f"{path} already exists: choose another name, or overwrite it with --force (force=True)")
    return path


def check_jpeg_quality(quality: int) -> int:
    """``quality`` as an int if it is a JPEG quality from 1 to 95 (Pillow's useful range), else :class:`SaveError`."""
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 95:
        raise SaveError(f"JPEG quality must be a whole number from 1 to 95, not {quality!r}")
    return int(quality)


def photo_probabilities(model: Classifier, photo: np.ndarray) -> np.ndarray:
    """Class probabilities (K,) of an (H, W, 3) uint8 RGB photo, as ``load_image`` would read it."""
    return model.forward(model.preprocess(load_image(photo)))


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
        ok: the save is verified: the goal holds and, for a lossless format,
            the pixels are equal and the probabilities within 1e-6.
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
    ok: bool
    message: str

    def as_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        return {"path": str(self.path), "format": self.format, "quality": self.quality, "lossless": self.lossless,
                "pixels_equal": self.pixels_equal, "max_abs_diff": self.max_abs_diff,
                "goal_holds": self.goal_holds, "metrics": self.metrics.as_dict(), "ok": self.ok,
                "message": self.message}


@dataclass
class PhotoAttackResult:
    """The outcome of :func:`attack_photo`.

    Attributes:
        model: the attacked :class:`~breaking_nn.model.Classifier`.
        original, adversarial: (H, W, 3) uint8, HWC, RGB, 0-255, the photo's own size.
        target: the class number aimed at; None when ``untargeted``.
        untargeted: the attack lowered ``original_class`` instead.
        original_class: the class the network saw in ``original``.
        epsilon, until: the budget (grey levels) and the goal's threshold.
        steps: probabilities (K,) of every photo the attack evaluated, the
            original first and ``adversarial``'s last (``n_updates + 1`` of them).
        n_updates: sign steps taken (0: the goal held from the start).
        reached: the goal holds for ``adversarial``.
        metrics: :class:`~breaking_nn.metrics.PerturbationMetrics` of the change.
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
    steps: list = field(repr=False)
    n_updates: int
    reached: bool
    metrics: PerturbationMetrics
    saved: Optional[SaveCheck] = None

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
            return f"p({self.target} {name(self.target)}) >= {self.until:g}"
        return f"another class leads {self.original_class} {name(self.original_class)} by >= {self.until:g}"

    def summary(self) -> str:
        """One line: reached or not, steps, the goal's value, the top class and the perturbation."""
        labels = self.model.labels
        top = int(np.argmax(self.probabilities_after))
        status = "reached" if self.reached else "NOT reached (budget ran out)"
        what = "p(target)" if self.target is not None else "lead"
        return (f"goal {self.goal_text()} {status} after {self.n_updates} steps: {what} {self.progress():.4f}, "
                f"top class {top} ({labels.name(top)}) at {self.probabilities_after[top]:.4f}; {self.metrics}")

    def as_dict(self) -> dict:
        """JSON-ready summary: goal, steps, probabilities of the top 5, metrics, save check."""
        labels = self.model.labels
        return {
            "model": self.model.name, "size": [int(s) for s in self.original.shape[:2]],
            "target": self.target, "target_name": None if self.target is None else labels.name(self.target),
            "untargeted": self.untargeted, "original_class": self.original_class,
            "original_name": labels.name(self.original_class), "epsilon": self.epsilon, "until": self.until,
            "goal": self.goal_text(), "reached": self.reached, "steps": self.n_updates,
            "progress": self.progress(),
            "top5_before": [list(t) for t in self.top5_before()], "top5_after": [list(t) for t in self.top5_after()],
            "metrics": self.metrics.as_dict(), "saved": None if self.saved is None else self.saved.as_dict(),
        }

    # -- saving ------------------------------------------------------------------------
    def save(self, path: Union[str, Path], *, quality: int = DEFAULT_JPEG_QUALITY, force: bool = True) -> SaveCheck:
        """Write :attr:`adversarial` to ``path`` atomically, reload it, and check it still fools the model.

        The format comes from the extension: .png, .webp (lossless), .bmp,
        .tif/.tiff keep every pixel; .jpg/.jpeg is compressed at ``quality``
        (1-95, default 95) and verified after compression. The file is
        reloaded through ``load_image`` -> ``model.preprocess`` -> forward; the
        returned :class:`SaveCheck` (also in :attr:`saved`) says whether the
        probabilities equal the in-memory ones (<= 1e-6 for lossless formats)
        and whether the goal still holds. ``force=False`` refuses to overwrite.

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
        with atomic_path(path) as part:
            Image.fromarray(self.adversarial, "RGB").save(part, format=fmt, **options)
        reloaded_image = load_image(path)
        reloaded_pixels = np.rint(reloaded_image * 255).astype(np.uint8)
        pixels_equal = bool(np.array_equal(reloaded_pixels, self.adversarial))
        file_metrics = perturbation_metrics(self.original, reloaded_pixels)
        probs = self.model.forward(self.model.preprocess(reloaded_image))
        diff = float(np.abs(probs - self.probabilities_after).max())
        holds = self.goal_holds(probs)
        ok = holds and (not lossless or (pixels_equal and diff <= LOSSLESS_TOLERANCE))
        named = f"{fmt} quality {options['quality']}, 4:4:4" if fmt == "JPEG" else fmt
        if ok:
            message = f"verified: {path} ({named}) reloaded gives the goal, {self.goal_text()} (value {self.progress(probs):.4f})"
            if fmt == "JPEG":
                message += f", probabilities moved by up to {diff:.2g} by the compression"
        elif lossless and not (pixels_equal and diff <= LOSSLESS_TOLERANCE):
            message = (f"NOT verified: {path} ({named}) reloaded differs from the attacked photo "
                       f"(pixels equal: {pixels_equal}, probabilities differ by {diff:.2g})")
        elif not self.reached:
            message = (f"saved {path} ({named}); reloaded, it gives {'the same' if lossless else 'about the same'} "
                       f"probabilities (largest difference {diff:.2g}), but the attack did not reach the goal "
                       f"{self.goal_text()} (value {self.progress(probs):.4f})")
        else:
            message = (f"NOT verified: {path} ({named}) no longer fools the model: after "
                       f"{'compression' if fmt == 'JPEG' else 'reloading'} the goal {self.goal_text()} fails "
                       f"(value {self.progress(probs):.4f} instead of {self.progress():.4f}); save as .png to keep it")
        if fmt == "JPEG":
            message += (f"; the compressed file differs from the original by L-inf {file_metrics.linf} grey levels "
                        f"(attack budget {self.epsilon:g}), PSNR {file_metrics.psnr:.1f} dB, SSIM {file_metrics.ssim:.4f}")
        self.saved = SaveCheck(path=path, format=fmt, quality=options.get("quality") if fmt == "JPEG" else None,
                               lossless=lossless, pixels_equal=pixels_equal, max_abs_diff=diff, probabilities=probs,
                               goal_holds=holds, metrics=file_metrics, ok=ok, message=message)
        return self.saved


def goal_value(probs: np.ndarray, *, target: Optional[int], original_class: int) -> float:
    """p(target) for a targeted goal; else the lead max_{k != original} p_k - p_original."""
    probs = np.asarray(probs, np.float64)
    if target is not None:
        return float(probs[target])
    others = np.delete(probs, original_class)
    return float(others.max() - probs[original_class])


def goal_holds(probs: np.ndarray, *, target: Optional[int], original_class: int, until: float) -> bool:
    """Targeted: ``target`` is the top class and p(target) >= until. Untargeted: the lead >= until."""
    value = goal_value(probs, target=target, original_class=original_class)
    if target is not None:
        return bool(int(np.argmax(probs)) == target and value >= until)
    return bool(value >= until)


def check_settings(*, epsilon: float, max_steps: int, until: float) -> None:
    """Raise :class:`AttackError` unless 1 <= epsilon <= 255, max_steps >= 1 and 0 < until < 1."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon):
        raise AttackError(f"epsilon must be a number of grey levels from 1 to 255, not {epsilon!r}")
    if not 1 <= epsilon <= 255:
        raise AttackError(f"epsilon must be from 1 to 255 grey levels (steps are whole grey levels), not {epsilon:g}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1:
        raise AttackError(f"max_steps must be a whole number >= 1, not {max_steps!r}")
    if isinstance(until, bool) or not isinstance(until, numbers.Real) or not 0 < until < 1:
        raise AttackError(f"until must be a probability strictly between 0 and 1, not {until!r}")


def as_photo(photo: Union[ImageSource, np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 RGB 0-255 from a path, URL, PIL image or array (see ``load_image``)."""
    if isinstance(photo, np.ndarray) and photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3:
        return photo.copy()
    return np.rint(load_image(photo) * 255.0).astype(np.uint8)


def attack_photo(
    model: Classifier,
    photo: Union[ImageSource, np.ndarray],
    target: Optional[Label] = None,
    *,
    epsilon: float = 4,
    max_steps: int = 50,
    until: float = 0.9,
    untargeted: bool = False,
    step_size: int = 1,
    progress: bool = False,
) -> PhotoAttackResult:
    """Perturb ``photo`` in its own pixels until ``model`` sees ``target``; return a :class:`PhotoAttackResult`.

    Arguments:
        model: a :class:`~breaking_nn.model.Classifier` (its preprocessing is
            followed exactly, gradients go back through its adjoint).
        photo: a path, URL, PIL image or array; used as (H, W, 3) uint8, HWC,
            RGB, 0-255 at its own size (float 0-1 arrays are rounded to grey levels).
        target: class number (145) or name ("king penguin"); None with ``untargeted``.
        epsilon: the budget, in grey levels (default 4): no channel of any pixel
            moves by more than ``floor(epsilon)``; 1 to 255.
        max_steps: the most sign steps (default 50); each costs one forward
            and one backward pass.
        until: the goal's threshold in (0, 1) (default 0.9). Targeted: the
            target is the top class and p(target) >= until. Untargeted: the
            originally predicted class c is lowered until another class *leads
            it by* ``until``: max over k != c of p_k, minus p_c, >= until.
        untargeted: lower the original class instead of raising a target.
        step_size: grey levels per step (default 1, a whole number).
        progress: show a tqdm progress bar with the goal's value.

    Every step keeps the pixels whole grey levels in 0-255 and within
    epsilon of ``photo``. The goal is checked on exactly those integer pixels,
    and the attack stops as soon as it holds; ``result.reached`` says whether
    it did, ``result.summary()`` how far it got.

    >>> model = load_model("models/open_nsfw/model.toml")          # doctest: +SKIP
    >>> result = attack_photo(model, "chelsea.png", 1, epsilon=4)  # doctest: +SKIP
    >>> result.reached, result.metrics.linf                         # doctest: +SKIP
    (True, 2)
    >>> result.save("chelsea-nsfw.png").ok                         # doctest: +SKIP
    True
    """
    check_settings(epsilon=epsilon, max_steps=max_steps, until=until)
    if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
        raise AttackError(f"step_size must be a whole number of grey levels >= 1, not {step_size!r}")
    if untargeted and target is not None:
        raise AttackError("give a target or untargeted=True, not both: an untargeted attack has no target")
    if not untargeted and target is None:
        raise AttackError("give a target class (number or name), or untargeted=True")
    target_index = None if untargeted else model.labels.index(target)
    original = as_photo(photo)
    height, width = original.shape[:2]
    budget = int(math.floor(epsilon))
    low = np.clip(original.astype(np.int16) - budget, 0, 255)
    high = np.clip(original.astype(np.int16) + budget, 0, 255)

    current = original.astype(np.int16)
    if untargeted:  # the class to lower: one extra forward pass
        original_class = int(np.argmax(photo_probabilities(model, original)))
        label = original_class
    else:
        original_class, label = -1, target_index  # set from the first step below
    direction = -1 if untargeted else 1  # lower p(original class), or raise p(target)
    steps: list[np.ndarray] = []
    n_updates = 0
    desc = f"{model.name} -> " + ("untargeted" if untargeted else model.labels.name(target_index)[:30])
    with tqdm(total=max_steps, desc=desc, disable=not progress, leave=False) as bar:
        while True:
            pixels = current.astype(np.uint8)
            probs, grad = model.forward_backward(model.preprocess(load_image(pixels)), label)
            steps.append(probs)
            if original_class < 0:
                original_class = int(np.argmax(probs))
            value = goal_value(probs, target=target_index, original_class=original_class)
            bar.set_postfix_str(f"{'p(target)' if target_index is not None else 'lead'}={value:.4f}")
            if goal_holds(probs, target=target_index, original_class=original_class, until=until):
                break
            if n_updates == max_steps:
                break
            photo_grad = model.preprocessing.adjoint(grad, (height, width))  # d p / d photo, exact transpose
            current = np.clip(current + direction * step_size * np.sign(photo_grad).astype(np.int16), low, high)
            n_updates += 1
            bar.update(1)
    adversarial = current.astype(np.uint8)
    return PhotoAttackResult(
        model=model, original=original, adversarial=adversarial, target=target_index, untargeted=untargeted,
        original_class=original_class, epsilon=float(epsilon), until=float(until), steps=steps,
        n_updates=n_updates,
        reached=goal_holds(steps[-1], target=target_index, original_class=original_class, until=until),
        metrics=perturbation_metrics(original, adversarial),
    )
