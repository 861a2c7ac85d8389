"""How robust is a Caffe classifier on a folder of photos: success against epsilon, minimal epsilon per photo.

:func:`evaluate` attacks every photo of a folder with
:func:`~breaking_nn.photo_attack.attack_photo` at each budget of ``epsilons``
(whole grey levels of the photo, 0-255 scale), then finds each photo's
**minimal epsilon**, the smallest whole grey level up to ``max(epsilons)``
that fools it, by bisection between the largest given budget that failed
and the smallest that worked (those runs are reused, not repeated).

"Fooled" is the project's one definition (:func:`breaking_nn.suite.is_fooled`):
targeted, the target is the top class; untargeted, the original class is no
longer the top class. It is judged on the adversarial photo after a lossless
PNG round trip (what a saved file gives). In the robust default it must also
hold for >= 95 % of the real-world pipeline suite; ``robust=False`` (the
CLI's ``--exact``) attacks and judges the model file's pipeline alone.

One row per photo (see :func:`columns`): the path and size; the original
class and its probability; for each epsilon ``e``: ``fooled_eps{e}`` (the
criterion), ``pipeline_eps{e}`` (the model file's pipeline alone),
``suite_eps{e}`` (fraction of the suite fooled, 0-1), ``steps_eps{e}`` and
``p_goal_eps{e}`` (after reloading: p(target), or untargeted p(original class)); ``min_epsilon`` (empty when no budget
fooled it) with ``l2``, ``psnr`` (dB), ``ssim``, ``suite_fraction`` and ``suite_missed``
(the suite's members it does not fool, each with its engine: ``rotate +5 (caffe); opencv dnn
squash (opencv)``) of the adversarial at that budget; ``attacks`` (how many attacks the photo took);
``error`` (why the file could not be read: such a row has nothing else);
``seconds`` (wall time, the one timing column).

With ``out=``, rows go to a CSV as each photo finishes (see
:mod:`breaking_nn.result_table`: atomic rewrite, arguments sidecar, resume).
With ``scheduler=``, photos are sharded over a Dask cluster
(:mod:`breaking_nn.cluster`, imported only then).
"""
from __future__ import annotations

import io
import math
import numbers
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .atomic import atomic_path
from .errors import AttackError, EvaluateError, ImageLoadError
from .images import decode_image
from .labels import Label
from .metrics import perturbation_metrics
from .model import Classifier, load_model
from .model_file import ModelSpec, read_model_file
from .photo_attack import attack_photo, check_settings
from .result_table import ResultTable
from .suite import ROBUST_FRACTION, SuiteResult, is_fooled

DEFAULT_EPSILONS = (1, 2, 4, 8)
#: Timing columns: left out when two runs' results are compared.
TIMING_COLUMNS = ("seconds",)
PER_EPSILON = ("fooled", "pipeline", "suite", "steps", "p_goal")


# -- settings ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluateSettings:
    """What every photo is attacked with: the goal, the budgets, the attack's mode.

    ``target``: class number, or None when ``untargeted``. ``epsilons``: sorted
    whole grey levels (1-255). ``robust``: attack and judge over the
    real-world suite (False: the model file's pipeline only). ``samples`` and
    ``seed`` go to :func:`~breaking_nn.photo_attack.attack_photo` (each photo
    and budget gets its own seed derived from ``seed``, see :func:`attack_seed`).
    """

    target: Optional[int]
    untargeted: bool
    epsilons: tuple[int, ...]
    max_steps: int = 50
    robust: bool = True
    samples: Optional[int] = None
    seed: Optional[int] = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "untargeted": self.untargeted, "epsilons": list(self.epsilons),
                "max_steps": self.max_steps, "robust": self.robust, "samples": self.samples, "seed": self.seed}


