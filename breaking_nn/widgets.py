"""``bnn.app()``: try the attack on your own photo, in a notebook or as a web page (Voilà).

The app holds widgets only. It calls the very functions the ``breaking-nn``
command calls (``load_googlenet`` / ``load_model``, ``as_photo``,
``attack_photo``, ``result.save``, ``save_report``); it has no attack logic
of its own.

* **Photo**: an upload, an http(s) URL, or a bundled example (scikit-image's
  CC0 photos). The last one chosen is used.
* **Model**: GoogLeNet or any ``models/*/model.toml`` (plus ``models=``
  given here), with its trained or generated weights.
* **Target**: a class name completed as you type (or a number), or
  "untargeted". **Controls**: epsilon in whole grey levels (1-16), max steps,
  until (or just fooled), robust or exact, and the device where Caffe has CUDA.
* **Run** starts the attack in a worker thread, so the kernel stays free to
  handle **Stop**: pycaffe holds Python's GIL during each forward/backward
  pass, and the worker checks Stop between steps (``on_step``). Caffe's
  CPU/GPU mode is per thread: the model's own calls set it in the worker.
* **Result**: the original, the perturbation amplified and the adversarial
  side by side, the top 5 before and after, the metrics line, "fooled under N
  of M pipelines", and download links for the verified file and the report PNG.

Every error shows as one line in the app; the kernel never dies.

**Served** (docker/start-app.sh sets ``BREAKING_NN_SERVED=1`` for its kernels;
README "Serving the app to a class"): a photo URL is fetched only from public
addresses (:mod:`breaking_nn.url_guard`; ``APP_ALLOW_PRIVATE_URLS=1`` lifts it),
photos above ``APP_MAX_MEGAPIXELS`` are refused, runs wait in the server's
queue (:mod:`breaking_nn.attack_queue`: "queued: k ahead of you"; Stop leaves
it), and a run keeps its kernel active so the idle culler never ends it.

>>> import breaking_nn as bnn
>>> bnn.app()                     # doctest: +SKIP
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
import shutil
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import ipywidgets as widgets
import numpy as np
from PIL import Image

from . import paths
from .attack_queue import AttackQueue, LeftTheQueue, usable_cpus
from .errors import AttackError, BreakingNNError, LabelError, WeightsError
from .images import Photo, read_photo
from .labels import Labels
from .generated import WARNING as GENERATED_WARNING
from .model import GENERATED, Classifier, load_googlenet, load_model
from .model_file import read_model_file
from .photo_attack import PhotoAttackResult, attack_photo, check_photo_size, check_settings
from .report import perturbation_picture, save_report

PathLike = Union[str, Path]
GOOGLENET = "GoogLeNet (BVLC, ImageNet)"
UNTARGETED = "untargeted"
TRAINED, GENERATED_CHOICE = "trained", "generated (no download; meaningless)"
#: Largest upload through the servers `make notebook` and `make app` start (their
#: websocket message limit); Jupyter's own default is 10 MiB.
UPLOAD_LIMIT_MIB = 200
THUMBNAIL = 320  # pixels: the longest side of the pictures shown
#: while a run is in progress, the kernel sends a message this often (seconds; start-app.sh sets
#: APP_KEEP_ALIVE_S to a third of the idle time-out), so that jupyter_server's idle culler, which
#: sees only messages, never ends a running attack
KEEP_ALIVE_S = 20.0


@dataclass(frozen=True)
class Serving:
    """How a served app is bounded (docker/start-app.sh's settings; all off in a notebook).

    ``public_urls_only``: the URL guard; ``max_megapixels``: None for no cap; ``queue``: the
    server's attack queue (None: no queue)."""

    public_urls_only: bool = False
    max_megapixels: Optional[float] = None
    queue: Optional[AttackQueue] = None

    @classmethod
    def from_environment(cls, environ=os.environ) -> "Serving":
        """The served app's bounds when ``BREAKING_NN_SERVED=1`` (start-app.sh), else none."""
        if environ.get("BREAKING_NN_SERVED") != "1":
            return cls()
        folder = environ.get("APP_QUEUE_DIR")
        slots = int(environ.get("APP_MAX_ATTACKS") or usable_cpus())
        return cls(public_urls_only=environ.get("APP_ALLOW_PRIVATE_URLS") != "1",
                   max_megapixels=float(environ.get("APP_MAX_MEGAPIXELS") or 12),
                   queue=AttackQueue(folder, slots=slots) if folder else None)


def _examples() -> dict[str, Callable[[], np.ndarray]]:
    """The bundled photos: name -> (H, W, 3) uint8 RGB (scikit-image's CC0 data, offline)."""
    from skimage import data

    return {"Chelsea the cat (scikit-image)": data.chelsea, "a cup of coffee (scikit-image)": data.coffee}


def _model_files(extra: Sequence[PathLike]) -> dict[str, Path]:
    """Menu name -> model.toml: GoogLeNet first, then every ``models/*/model.toml``, then ``extra``."""
    found = {GOOGLENET: paths.googlenet_model_file().resolve()}
    for path in sorted(paths.models_dir().glob("*/model.toml")):
        if path.parent.name != "bvlc_googlenet":
            found[path.parent.name] = path.resolve()
    for path in extra:
        path = Path(path).expanduser().resolve()
        if path not in found.values():  # named by its folder; by its path too where that name is taken
            where = f"~/{path.relative_to(Path.home())}" if path.is_relative_to(Path.home()) else str(path)
            found[path.parent.name if path.parent.name not in found else f"{path.parent.name} ({where})"] = path
    return found


def _png(picture: np.ndarray, *, longest: int = THUMBNAIL) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB (or float 0-1) picture, shrunk to ``longest`` pixels."""
    if picture.dtype != np.uint8:
        picture = np.rint(np.clip(picture, 0.0, 1.0) * 255).astype(np.uint8)
    img = Image.fromarray(picture, "RGB")
    img.thumbnail((longest, longest), Image.Resampling.LANCZOS if max(img.size) > longest else Image.Resampling.NEAREST)
    if max(img.size) < longest // 2:  # a small photo: enlarge it, pixel for pixel, to be seen
        factor = -(-(longest // 2) // max(img.size))
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _top5_html(rows: list[tuple[int, str, float]], title: str, marks: dict[int, str]) -> str:
    """A small table of (class, name, probability) rows; ``marks`` colours the target and original class."""
    body = "".join(
        f"<tr style='color:{marks.get(n, 'inherit')}'><td>{n}</td><td>{html.escape(name[:40])}</td>"
        f"<td style='text-align:right'>{p:.2%}</td></tr>" for n, name, p in rows)
    return f"<b>{title}</b><table class='bnn-top5'>{body}</table>"


def _download_link(data: bytes, name: str, text: str, css_class: str) -> str:
    """An ``<a download>`` carrying ``data`` (PNG bytes) itself: ipywidgets has no download widget."""
    encoded = base64.b64encode(data).decode("ascii")
    return (f"<a class='{css_class}' download='{html.escape(name)}' href='data:image/png;base64,{encoded}' "
            f"style='margin-right:1.5em'>&#x2B07; {html.escape(text)}</a>")


def _slug(text: str) -> str:
    """A file-name-safe short form: "king penguin, Aptenodytes" -> "king-penguin"."""
    return re.sub(r"[^a-z0-9]+", "-", text.split(",")[0].lower()).strip("-")[:40] or "photo"


@dataclass(frozen=True)
class Settings:
    """What one run uses, read from the widgets in the kernel's thread before the worker starts."""

    model_file: Path
    is_googlenet: bool
    weights: Optional[str]
    device: str
    photo: Union[Photo, str]  # a photo read already, or an http(s) URL read at Run
    photo_name: str
    target_text: str
    epsilon: int
    max_steps: int
    until: Optional[float]  # None: just fooled (the target on top)
    robust: bool


class AttackApp:
    """The widgets and the worker thread behind :func:`app`; :attr:`widget` is what is displayed."""

    def __init__(self, *, models: Sequence[PathLike] = (), model: Optional[PathLike] = None,
                 weights: str = TRAINED, serving: Optional[Serving] = None, keep_alive_s: Optional[float] = None):
        self.serving = Serving.from_environment() if serving is None else serving
        self._keep_alive_s = keep_alive_s or float(os.environ.get("APP_KEEP_ALIVE_S") or KEEP_ALIVE_S)
        self._model_files = _model_files(models)
        self._examples = _examples()
        self._models: dict[tuple, Classifier] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._photo: tuple[Union[Photo, str, None], str] = (None, "")
        self._labels: Optional[Labels] = None  # the chosen model's classes (None: its file has an error)
        self.result: Optional[PhotoAttackResult] = None
        self.downloads: dict[str, bytes] = {}
        self._build(model, weights)

    # -- layout ------------------------------------------------------------------------
    def _build(self, model: Optional[PathLike], weights: str) -> None:
        w = widgets
        wide = w.Layout(width="34em")
        label = {"description_width": "8.5em"}
        self.example = w.Dropdown(options=["(none)", *self._examples], value="(none)", description="Example",
                                  style=label, layout=wide)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.url = w.Text(placeholder="https://... (a JPEG or PNG)", description="or a URL", style=label, layout=wide,
                          continuous_update=False)
        self.photo_line = w.HTML("Photo: <i>none yet: choose an example, upload one or give a URL</i>")
        self.preview = w.Image(format="png", layout=w.Layout(max_width="240px", max_height="240px",
                                                                   object_fit="contain", display="none"))
        upload_note = w.HTML(f"<small>&nbsp;a photo: up to {UPLOAD_LIMIT_MIB} MiB through <code>make app</code> and "
                             "<code>make notebook</code> (a plain Jupyter server: 10 MiB).</small>")

        names = list(self._model_files)
        by_path = {str(path): name for name, path in self._model_files.items()}
        chosen = model if model in names else by_path.get(str(Path(model).expanduser().resolve())) if model else None
        self.model = w.Dropdown(options=names, value=chosen or names[0], description="Model",
                                style=label, layout=wide)
        self.weights = w.Dropdown(options=[TRAINED, GENERATED_CHOICE],
                                  value=GENERATED_CHOICE if weights == GENERATED else TRAINED,
                                  description="Weights", style=label, layout=wide)
        self.device = w.Dropdown(options=["cpu", "gpu"], value="cpu", description="Device", style=label)
        self.device.layout.display = None if self._has_cuda() else "none"
        self.target = w.Combobox(placeholder="a class, e.g. king penguin (or untargeted)", description="Target",
                                 ensure_option=False, style=label, layout=wide)
        self.epsilon = w.IntSlider(value=4, min=1, max=16, description="ε, grey levels", style=label,
                                   layout=wide, continuous_update=False)
        self.max_steps = w.BoundedIntText(value=50, min=1, max=10_000, description="Max steps", style=label)
        self.until = w.FloatSlider(value=0.9, min=0.05, max=0.99, step=0.01, description="Until p ≥",
                                   style=label, layout=wide, continuous_update=False)
        self.just_fooled = w.Checkbox(value=False, description="just fooled: the target on top, no threshold",
                                      indent=False, layout=w.Layout(margin="0 0 0 9em"))
        self.mode = w.ToggleButtons(options=["robust", "exact"], value="robust", description="Check",
                                    tooltips=["fooled under the suite of real-world pipelines",
                                              "fooled under the model's own pipeline only"], style=label)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=50, description="Steps", style=label, layout=wide)
        self.status = w.HTML("")
        self.weights_note = w.HTML("")
        self.error = w.HTML("")
        self.chart = w.Image(format="png", layout=w.Layout(display="none"))
        self.pictures = w.HBox([])
        self.tables = w.HBox([])
        self.summary = w.HTML("")
        self.download = w.HTML("")
        # a hidden counter the worker bumps every KEEP_ALIVE_S: a message the idle culler counts
        self.alive = w.IntText(value=0, layout=w.Layout(display="none"))

        self.example.observe(self._on_example, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.url.observe(self._on_url, names="value")
        self.model.observe(lambda _: self._load_labels(), names="value")
        self.weights.observe(lambda _: self._show_weights_note(), names="value")
        self.just_fooled.observe(lambda change: setattr(self.until, "disabled", change["new"]), names="value")
        self.max_steps.observe(lambda change: setattr(self.progress, "max", change["new"]), names="value")
        # What a run reads: locked while it runs, so what is shown is what ran.
        self._inputs = [self.example, self.upload, self.url, self.model, self.weights, self.device, self.target,
                        self.epsilon, self.max_steps, self.until, self.just_fooled, self.mode]
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self._load_labels()
        self._show_weights_note()

        section = lambda text: w.HTML(f"<h3 style='margin:0.6em 0 0.2em'>{text}</h3>")  # noqa: E731
        controls = w.VBox([
            section("1. Photo"), self.example, w.HBox([self.upload, upload_note]), self.url, self.photo_line,
            section("2. Model and goal"), self.model, self.weights, self.weights_note, self.device, self.target,
            section("3. Budget"), self.epsilon, self.max_steps, self.until, self.just_fooled, self.mode,
            w.HBox([self.run_button, self.stop_button]), self.progress, self.status,
        ], layout=w.Layout(width="36em"))
        live = w.VBox([self.preview, self.chart], layout=w.Layout(margin="3em 0 0 1em"))
        self.widget = w.VBox([
            w.HTML("<h2 style='margin:0'>Fool the network with your own photo</h2>"),
            w.HBox([controls, live]), self.error,
            self.pictures, self.tables, self.summary, self.download, self.alive,
        ], layout=w.Layout(max_width="75em"))
        self.widget.add_class("bnn-app")
        self.error.add_class("bnn-error")
        self.summary.add_class("bnn-summary")
        self.download.add_class("bnn-download")

    @staticmethod
    def _has_cuda() -> bool:
        """Whether this Caffe was built with CUDA (then a device menu is shown)."""
        try:
            from .caffe_runtime import build_info

            return build_info().get("device") == "cuda"
        except BreakingNNError:
            return False

    # -- inputs ------------------------------------------------------------------------
    def _on_example(self, change) -> None:
        if change["new"] in self._examples:
            photo = read_photo(self._examples[change["new"]]())
            self._set_photo(photo, change["new"], _png(photo.pixels), source="example")

    def _on_upload(self, change) -> None:
        if not change["new"]:
            return
        item = change["new"][0]
        name = Path(str(item["name"])).name or "upload"
        folder = Path(tempfile.mkdtemp(prefix="breaking-nn-upload-"))
        try:  # read here once, as a file (its orientation and colour profile kept): a bad file is reported now
            (folder / name).write_bytes(bytes(item["content"]))
            photo = read_photo(folder / name)
        except BreakingNNError as exc:  # named as the user named it, not by the temporary path
            still = f"the photo in use is still {self._photo[1]}" if self._photo[0] is not None else "no photo yet"
            self._show_error(BreakingNNError(f"{str(exc).replace(str(folder / name), name)} ({still})"))
            return
        except Exception as exc:  # noqa: BLE001 - one line in the app, never a traceback in the log only
            self._show_error(exc, unexpected=True)
            return
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._set_photo(photo, name, _png(photo.pixels), source="upload")

    def _on_url(self, change) -> None:
        if change["new"].strip():
            self._set_photo(change["new"].strip(), change["new"].strip(), None, source="url")

    def _set_photo(self, photo: Union[Photo, str], name: str, preview: Optional[bytes], *, source: str) -> None:
        """Use ``photo`` (from ``source``: "example", "upload" or "url"); the other two sources are
        cleared, so that what they show is never mistaken for the photo in use, and any can be chosen again."""
        self._photo = (photo, name)
        self.error.value = ""
        if source != "example":
            self.example.value = "(none)"
        if source != "upload" and self.upload.value:
            self.upload.value = ()
        if source != "url":
            self.url.value = ""
        size = f" ({photo.pixels.shape[1]}x{photo.pixels.shape[0]})" if isinstance(photo, Photo) else " (fetched at Run)"
        self.photo_line.value = f"Photo: <b>{html.escape(str(name))}</b>{size}"
        if preview is not None:
            self.preview.value = preview
            self.preview.layout.display = None
        else:
            self.preview.layout.display = "none"

    def _show_weights_note(self) -> None:
        """Generated weights: say, beside the choice, that every prediction is then meaningless."""
        generated = self.weights.value == GENERATED_CHOICE
        self.weights_note.value = f"<small style='color:#b26a00'>&#x26A0; {GENERATED_WARNING}</small>" if generated else ""

    def _load_labels(self) -> None:
        """The target box's completions: the chosen model's class names (no Caffe needed)."""
        self.error.value = ""
        try:
            labels: Labels = read_model_file(self._model_files[self.model.value]).labels
        except BreakingNNError as exc:
            self._labels, self.target.options = None, [UNTARGETED]
            self._show_error(exc)
            return
        self._labels = labels
        self.target.options = [UNTARGETED, *labels.names]
        text = self.target.value.strip()
        if text and text.lower() != UNTARGETED:  # a class of the model chosen before: not this one's
            try:
                labels.index(_target(text))
            except LabelError:
                self.target.value = ""

    # -- running -----------------------------------------------------------------------
    def settings(self) -> Settings:
        """The widgets' values for one run (raises a BreakingNNError naming what is missing)."""
        photo, name = self._photo
        if photo is None:
            raise BreakingNNError("no photo yet: choose an example, upload a photo or give a URL")
        text = self.target.value.strip()
        if not text:
            raise LabelError("no target: type a class name (e.g. king penguin), a class number, or untargeted")
        if text.lower() != UNTARGETED and self._labels is not None:
            self._labels.index(_target(text))  # a typo is named now, before any model is loaded
        model_file = self._model_files[self.model.value]
        robust = self.mode.value == "robust"
        until = None if self.just_fooled.value else float(self.until.value)
        check_settings(epsilon=int(self.epsilon.value), max_steps=int(self.max_steps.value), until=until,
                       robust=robust)
        return Settings(model_file=model_file, is_googlenet=self.model.value == GOOGLENET,
                        weights=GENERATED if self.weights.value == GENERATED_CHOICE else None,
                        device=self.device.value, photo=photo, photo_name=name, target_text=text,
                        epsilon=int(self.epsilon.value), max_steps=int(self.max_steps.value),
                        until=until, robust=robust)

    def run(self) -> None:
        """Start one attack in a worker thread (Run); ignored while one is running."""
        if self.running:
            return
        self._clear()
        try:
            settings = self.settings()
        except BreakingNNError as exc:
            self._show_error(exc)
            return
        self._stop.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False
        for control in self._inputs:
            control.disabled = True
        self._thread = threading.Thread(target=self._work, args=(settings,), name="breaking-nn-app", daemon=True)
        self._thread.start()
        threading.Thread(target=self._keep_alive, args=(self._thread,), name="breaking-nn-alive", daemon=True).start()

    def _keep_alive(self, worker: threading.Thread) -> None:
        """While ``worker`` runs (queued, loading, attacking, saving): a widget message every keep_alive_s."""
        while True:
            worker.join(self._keep_alive_s)
            if not worker.is_alive():
                return
            self.alive.value += 1

    def stop(self) -> None:
        """Ask the running attack to stop after its current step, or to leave the queue (Stop)."""
        self._stop.set()
        self.status.value = "Stopping after this step..."

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the running attack ends (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self, settings: Settings) -> None:
        """The worker thread: load (device set in this thread), attack, save, verify, show."""
        try:
            self.status.value = "Reading the photo..."
            photo = (settings.photo if isinstance(settings.photo, Photo)
                     else read_photo(settings.photo, public_only=self.serving.public_urls_only))
            check_photo_size(photo.pixels)
            self._check_megapixels(photo)
            with self._queue_place():
                self.status.value = "Loading the model..."
                model = self._model(settings)
                # settings() checked the target against this model file's classes already
                target = None if settings.target_text.lower() == UNTARGETED else _target(settings.target_text)
                self.progress.max, self.progress.value = settings.max_steps, 0
                trace = _Trace(self, model, target)
                self.status.value = "Attacking..."
                result = attack_photo(model, photo, target, epsilon=settings.epsilon, max_steps=settings.max_steps,
                                      until=settings.until, untargeted=target is None, robust=settings.robust,
                                      on_step=trace.step)
                trace.draw(force=True)
            self.status.value = "Saving and verifying the file..."
            self._show_result(result, settings)
        except LeftTheQueue:
            self.status.value = "Left the queue (stopped by you); nothing ran."
        except WeightsError as exc:  # the how-to for a terminal is long: the app's own way first, then details
            self._show_error(exc, short=f"no trained weights for {self.model.value}: they are not on this machine and "
                             "could not be downloaded. Choose Weights: generated to try the app (meaningless "
                             "predictions), or get them (details)")
        except BreakingNNError as exc:
            self._show_error(exc)
        except Exception as exc:  # noqa: BLE001 - the kernel must live: one line, the rest in the log
            traceback.print_exc()
            self._show_error(exc, unexpected=True)
        finally:
            for control in self._inputs:
                control.disabled = False
            self.until.disabled = self.just_fooled.value
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _check_megapixels(self, photo: Photo) -> None:
        """:class:`AttackError` for a photo above the served app's cap (APP_MAX_MEGAPIXELS)."""
        cap = self.serving.max_megapixels
        height, width = photo.pixels.shape[:2]
        if cap is not None and width * height > cap * 1e6:
            raise AttackError(f"the photo is {width}x{height} ({width * height / 1e6:.1f} MP): this app takes photos "
                              f"up to {cap:g} MP (APP_MAX_MEGAPIXELS). Shrink it (e.g. to 3000 pixels wide) and "
                              "upload it again")

    def _queue_place(self):
        """The server's attack queue: wait (shown as "queued: k ahead of you") for a slot; none in a notebook."""
        from contextlib import nullcontext

        if self.serving.queue is None:
            return nullcontext()
        slots = self.serving.queue.slots

        def waiting(ahead: int) -> None:
            self.status.value = (f"Queued: {ahead} ahead of you ({slots} attack{'s' if slots != 1 else ''} "
                                 "run at once on this server). Stop leaves the queue.")

        return self.serving.queue.place(on_wait=waiting, stop=self._stop)

    def _model(self, settings: Settings) -> Classifier:
        """The chosen model, loaded once per (file, weights, device) in this thread."""
        key = (settings.model_file, settings.weights, settings.device)
        if key not in self._models:
            if settings.is_googlenet:
                self._models[key] = load_googlenet(settings.weights, device=settings.device)
            else:
                self._models[key] = load_model(settings.model_file, settings.weights, device=settings.device)
        return self._models[key]

    # -- output ------------------------------------------------------------------------
    def _clear(self) -> None:
        self.error.value = self.summary.value = self.download.value = self.status.value = ""
        self.pictures.children, self.tables.children = (), ()
        self.chart.layout.display = "none"
        self.progress.value = 0
        self.result, self.downloads = None, {}

    def _show_error(self, exc: BaseException, *, unexpected: bool = False, short: Optional[str] = None) -> None:
        """One line, in red: the error's message (and its kind, when it is not one of ours); with
        ``short``, that line instead, and the whole message folded under it."""
        text = " ".join(str(exc).split())
        if unexpected:
            text = f"unexpected {type(exc).__name__}: {text} (a bug: please report it)"
        self.status.value = ""
        line = html.escape(short if short else text)
        details = (f"<details><summary>details</summary><small>{html.escape(text)}</small></details>"
                   if short else "")
        self.error.value = (f"<div class='bnn-error-line' style='color:#b00020;margin:0.3em 0'>"
                            f"&#x26A0; {line}</div>{details}")

    def _show_result(self, result: PhotoAttackResult, settings: Settings) -> None:
        """Save (verified by reloading) and show: pictures, top 5, metrics, suite, downloads."""
        labels = result.model.labels
        goal = "untargeted" if result.target is None else _slug(labels.name(result.target))
        stem = f"{_slug(Path(str(settings.photo_name)).stem)}-{goal}"
        with tempfile.TemporaryDirectory(prefix="breaking-nn-app-") as folder:
            check = result.save(Path(folder) / f"{stem}.png")
            save_report(result, Path(folder) / f"{stem}-report.png")
            self.downloads = {f"{stem}.png": (Path(folder) / f"{stem}.png").read_bytes(),
                              f"{stem}-report.png": (Path(folder) / f"{stem}-report.png").read_bytes()}
            message = check.message.replace(str(Path(folder) / f"{stem}.png"), f"{stem}.png")  # no temporary path
        self.result = result

        def captioned(picture: np.ndarray, caption: str) -> widgets.VBox:
            return widgets.VBox([widgets.Image(value=_png(picture), format="png",
                                               layout=widgets.Layout(height="200px", width="auto",
                                                                     object_fit="contain")),
                                 widgets.HTML(f"<center><small>{caption}</small></center>")])

        from .report import amplification

        self.pictures.children = [
            captioned(result.original, "original"),
            captioned(perturbation_picture(result), f"perturbation x{amplification(result)}"),
            captioned(result.adversarial, "adversarial (the file)"),
        ]
        marks = {result.original_class: "#2e7d32", **({result.target: "#c62828"} if result.target is not None else {})}
        self.tables.children = [
            widgets.HTML(_top5_html(top, title, marks), layout=widgets.Layout(margin="0 2em 0 0"))
            for title, top in result.top_tables()
        ]
        verdict = "FOOLED" if result.fooled and check.ok else "NOT FOOLED"
        lines = [f"{verdict}: {result.summary()}", f"mode: {result.mode_text()}"]
        if settings.weights == GENERATED:  # said beside the choice too; a result read alone must say it
            lines.insert(0, f"⚠ {GENERATED_WARNING}")
        if result.stopped:
            lines.append("stopped by you: the file holds the photo as it was at that step")
        lines.append(message)
        self.summary.value = "<br>".join(html.escape(line) for line in lines)
        names = list(self.downloads)
        self.download.value = (
            _download_link(self.downloads[names[0]], names[0], f"the {'verified ' if check.ok else ''}photo ({names[0]})",
                           "bnn-download-photo")
            + _download_link(self.downloads[names[1]], names[1], "the report (PNG)", "bnn-download-report"))
        self.status.value = f"Done after {result.steps_text()} (of at most {settings.max_steps})."


class _Trace:
    """The live view of a run: progress bar and the p(target) / p(original) chart, every step."""

    def __init__(self, app: AttackApp, model: Classifier, target: Optional[int]):
        self.app, self.model = app, model
        self.target = None if target is None else model.labels.index(target)
        self.original: Optional[int] = None
        self.history: list[np.ndarray] = []

    def step(self, n_updates: int, probs: np.ndarray) -> bool:
        """attack_photo's ``on_step``: record, redraw, and True (stop now) once Stop was clicked."""
        if self.original is None:
            self.original = int(np.argmax(probs))
        self.history.append(np.asarray(probs, np.float64))
        self.app.progress.value = min(n_updates, self.app.progress.max)
        if not self.app._stop.is_set():  # else "Stopping after this step..." stays
            self.app.status.value = f"Attacking... step {n_updates} of at most {self.app.progress.max}"
        self.draw()
        return self.app._stop.is_set()

    def draw(self, *, force: bool = False) -> None:
        """Redraw the chart (a small matplotlib Figure, no pyplot state, as a PNG)."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        if not self.history:
            return
        names = self.model.labels.name
        fig = Figure(figsize=(6, 2.4), dpi=80, layout="constrained")
        ax = fig.add_subplot()
        steps = np.arange(len(self.history))
        series = np.stack(self.history)
        if self.target is not None:
            ax.plot(steps, series[:, self.target], "-o", ms=3, color="#c62828",
                    label=f"p({names(self.target)[:30]})")
        ax.plot(steps, series[:, self.original], "-o", ms=3, color="#2e7d32",
                label=f"p({names(self.original)[:30]}), the original class")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(1, len(steps) - 1))
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="center right", fontsize=8)
        out = io.BytesIO()
        fig.savefig(out, format="png")
        self.app.chart.value = out.getvalue()
        self.app.chart.layout.display = None


def _target(text: str) -> Union[int, str]:
    """A class number ("145") or a name, as the CLI reads ``--target``."""
    return int(text) if text.lstrip("-").isdigit() else text


def app(*, models: Sequence[PathLike] = (), model: Optional[PathLike] = None, weights: str = TRAINED,
        public_urls_only: Optional[bool] = None) -> widgets.VBox:
    """The attack app as one widget: display it (the last line of a cell), or serve it with Voilà.

    ``models``: more model files (model.toml) for the model menu, beside
    GoogLeNet and ``models/*/model.toml``; ``model``: the menu entry (or
    model file) chosen at the start; ``weights``: "generated" to start on generated weights (no
    download; meaningless predictions); ``public_urls_only``: True turns the
    served app's URL guard on in a notebook too (None: on only where served,
    see :class:`Serving`). The :class:`AttackApp` behind the widget is its ``.app`` attribute.
    """
    serving = Serving.from_environment()
    if public_urls_only is not None:
        serving = Serving(public_urls_only=public_urls_only, max_megapixels=serving.max_megapixels,
                          queue=serving.queue)
    attack_app = AttackApp(models=models, model=model, weights=weights, serving=serving)
    attack_app.widget.app = attack_app
    return attack_app.widget