def check_epsilons(epsilons: Union[str, Iterable]) -> tuple[int, ...]:
    """Whole grey levels 1-255, sorted and without repeats, from ``"1,2,4,8"`` or a sequence."""
    items = [e.strip() for e in epsilons.split(",")] if isinstance(epsilons, str) else list(epsilons)
    if not items or items == [""]:
        raise EvaluateError("--epsilons needs at least one budget, e.g. 1,2,4,8")
    values = []
    for item in items:
        try:
            value = float(item) if isinstance(item, str) else item
        except ValueError:
            raise EvaluateError(f"--epsilons takes whole grey levels separated by commas (1,2,4,8), "
                                f"not {item!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or value != int(value) or not 1 <= value <= 255:
            raise EvaluateError(f"each epsilon must be a whole number of grey levels from 1 to 255, not {item!r} "
                                f"(e.g. --epsilons 1,2,4,8)")
        values.append(int(value))
    return tuple(sorted(set(values)))


def make_settings(labels, target: Optional[Label], *, untargeted: bool, epsilons, max_steps: int, robust: bool,
                  samples: Optional[int], seed: Optional[int]) -> EvaluateSettings:
    """Checked :class:`EvaluateSettings`; ``labels`` resolve ``target`` (a number or a name)."""
    if untargeted and target is not None:
        raise EvaluateError("give a target or untargeted, not both")
    if not untargeted and target is None:
        raise EvaluateError("give a target class (a number or a name), or untargeted")
    try:  # the attack's own rules for max_steps, samples and seed
        check_settings(epsilon=1, max_steps=max_steps, until=None, robust=robust, samples=samples, seed=seed)
    except AttackError as exc:
        raise EvaluateError(str(exc)) from None
    return EvaluateSettings(target=None if untargeted else labels.index(target), untargeted=untargeted,
                            epsilons=check_epsilons(epsilons), max_steps=int(max_steps), robust=bool(robust),
                            samples=samples, seed=seed)


def columns(epsilons: Sequence[int]) -> list[str]:
    """The CSV's columns, in order, for these budgets (see the module docstring)."""
    per = [f"{what}_eps{e}" for e in epsilons for what in PER_EPSILON]
    return (["path", "width", "height", "original_class", "original_name", "p_original", *per,
             "min_epsilon", "l2", "psnr", "ssim", "suite_fraction", "suite_missed", "attacks", "error", "seconds"])


def attack_seed(seed: Optional[int], name: str, epsilon: int) -> Optional[int]:
    """The attack's seed for photo ``name`` (its file name) at ``epsilon``: the same wherever it runs."""
    if seed is None:
        return None
    state = np.random.SeedSequence([int(seed), zlib.crc32(Path(name).name.encode("utf-8")), int(epsilon)])
    return int(state.generate_state(1)[0])


# -- the photos ----------------------------------------------------------------------------
def list_photos(photos: Union[str, Path, Iterable[Union[str, Path]]]) -> list[Path]:
    """The files to evaluate: a folder's files (not hidden, not recursive, sorted) or the given paths."""
    if isinstance(photos, (str, Path)):
        folder = Path(photos).expanduser()
        if not folder.is_dir():
            raise EvaluateError(f"{folder} is not a folder: give a folder of photos (JPEG, PNG, ...)")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise EvaluateError(f"the folder {folder} is empty: put the photos to evaluate in it")
        return files
    files = [Path(p).expanduser() for p in photos]
    if not files:
        raise EvaluateError("no photos given: pass a folder or a list of image files")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise EvaluateError(f"{missing[0]} does not exist" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                               else "") + ": check the paths")
    return files


def check_some_readable(files: Sequence[Path], where: str) -> None:
    """:class:`EvaluateError` unless at least one of ``files`` is an image Pillow can read."""
    first_error = None
    for path in files:
        try:
            decode_image(path.read_bytes(), str(path))
            return
        except ImageLoadError as exc:
            first_error = first_error or exc
        except OSError as exc:
            first_error = first_error or exc
    raise EvaluateError(f"no readable image in {where}: none of its {len(files)} files is an image Pillow can read "
                        f"(first: {_error_text(first_error)}) Give a folder of JPEG, PNG, GIF, BMP or WebP photos")


def _error_text(exc: BaseException) -> str:
    """The error's message without memory addresses: the same text wherever it runs."""
    return re.sub(r" (object )?at 0x[0-9a-f]+", "", str(exc))


# -- one batch of photos -------------------------------------------------------------------
@dataclass
class _Outcome:
    """One attack of one photo at one budget, judged after a PNG round trip."""

    epsilon: int
    png: bytes  # the adversarial photo as a PNG (kept instead of the pixels: smaller, and what is judged)
    steps: int
    pipeline: bool
    suite: float
    p_goal: float
    fooled: bool
    missed: str = ""  # the suite's members not fooled, "name (engine); ..."


@dataclass
class _Photo:
    name: str
    photo: np.ndarray  # (H, W, 3) uint8 RGB
    original_class: int
    p_original: float
    outcomes: dict  # epsilon -> _Outcome


def goal_probability(probs: np.ndarray, *, target: Optional[int], original_class: int) -> float:
    """p(target); untargeted, p(original class), which the attack lowers (as the suite's rows report)."""
    return float(probs[target if target is not None else original_class])


def _png(photo: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _attack_many(model: Classifier, jobs: list[tuple[_Photo, int]], settings: EvaluateSettings,
                 batch: int) -> None:
    """Attack each ``(photo, epsilon)`` of ``jobs``, ``batch`` at a time; the outcomes go into ``photo.outcomes``.

    ``batch`` 1 calls :func:`~breaking_nn.photo_attack.attack_photo` per
    photo; more go through :func:`~breaking_nn.batch_attack.attack_photos`
    (one reshaped batch per step), which gives the same pixels.
    """
    target = settings.target
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        seeds = [attack_seed(settings.seed, item.name, e) if settings.robust else None for item, e in chunk]
        if len(chunk) == 1:
            (item, epsilon), seed = chunk[0], seeds[0]
            result = attack_photo(model, item.photo, target, epsilon=epsilon, max_steps=settings.max_steps,
                                  until=None, untargeted=settings.untargeted, robust=settings.robust,
                                  samples=settings.samples, seed=seed)
            adversarials = [(result.adversarial, int(result.n_updates), result.suite)]
        else:
            from .batch_attack import attack_photos

            results = attack_photos(model, [item.photo for item, _ in chunk], target,
                                    epsilons=[e for _, e in chunk], seeds=seeds, max_steps=settings.max_steps,
                                    untargeted=settings.untargeted, robust=settings.robust, samples=settings.samples)
            adversarials = [(r.adversarial, r.n_updates, r.suite) for r in results]
        for (item, epsilon), (adversarial, n_updates, suite) in zip(chunk, adversarials):
            item.outcomes[epsilon] = _judge(model, item, epsilon, adversarial, n_updates, suite, settings)


def _judge(model: Classifier, item: _Photo, epsilon: int, adversarial: np.ndarray, n_updates: int,
           suite: SuiteResult, settings: EvaluateSettings) -> _Outcome:
    """Judge the PNG ``adversarial`` would be saved as; ``suite``: the attack's check of it over the suite."""
    target = settings.target
    png = _png(adversarial)
    probs = model.forward(model.preprocess(decode_image(png)))  # what the saved file gives
    pipeline = is_fooled(probs, target=target, original_class=item.original_class)
    fooled = pipeline and (not settings.robust or suite.passes)
    return _Outcome(epsilon=epsilon, png=png, steps=int(n_updates),
                    pipeline=bool(pipeline), suite=float(suite.fraction),
                    p_goal=goal_probability(probs, target=target, original_class=item.original_class),
                    fooled=bool(fooled), missed="; ".join(f"{row.name} ({row.engine})" for row in suite.missed))


def _bracket(item: _Photo, epsilons: Sequence[int]) -> Optional[tuple[int, int]]:
    """(low, high): the largest budget known not to fool below the smallest known to fool; None if none fools."""
    fooling = sorted(e for e, o in item.outcomes.items() if o.fooled)
    if not fooling:
        return None
    high = fooling[0]
    return max([e for e in item.outcomes if e < high], default=0), high


def _minimal_epsilons(model: Classifier, items: list[_Photo], settings: EvaluateSettings, batch: int) -> None:
    """Bisection over whole grey levels, all photos' probes of one round attacked together.

    Starts from the given budgets' runs (already in ``outcomes``); for each
    photo, probes ``(low + high) // 2`` until ``high - low == 1``; ``high``
    is then its minimal epsilon (found assuming fooling is monotone in epsilon).
    """
    while True:
        jobs = []
        for item in items:
            bracket = _bracket(item, settings.epsilons)
            if bracket is not None and bracket[1] - bracket[0] > 1:
                jobs.append((item, (bracket[0] + bracket[1]) // 2))
        if not jobs:
            return
        _attack_many(model, jobs, settings, batch)


def evaluate_photos(model: Classifier, items: Sequence[tuple[str, bytes]], settings: EvaluateSettings, *,
                    keep: bool = False, batch: int = 1) -> list[tuple[dict, dict[str, bytes]]]:
    """Evaluate encoded photos ``[(path, bytes), ...]``; one ``(row, kept)`` each, in order.

    ``kept`` maps file names (``NAME.eps4.png``) to PNG bytes of the
    adversarials when ``keep`` (else it is empty). A file that does not decode
    gets a row with only ``path`` and ``error``. ``batch``: photos attacked at
    once. Used in this process and, unchanged, on Dask workers.
    """
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    photos: list[_Photo] = []
    for name, data in items:
        row: dict[str, Any] = {"path": name}
        rows.append(row)
        try:
            image = decode_image(data, name)
        except ImageLoadError as exc:
            row["error"] = _error_text(exc)
            continue
        photo = np.rint(image * 255.0).astype(np.uint8)
        probs = model.forward(model.preprocess(image))
        original_class = int(np.argmax(probs))
        photos.append(_Photo(name=name, photo=photo, original_class=original_class,
                             p_original=float(probs[original_class]), outcomes={}))
        row.update(width=photo.shape[1], height=photo.shape[0], original_class=original_class,
                   original_name=model.labels.name(original_class), p_original=float(probs[original_class]))
    for epsilon in settings.epsilons:
        _attack_many(model, [(item, epsilon) for item in photos], settings, batch)
    _minimal_epsilons(model, photos, settings, batch)
    by_name = {item.name: item for item in photos}
    out = []
    for row in rows:
        kept: dict[str, bytes] = {}
        item = by_name.get(row["path"])
        if item is not None:
            row["attacks"] = len(item.outcomes)
            for e in settings.epsilons:
                o = item.outcomes[e]
                row.update({f"fooled_eps{e}": o.fooled, f"pipeline_eps{e}": o.pipeline, f"suite_eps{e}": o.suite,
                            f"steps_eps{e}": o.steps, f"p_goal_eps{e}": o.p_goal})
            bracket = _bracket(item, settings.epsilons)
            minimal = None if bracket is None else bracket[1]
            if minimal is not None:
                best = item.outcomes[minimal]
                adversarial = np.rint(decode_image(best.png) * 255.0).astype(np.uint8)
                metrics = perturbation_metrics(item.photo, adversarial)
                row.update(min_epsilon=minimal, l2=metrics.l2, psnr=metrics.psnr, ssim=metrics.ssim,
                           suite_fraction=best.suite, suite_missed=best.missed)
            if keep:
                stem = Path(item.name).name
                for e in sorted(set(settings.epsilons) | ({minimal} if minimal is not None else set())):
                    kept[f"{stem}.eps{e}.png"] = item.outcomes[e].png
        row["seconds"] = (time.perf_counter() - start) / len(rows)  # a batch's photos share its time
        out.append((row, kept))
    return out


# -- the whole folder ------------------------------------------------------------------------
def _model_identity(model: Union[Classifier, ModelSpec]) -> dict[str, Any]:
    if isinstance(model, ModelSpec):
        return {"name": model.name, "prototxt": str(model.prototxt.resolve()),
                "weights": None if model.weights is None else str(model.weights.resolve())}
    return {"name": model.name, "classes": model.n_classes}


def _spec_of(model: Union[str, Path, ModelSpec]) -> ModelSpec:
    spec = model if isinstance(model, ModelSpec) else read_model_file(model)
    if spec.weights is None:
        raise EvaluateError(f"{spec.where()} names no weights: evaluating an untrained net means nothing; "
                            "give its caffemodel")
    return spec


def evaluate(
    model: Union[Classifier, str, Path, ModelSpec],
    photos: Union[str, Path, Iterable[Union[str, Path]]],
    target: Optional[Label] = None,
    *,
    untargeted: bool = False,
    epsilons: Union[str, Sequence[int]] = DEFAULT_EPSILONS,
    max_steps: int = 50,
    robust: bool = True,
    samples: Optional[int] = None,
    seed: Optional[int] = None,
    out: Union[str, Path, None] = None,
    keep: Union[str, Path, None] = None,
    force: bool = False,
    batch: int = 1,
    scheduler: Optional[str] = None,
    progress: bool = False,
    on_row: Optional[Callable[[dict], None]] = None,
) -> pd.DataFrame:
    """Attack every photo at every budget; one row per photo (see the module docstring).

    Arguments:
        model: a loaded :class:`~breaking_nn.model.Classifier`, or a model file
            (``model.toml``) or :class:`~breaking_nn.model_file.ModelSpec` (needed
            with ``scheduler``: the workers load it from its bytes).
        photos: a folder (its files, sorted, hidden ones left out) or a list of files.
        target / untargeted: the goal, as for :func:`~breaking_nn.photo_attack.attack_photo`.
        epsilons: budgets in whole grey levels 1-255 (``"1,2,4,8"`` or a sequence).
        max_steps, robust, samples, seed: as for ``attack_photo`` (``robust=False``
            is the CLI's ``--exact``).
        out: the CSV to fill as photos finish (resumes an earlier run with the
            same arguments; ``force`` starts over). None: no file.
        keep: a folder for the adversarial PNGs (``NAME.eps{e}.png``); None keeps none.
        batch: photos attacked at once (see :mod:`breaking_nn.batch_attack`).
        scheduler: a Dask scheduler address (``tcp://host:8786``): shard the photos there.
        progress: a tqdm bar over the photos. ``on_row``: called with each new row.

    Returns the table (all rows, the resumed ones included), sorted by path.

    >>> table = evaluate("models/open_nsfw/model.toml", "photos/", 1, out="results.csv")  # doctest: +SKIP
    >>> summarize(table)                                                                   # doctest: +SKIP
    """
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise EvaluateError(f"batch must be a whole number >= 1, not {batch!r}")
    spec = None if isinstance(model, Classifier) else _spec_of(model)
    labels = model.labels if isinstance(model, Classifier) else spec.labels
    try:
        settings = make_settings(labels, target, untargeted=untargeted, epsilons=epsilons, max_steps=max_steps,
                                 robust=robust, samples=samples, seed=seed)
    except AttackError as exc:
        raise EvaluateError(str(exc)) from None
    files = list_photos(photos)
    where = str(photos) if isinstance(photos, (str, Path)) else "the given files"
    keep_dir = None
    if keep is not None:
        keep_dir = Path(keep).expanduser()
        if keep_dir.exists() and not keep_dir.is_dir():
            raise EvaluateError(f"--keep {keep_dir} is a file: give a folder for the adversarial photos")
        if not keep_dir.parent.is_dir():
            raise EvaluateError(f"the folder of --keep {keep_dir} does not exist: create {keep_dir.parent} first")
    arguments = {"photos": str(Path(photos).expanduser().resolve()) if isinstance(photos, (str, Path)) else None,
                 "model": _model_identity(spec or model), **settings.as_dict()}
    table = ResultTable(out, columns=columns(settings.epsilons), arguments=arguments, force=force)
    todo = [p for p in files if str(p) not in table.done]
    check_some_readable(files, where)
    if scheduler is not None and isinstance(model, Classifier):
        raise EvaluateError("with a scheduler, give the model file (model.toml), not a loaded model: "
                            "the workers load it from its files")

    def accept(row: dict, kept: dict[str, bytes]) -> None:
        if keep_dir is not None and kept:
            keep_dir.mkdir(exist_ok=True)
            for name, png in kept.items():
                with atomic_path(keep_dir / name) as part:
                    part.write_bytes(png)
        table.add({c: row.get(c) for c in table.columns})
        if on_row is not None:
            on_row(row)

    if not todo:  # every photo already has its row
        return table.frame()
    bar = tqdm(total=len(files), initial=len(files) - len(todo), desc="photos", unit="photo", disable=not progress)
    try:
        if scheduler is not None:
            from .cluster import evaluate_on_cluster  # Dask only when asked for

            evaluate_on_cluster(scheduler, spec, todo, settings, keep=keep_dir is not None, batch=batch,
                                accept=lambda row, kept: (accept(row, kept), bar.update(1)))
        else:
            classifier = model if isinstance(model, Classifier) else load_model(spec)
            for group in _chunks(todo, batch):
                items = [(str(p), _read(p)) for p in group]
                for row, kept in evaluate_photos(classifier, items, settings, keep=keep_dir is not None, batch=batch):
                    accept(row, kept)
                    bar.update(1)
    finally:
        bar.close()
    return table.frame()


def _read(path: Path) -> bytes:
    """The file's bytes; an unreadable file gives empty bytes (its row then says why)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _chunks(items: Sequence, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


# -- summary and curve -----------------------------------------------------------------------
def epsilons_of(table: pd.DataFrame) -> list[int]:
    """The budgets a result table holds, from its ``fooled_eps{e}`` columns."""
    return sorted(int(c[len("fooled_eps"):]) for c in table.columns if c.startswith("fooled_eps"))


def success_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Per budget: photos (readable), fooled, and the rates (0-1) of the criterion, the pipeline and the suite.

    Columns: ``epsilon``, ``photos``, ``fooled``, ``success_rate`` (the
    criterion), ``pipeline_rate`` (the model file's pipeline fooled) and
    ``suite_rate`` (>= 95 % of the suite fooled; NaN without a suite).
    """
    readable = table[table["error"].isna()] if "error" in table else table
    n = len(readable)
    rows = []
    for e in epsilons_of(table):
        fooled = int(readable[f"fooled_eps{e}"].astype(bool).sum())
        suite = pd.to_numeric(readable[f"suite_eps{e}"], errors="coerce")
        rows.append({"epsilon": e, "photos": n, "fooled": fooled, "success_rate": fooled / n if n else math.nan,
                     "pipeline_rate": readable[f"pipeline_eps{e}"].astype(bool).mean() if n else math.nan,
                     "suite_rate": (suite >= ROBUST_FRACTION).mean() if n and suite.notna().any() else math.nan})
    return pd.DataFrame(rows)


def minimal_epsilon_quartiles(table: pd.DataFrame) -> dict[str, float]:
    """Quartiles (``q25``, ``median``, ``q75``) of ``min_epsilon`` over readable photos.

    Each quartile is an observed minimal epsilon (numpy's ``inverted_cdf``:
    a whole grey level, no interpolation). A photo no budget fooled counts as
    infinitely hard (``inf``), so a quartile is ``inf`` when more than that
    share of photos resisted.
    """
    readable = table[table["error"].isna()] if "error" in table else table
    values = pd.to_numeric(readable["min_epsilon"], errors="coerce").fillna(np.inf).to_numpy(float)
    if not len(values):
        return {"q25": math.nan, "median": math.nan, "q75": math.nan, "photos": 0, "not_fooled": 0}
    q = np.quantile(values, [0.25, 0.5, 0.75], method="inverted_cdf")  # each an observed whole grey level
    return {"q25": float(q[0]), "median": float(q[1]), "q75": float(q[2]), "photos": len(values),
            "not_fooled": int(np.isinf(values).sum())}


def summarize(table: pd.DataFrame) -> str:
    """The summary the CLI prints: the success rate per budget, then the minimal epsilon's quartiles."""
    rates = success_rates(table)
    unreadable = int(table["error"].notna().sum()) if "error" in table else 0
    lines = ["epsilon  fooled     success  pipeline  suite>=95%"]
    for r in rates.itertuples():
        suite = "-" if math.isnan(r.suite_rate) else f"{r.suite_rate:.0%}"
        lines.append(f"{r.epsilon:>7}  {f'{r.fooled}/{r.photos}':<9}  {r.success_rate:>7.0%}  "
                     f"{r.pipeline_rate:>8.0%}  {suite:>10}")
    q = minimal_epsilon_quartiles(table)
    top = max(epsilons_of(table), default=0)
    show = (lambda v: f">{top}" if math.isinf(v) else f"{v:g}")
    lines.append(f"minimal epsilon (grey levels): quartiles {show(q['q25'])} / median {show(q['median'])} / "
                 f"{show(q['q75'])} over {q['photos']} photos; {q['not_fooled']} not fooled at {top}")
    if unreadable:
        lines.append(f"{unreadable} file(s) could not be read: see the error column")
    return "\n".join(lines)


def plot_success_curve(table: pd.DataFrame, path: Union[str, Path, None] = None, *, ax=None, title: str = ""):
    """Success rate (%) against epsilon (grey levels): a line for the model file's pipeline, one for the suite.

    Returns the Axes; with ``path``, also writes the figure as a PNG (atomically).
    """
    from matplotlib import pyplot as plt

    rates = success_rates(table)
    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rates["epsilon"], 100 * rates["pipeline_rate"], marker="o", label="model file's pipeline")
    if rates["suite_rate"].notna().any():
        ax.plot(rates["epsilon"], 100 * rates["suite_rate"], marker="s", label="real-world suite (>= 95 % fooled)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(rates["epsilon"]), [str(e) for e in rates["epsilon"]])
    ax.set_xlabel("epsilon (largest change per pixel, grey levels 0-255)")
    ax.set_ylabel("photos fooled (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title or f"success rate against epsilon ({int(rates['photos'].iloc[0]) if len(rates) else 0} photos)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    if path is not None:
        path = Path(path)
        with atomic_path(path) as part:
            (figure or ax.figure).savefig(part, format="png", dpi=120, bbox_inches="tight")
    if figure is not None and path is not None:
        plt.close(figure)
    return ax
