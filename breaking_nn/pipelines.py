"""The real-world ways a photo can reach a network: a family of preprocessing pipelines.

A model file states one pipeline exactly (its ``[preprocess]`` table, a
:class:`~breaking_nn.preprocessing.Preprocessing`). In the real world the same
photo also reaches the network through other resizers, a re-saved file, a
crop, a shift, a small rotation, an upload, or another engine. A
:class:`Pipeline` is one such path, a small value object:

    photo (H, W, 3) uint8 RGB 0-255
      -> photo steps, in order (:mod:`breaking_nn.geometry`: re-saves, trims
         and shifts, crops and zooms, aspect crops, a smaller copy, a
         rotation, an upload)
      -> the network side: the model's resize (or another resizer, or the
         squash straight to the input size), JPEG, crop, mean, ...
      -> data (3, h, w) float32, as the network eats it
      -> the engine: Caffe, or OpenCV's dnn (:mod:`breaking_nn.opencv_engine`)

:meth:`Pipeline.forward` runs it exactly (each library's 8-bit rounding and
JPEG included); :meth:`Pipeline.adjoint` is the transpose of its linear part,
the rounding and the re-encodes passed straight through (BPDA), a rotation's
transpose taken at the network's scale (see :mod:`breaking_nn.geometry`).
Gradients always come from Caffe; the verdict of an engine member from its engine.
For speed on large photos, :meth:`Pipeline.linear_matrices` writes the whole
linear part as one banded pair of matrices (and a rotation on the resize
grid): :func:`summed_adjoint_bands` sums many pipelines' transposes, and
:func:`linear_data` makes their (approximate, non-verdict) data, each in one
full-resolution pass (both as BLAS products: :mod:`breaking_nn.banded`).

Two uses, both data here:

* :func:`verification_suite`: the fixed, named members a saved photo is
  checked against (the model's own first), grouped as resampling,
  compression, geometry and engine;
* :func:`random_pipeline`: one draw from the family, for expectation over
  transformation (:mod:`breaking_nn.eot`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Iterator, Optional

import numpy as np
from scipy import sparse

from .banded import BAND, BandTiles
from .workspace import scratch
from .errors import ModelError
from .geometry import (MAX_CROP, MAX_DEGREES, MIN_SIDE, ROTATE_INTERPOLATIONS, ROTATE_LIBRARIES, UPLOAD_QUALITY,
                       UPLOAD_RESIZERS, UPLOAD_SIDES, AspectCrop, Crop, Encode, Rotate, Scale, Step, Trim, Upload,
                       max_shift, network_rotation)
from .preprocessing import Preprocessing, Size, add_product

#: Resizers of the family, by name: the Preprocessing settings each one sets.
RESIZER_FAMILY = {
    "skimage bilinear": dict(resizer="skimage"),
    "skimage anti-aliased": dict(resizer="skimage", antialias=True),
    "pillow bilinear": dict(resizer="pillow", resample="bilinear"),
    "pillow bicubic": dict(resizer="pillow", resample="bicubic"),
    "pillow lanczos": dict(resizer="pillow", resample="lanczos"),
    "pillow box": dict(resizer="pillow", resample="box"),
    "opencv linear": dict(resizer="opencv", interpolation="linear"),
    "opencv area": dict(resizer="opencv", interpolation="area"),
    "opencv cubic": dict(resizer="opencv", interpolation="cubic"),
}
#: The groups of the suite's table, in its order.
GROUPS = ("resampling", "compression", "geometry", "engine")
#: Largest number of pixels :func:`random_pipeline`'s small trim cuts off any side.
MAX_TRIM = 4
#: The range of :func:`random_pipeline`'s photo downscale (drawn half the time).
SCALE_RANGE = (0.5, 1.0)
#: The range of :func:`random_pipeline`'s JPEG quality after the resize (drawn two times in three).
JPEG_RANGE = (50, 95)
#: Aspect crops (width, height) of the family and the suite.
ASPECTS = ((1, 1), (4, 5), (16, 9))
#: :func:`random_pipeline`'s window, how often each: the small trim, a crop or zoom, an aspect crop (the rest: a shift).
WINDOW_SHARES = (0.35, 0.25, 0.25)


@dataclass(frozen=True)
class Pipeline:
    """One way an (H, W, 3) uint8 RGB photo becomes (3, h, w) network data, and the engine that judges it.

    Arguments:
        name: how tables and messages call it ("model", "pillow bicubic", ...).
        preprocessing: the network-side steps (resize, JPEG, crop, mean, ...).
        steps: the photo steps before them, in order (:data:`~breaking_nn.geometry.Step`:
            ``Encode``, ``Trim``, ``Crop``, ``AspectCrop``, ``Scale``, ``Rotate``,
            ``Upload``); at most one ``Rotate``, followed only by ``Scale``,
            ``Encode`` or ``Upload`` (its transpose is taken on the network's grid).
        engine: "caffe" or "opencv" (``cv2.dnn``), the engine the verdict runs on.
        group: the suite table's group (:data:`GROUPS`).

    >>> p = Pipeline("half size", Preprocessing(input_size=(224, 224)), steps=(Scale(0.5),))
    >>> p.forward(np.zeros((300, 400, 3), np.uint8)).shape
    (3, 224, 224)
    """

    name: str
    preprocessing: Preprocessing
    steps: tuple = ()
    engine: str = "caffe"
    group: str = field(default="resampling", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "steps", tuple(self.steps))
        if self.engine not in ("caffe", "opencv"):
            raise ModelError(f'a pipeline\'s engine is "caffe" or "opencv", not {self.engine!r}')
        rotations = [i for i, s in enumerate(self.steps) if isinstance(s, Rotate)]
        if len(rotations) > 1 or rotations and not all(isinstance(s, (Scale, Encode, Upload))
                                                       for s in self.steps[rotations[0] + 1:]):
            raise ModelError(f"{self.name}: a pipeline rotates at most once, and only re-saves, downscales or "
                             "uploads follow the rotation")

    def stage_sizes(self, size: Size) -> list[Size]:
        """[(H, W), ...]: the photo's size before each step and after the last (when the model's own steps start).

        :class:`ModelError` if a step does not fit the photo (a crop that would
        leave fewer than :data:`~breaking_nn.geometry.MIN_SIDE` pixels a side, a shift out of range).
        """
        sizes = [tuple(size)]
        for step in self.steps:
            sizes.append(tuple(step.output_size(sizes[-1])))
        return sizes

    def photo_side(self, photo: np.ndarray, *, stages: Optional[dict] = None) -> np.ndarray:
        """The photo after :attr:`steps`: (H', W', 3) uint8 RGB, exactly as the libraries make it.

        ``stages``: a dict shared by pipelines run on the same photo: a prefix
        of steps that is a key (its value None until made) is made once and
        kept there (a suite's members share their full-resolution stages).
        """
        x = photo
        for k, step in enumerate(self.steps):
            key = self.steps[:k + 1]
            if stages is not None and stages.get(key) is not None:
                x = stages[key]
                continue
            x = step.forward(x)
            if stages is not None and key in stages:
                stages[key] = x
        return x

    def forward(self, photo: np.ndarray, *, fast: bool = False, stages: Optional[dict] = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB 0-255 photo -> (3, h, w) float32 data, exactly as this pipeline does it.

        ``fast``: scikit-image's resize as its matrices (see :meth:`Preprocessing.forward`).
        ``stages``: see :meth:`photo_side`; the network-side resize is shared too.
        """
        x = self.photo_side(photo, stages=stages)
        pre = self.preprocessing
        if stages is None:
            return pre.forward(x, fast=fast)
        key = (self.steps, pre.resize_key(), fast)
        if key not in stages:
            stages[key] = pre.resize_only(x, fast=fast)
        return pre.forward(x, resized=stages[key])

    def adjoint(self, grad: np.ndarray, photo_size: Size, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """d/d data (3, h, w) -> d/d photo (H, W, 3) float32, per 0-1 unit.

        The transpose of the linear part: the model's steps (exact), each
        resize of the photo steps (the libraries' float matrices), each
        window (zero padding); re-encodes and 8-bit rounding count as the
        identity; a rotation's transpose is applied on the model's resize grid
        (:func:`~breaking_nn.geometry.network_rotation`). ``out``: a (3, H, W)
        float32 array the result is added to (see :meth:`Preprocessing.adjoint`);
        the returned array is an (H, W, 3) view of it.
        """
        H, W = photo_size
        if out is None:
            out = np.zeros((3, H, W), np.float32)
        sizes = self.stage_sizes(photo_size)
        self._adjoint_into(0, np.asarray(grad, np.float32), sizes, out, self._grid_map(sizes))
        return out.transpose(1, 2, 0)

    def linear_matrices(self, photo_size: Size) -> tuple[sparse.csr_matrix, sparse.csr_matrix,
                                                          Optional[sparse.csr_matrix]]:
        """The linear part as one separable map and a rotation on the model's resize grid: (rows, cols, rotation).

        rows (h', H) and cols (w', W), float32 CSR: the model's resize, each
        resize and each window of the photo steps multiplied into one banded
        pair, so that ``rows @ photo_c @ cols.T`` is the photo on the resize
        grid (h', w'), re-encodes and rounding left out; ``rotation``: the
        (h' w', h' w') matrix of the rotation there
        (:func:`~breaking_nn.geometry.network_rotation`), or None. Cached
        (a step's data and its gradient use the same).
        """
        try:
            return _linear_matrices(self, tuple(photo_size))
        except TypeError:  # a Preprocessing made with lists: not hashable, not cached
            return _linear_matrices.__wrapped__(self, tuple(photo_size))

    def _linear_matrices(self, photo_size: Size):
        sizes = self.stage_sizes(photo_size)
        pre, (h, w) = self.preprocessing, sizes[-1]
        if pre.resizes(sizes[-1]):
            rows_t, cols = pre.resize_matrices(h, w)
            rows = rows_t.T
        else:
            rows, cols = sparse.identity(h, np.float32, format="csr"), sparse.identity(w, np.float32, format="csr")
        for step, size in reversed(list(zip(self.steps, sizes))):
            pair = step.matrices(size)  # (rows (h', H), cols (w', W)); None: the identity for gradients
            if pair is not None:
                rows, cols = rows @ pair[0], cols @ pair[1]
        rotation = self._grid_rotation(sizes)
        return sparse.csr_matrix(rows, dtype=np.float32), sparse.csr_matrix(cols, dtype=np.float32), rotation

    def adjoint_factors(self, grad: np.ndarray, photo_size: Size) -> tuple[np.ndarray, sparse.csr_matrix,
                                                                             sparse.csr_matrix]:
        """:meth:`adjoint` as one separable map: (canvas (3, h', w') float32 RGB, rows (h', H), cols (w', W)).

        ``rows.T @ canvas[c] @ cols`` is channel c of :meth:`adjoint` (within
        float32 rounding), rows and cols from :meth:`linear_matrices`; the
        crop, channel order, scale and the rotation's transpose are in the
        canvas. :func:`summed_adjoint` sums many pipelines' with one full-resolution pass.
        """
        rows, cols, rotation = self.linear_matrices(photo_size)
        size = self.stage_sizes(photo_size)[-1]
        canvas = self.preprocessing.adjoint_canvas(grad, size, grid_map=None if rotation is None
                                                   else _per_channel(rotation.T))
        return canvas, rows, cols

    def _adjoint_into(self, k: int, grad: np.ndarray, sizes: list[Size], out: np.ndarray, grid_map) -> None:
        """Add d/d (the photo before step ``k``) to ``out`` (3, *sizes[k])."""
        if k == len(self.steps):
            self.preprocessing.adjoint(grad, sizes[k], out=out, grid_map=grid_map)
            return
        step = self.steps[k]
        if hasattr(step, "window"):
            top, left, h, w = step.window(sizes[k])
            self._adjoint_into(k + 1, grad, sizes, out[:, top:top + h, left:left + w], grid_map)
            return
        pair = step.adjoint_matrices(sizes[k]) if hasattr(step, "adjoint_matrices") else None
        if pair is None:  # re-encodes, a rotation (on the network's grid), an upload that keeps the size
            self._adjoint_into(k + 1, grad, sizes, out, grid_map)
            return
        small = np.zeros((3, *sizes[k + 1]), np.float32)
        self._adjoint_into(k + 1, grad, sizes, small, grid_map)
        rows_t, cols = pair
        for c in range(3):
            add_product(out[c], rows_t, small[c] @ cols)

    def _grid_map(self, sizes: list[Size]):
        """The rotation's transpose on the model's resize grid, (3, H', W') -> (3, H', W'); None without one."""
        rotation = self._grid_rotation(sizes)
        return None if rotation is None else _per_channel(rotation.T)

    def _grid_rotation(self, sizes: list[Size]) -> Optional[sparse.csr_matrix]:
        """The rotation on the model's resize grid, (H' W', H' W') float32 CSR; None without one."""
        rotations = [k for k, s in enumerate(self.steps) if isinstance(s, Rotate) and not s.is_noop(sizes[k])]
        if not rotations:
            return None
        k = rotations[0]
        return network_rotation(self.steps[k], sizes[k], self.preprocessing.resized_size_for(sizes[-1]))

    def fits(self, size: Size) -> bool:
        """Whether every step fits a photo of ``size`` (H, W) (see :meth:`stage_sizes`)."""
        try:
            self.stage_sizes(size)
        except ModelError:
            return False
        return True

    def is_noop_on(self, size: Size) -> bool:
        """Whether some photo step changes nothing for a ``size`` (H, W) photo (a 1080 upload of a 640 px photo)."""
        sizes = self.stage_sizes(size)
        return any(step.is_noop(s) for step, s in zip(self.steps, sizes))

    def describe(self) -> str:
        """The steps in words, e.g. ``rotate +2 deg pillow bilinear, pillow bicubic 256x256, JPEG 75, crop 224x224``."""
        p = self.preprocessing
        parts = [step.describe() for step in self.steps]
        resizer = {"pillow": f"pillow {p.resample or 'bilinear'}", "opencv": f"opencv {p.interpolation or 'linear'}",
                   "skimage": f"skimage{' anti-aliased' if p.antialias else ''}"}[p.resizer]
        if p.blob_crop:
            parts.append(f"{resizer} to cover {p.input_size[0]}x{p.input_size[1]}, centre crop")
        else:
            parts.append(f"{resizer} {p.resized_size[0]}x{p.resized_size[1]}")
        if p.jpeg_roundtrip is not None:
            parts.append(f"JPEG {p.jpeg_roundtrip}")
        if p.crop is not None:
            parts.append(f"crop {p.crop[0]}x{p.crop[1]}")
        if self.engine == "opencv":
            parts.append("OpenCV dnn")
        return ", ".join(parts)


def _per_channel(matrix: sparse.csr_matrix):
    """``matrix`` applied to each channel of a (3, H', W') float32 array, as a function."""
    def apply(canvas: np.ndarray) -> np.ndarray:
        flat = canvas.reshape(3, -1)
        return np.stack([matrix @ flat[c] for c in range(3)]).reshape(canvas.shape).astype(np.float32)
    return apply


def linear_data(photo: np.ndarray, pipelines: list[Pipeline]) -> np.ndarray:
    """(k, 3, h, w) float32: the pipelines' data of ``photo`` (H, W, 3) uint8 RGB through their linear parts.

    What each pipeline's gradient is the transpose of (:meth:`Pipeline.linear_matrices`):
    the photo on each resize grid, the rows of all k stacked into one
    full-resolution pass over the HWC photo as (H, 3 W) rows
    (:class:`~breaking_nn.banded.BandTiles`), the rotation on that grid, then
    the library's rounding to 8 bits (Pillow, OpenCV) or scikit-image's
    min-max stretch and clip, and the exact steps after the resize (JPEG,
    crop, mean). Not the libraries' own full-resolution calls (their rounding,
    a re-save, an upload's JPEG): for gradient estimates of large photos, never
    verdicts. The full-resolution product is a :func:`~breaking_nn.banded.scratch` array.
    """
    size = photo.shape[:2]
    H, W = size
    maps = [p.linear_matrices(size) for p in pipelines]
    stacked = BandTiles(sparse.vstack([rows for rows, _, _ in maps], format="csr"))
    tall = stacked.times(np.ascontiguousarray(photo).reshape(H, 3 * W)).reshape(-1, W, 3)  # (sum of h', W, 3) 0-255
    lo, hi = float(photo.min()), float(photo.max())
    data, top = [], 0
    for pipeline, (rows, cols, rotation) in zip(pipelines, maps):
        h = rows.shape[0]
        along = _column_tiles(cols)
        x = along.rmatmul_transpose(tall[top:top + h].reshape(h, 3 * W)).reshape(h, cols.shape[0], 3)  # (h', w', 3)
        top += h
        if rotation is not None:
            x = _per_channel(rotation)(x.transpose(2, 0, 1)).transpose(1, 2, 0)
        pre = pipeline.preprocessing
        if pre.resizer == "skimage":  # caffe.io stretches to 0-1 by min and max: R x + lo (1 - R 1), clipped
            ones = np.asarray(rows.sum(axis=1)) @ np.asarray(cols.sum(axis=1)).T
            x = np.clip((x + lo * (1 - ones)[:, :, None]) / np.float32(255), lo / 255, hi / 255).astype(np.float32)
        else:
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        data.append(pre.after_resize(x, pipeline.stage_sizes(size)[-1]))
    return np.stack(data)


def _column_tiles(cols: sparse.csr_matrix) -> BandTiles:
    """The tiles of a pipeline's (w', W) column map on interleaved HWC rows, cached with the map itself
    (a step's data and its gradient use the same)."""
    tiles = getattr(cols, "_breaking_nn_tiles", None)
    if tiles is None:
        tiles = BandTiles(cols, band=BAND, channels=3)
        cols._breaking_nn_tiles = tiles
    return tiles


@lru_cache(maxsize=8)  # a step's pipelines
def _linear_matrices(pipeline: Pipeline, photo_size: Size):
    return pipeline._linear_matrices(photo_size)


def summed_adjoint(factors: list, photo_size: Size) -> np.ndarray:
    """(H, W, 3) float32, HWC RGB: the sum of several pipelines' :meth:`Pipeline.adjoint_factors` on one photo.

    :func:`summed_adjoint_bands` put together.
    """
    out = np.empty((*photo_size, 3), np.float32)
    for rows, band in summed_adjoint_bands(factors, photo_size):
        out[rows] = band
    return out


def summed_adjoint_bands(factors: list, photo_size: Size) -> Iterator[tuple[slice, np.ndarray]]:
    """The sum of several pipelines' :meth:`Pipeline.adjoint_factors`, a band of photo rows at a time.

    Yields (rows (a slice of the photo's H), (rows, W, 3) float32 HWC RGB
    band), every band in order. ``sum_p rows_p.T @ canvas_p[c] @ cols_p`` as
    ``[rows_1; ...; rows_k].T @ [canvas_1[c] @ cols_1; ...]``: the small
    products first, all three channels side by side as (sum of h', 3 W) rows,
    then one banded product (:class:`~breaking_nn.banded.BandTiles`) that
    makes each full-resolution row once for all k pipelines, a band of
    :data:`~breaking_nn.banded.BAND` rows at a time, so that whoever uses it
    (the sign step) needs no full-size gradient. The (sum of h', 3 W) middle
    product is a :func:`~breaking_nn.banded.scratch` array.
    """
    H, W = photo_size
    stacked = BandTiles(sparse.vstack([rows for _, rows, _ in factors], format="csr"))  # (sum of h', H)
    shape = (stacked.shape[0], 3 * W)
    middle = scratch(shape)
    top = 0
    for canvas, rows, cols in factors:
        h, w = canvas.shape[1:]
        along = _column_tiles(cols)  # canvas_p[c] @ cols_p for the three c at once
        along.rmatmul(np.ascontiguousarray(canvas.transpose(1, 2, 0)).reshape(h, 3 * w), out=middle[top:top + h])
        top += h
    for rows, band in stacked.transposed_bands(middle):
        yield rows, band.reshape(-1, W, 3)


def model_pipeline(preprocessing: Preprocessing) -> Pipeline:
    """The model file's own pipeline, exactly: the family member named "model"."""
    return Pipeline("model", preprocessing)


def with_resizer(preprocessing: Preprocessing, name: str, *, jpeg: Optional[int] = None,
                 squash: bool = False) -> Preprocessing:
    """``preprocessing`` with the resizer ``name`` of :data:`RESIZER_FAMILY` and JPEG step ``jpeg``.

    ``squash``: resize straight to the input size (no resize, no crop), as
    ``cv2.dnn.blobFromImage(crop=False)`` and many services do.
    """
    settings = dict(resizer="skimage", resample=None, antialias=False, interpolation=None, blob_crop=False)
    settings.update(RESIZER_FAMILY[name])
    return replace(squashed(preprocessing) if squash else preprocessing, **settings, jpeg_roundtrip=jpeg)


def squashed(preprocessing: Preprocessing) -> Preprocessing:
    """``preprocessing`` resizing straight to the input size (its resize and crop dropped)."""
    return replace(preprocessing, resize=None, crop=None, blob_crop=False)


def verification_suite(preprocessing: Preprocessing, *, photo_size: Optional[Size] = None,
                       engines: bool = False) -> list[Pipeline]:
    """The named real-world pipelines a saved photo is checked against; the model's own first.

    For a model whose ``[preprocess]`` is ``preprocessing``, by group:

    * **resampling**: "model" (the model file's pipeline, exactly); the nine
      resizers of :data:`RESIZER_FAMILY`; the file at half size and at 0.75
      (a screenshot);
    * **compression**: Pillow bilinear then JPEG 50, 75 or 90 after the resize
      (Yahoo's way); the file re-saved as JPEG 75, 90 and WebP 75; uploads to
      a longest side of 1080 (Pillow Lanczos, JPEG 85) and 2048 (OpenCV
      INTER_AREA, JPEG 80), where the photo is larger;
    * **geometry**: the squash straight to the input size; centre 1:1, 4:5 and
      16:9 crops; a 10 % zoom; 15 % off the top and the left; a shift (12 px
      off the top and the left); rotations of +2 deg (Pillow bilinear), -5 deg
      (OpenCV bicubic) and +5 deg (Pillow bicubic);
    * **engine** (``engines=True``: the model was loaded from files OpenCV can
      read): on ``cv2.dnn``, blobFromImage's two ways (the squash and the
      cover-and-crop), OpenCV linear to the model's resize and crop, and the
      squash of the file re-saved as JPEG 60.

    A member doing the very same steps as an earlier one is left out, and with
    ``photo_size`` (H, W) so is one with a step that changes nothing for that
    photo (a 1080 upload of a 640 px photo) or does not fit it; so every member is
    a different pipeline. At least 20 remain for every model of the repository.
    """
    pre = preprocessing
    crop = [] if pre.blob_crop else [Pipeline("squash", squashed(pre), group="geometry")]
    members = [model_pipeline(pre)]
    members += [Pipeline(name, with_resizer(pre, name)) for name in RESIZER_FAMILY]
    members += [Pipeline("file at half size", pre, (Scale(0.5),)), Pipeline("screenshot x0.75", pre, (Scale(0.75),))]
    bilinear = "pillow bilinear"
    members += [Pipeline(f"{bilinear} + JPEG {q}", with_resizer(pre, bilinear, jpeg=q), group="compression")
                for q in (50, 75, 90)]
    members += [Pipeline(f"file as JPEG {q}", pre, (Encode(q),), group="compression") for q in (75, 90)]
    members += [Pipeline("file as WebP 75", pre, (Encode(75, "WEBP"),), group="compression"),
                Pipeline("upload 1080", pre, (Upload(1080, "pillow lanczos", 85),), group="compression"),
                Pipeline("upload 2048", pre, (Upload(2048, "opencv area", 80),), group="compression")]
    members += crop
    members += [Pipeline(f"centre {w}:{h}", pre, (AspectCrop(w, h),), group="geometry") for w, h in ASPECTS]
    members += [Pipeline("zoom 10 %", pre, (Crop(0.05, 0.05, 0.05, 0.05),), group="geometry"),
                Pipeline("crop 15 % top-left", pre, (Crop(0.15, 0.15, 0, 0),), group="geometry"),
                Pipeline("shift 12 px", pre, (Trim(12, 12, 0, 0),), group="geometry"),
                Pipeline("rotate +2", pre, (Rotate(2, "pillow", "bilinear"),), group="geometry"),
                Pipeline("rotate -5", pre, (Rotate(-5, "opencv", "bicubic"),), group="geometry"),
                Pipeline("rotate +5", pre, (Rotate(5, "pillow", "bicubic"),), group="geometry")]
    if engines:
        blob = with_resizer(pre, "opencv linear", squash=True)
        members += [Pipeline("opencv dnn squash", blob, engine="opencv", group="engine"),
                    Pipeline("opencv dnn blob crop", replace(blob, blob_crop=True), engine="opencv", group="engine"),
                    Pipeline("opencv dnn linear", with_resizer(pre, "opencv linear"), engine="opencv",
                             group="engine"),
                    Pipeline("opencv dnn file as JPEG 60", blob, (Encode(60),), engine="opencv", group="engine")]
    suite: list[Pipeline] = []
    for member in members:
        if photo_size is not None and (not member.fits(photo_size) or member.is_noop_on(photo_size)):
            continue
        if not any(_same_steps(member, kept) for kept in suite):
            suite.append(member)
    return suite


def random_pipeline(preprocessing: Preprocessing, rng: np.random.Generator, *,
                    photo_size: Optional[Size] = None) -> Pipeline:
    """One random member of the family around the model's ``preprocessing``, for EOT.

    Drawn independently: a resizer of :data:`RESIZER_FAMILY` (uniform); the
    squash straight to the input size (a third of the draws, where the model
    crops); a JPEG step after the resize at a quality in :data:`JPEG_RANGE`
    (two times in three); then the photo steps, in this order:

    * a window, one of (as often as :data:`WINDOW_SHARES` says): 0 to
      :data:`MAX_TRIM` pixels off each side (35 %), a crop or zoom of up to
      :data:`~breaking_nn.geometry.MAX_CROP` of each side (25 %), a centre
      aspect crop of :data:`ASPECTS` (25 %), a shift of up to
      :func:`~breaking_nn.geometry.max_shift` pixels off two neighbouring sides (15 %);
    * half the time a downscale by a factor in :data:`SCALE_RANGE`;
    * a third of the time a rotation of up to :data:`~breaking_nn.geometry.MAX_DEGREES`
      either way (Pillow or OpenCV, bilinear or bicubic);
    * a fifth of the time an upload (longest side 1080 or 2048, Lanczos or
      INTER_AREA, JPEG 70-90).

    With ``photo_size`` (H, W), steps that do not fit the photo are left out.
    """
    name = list(RESIZER_FAMILY)[rng.integers(len(RESIZER_FAMILY))]
    squash = rng.random() < 1 / 3 and preprocessing.crop is not None and not preprocessing.blob_crop
    jpeg = int(rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1)) if rng.random() < 2 / 3 else None
    steps: list[Step] = []
    u = rng.random()
    if u < WINDOW_SHARES[0]:
        window = Trim(*(int(t) for t in rng.integers(0, MAX_TRIM + 1, size=4)))
    elif u < sum(WINDOW_SHARES[:2]):
        window = Crop(*(round(float(f), 3) for f in rng.uniform(0, MAX_CROP, size=4)))
    elif u < sum(WINDOW_SHARES[:3]):
        window = AspectCrop(*ASPECTS[rng.integers(len(ASPECTS))])
    else:
        limit = max_shift(photo_size) if photo_size is not None else 16
        shift = [int(t) for t in rng.integers(0, limit + 1, size=2)]
        window = Trim(shift[0], shift[1], 0, 0) if rng.random() < 0.5 else Trim(0, 0, shift[0], shift[1])
    steps.append(window)
    if rng.random() < 0.5:
        steps.append(Scale(float(rng.uniform(*SCALE_RANGE))))
    if rng.random() < 1 / 3:
        steps.append(Rotate(round(float(rng.uniform(-MAX_DEGREES, MAX_DEGREES)), 2),
                            ROTATE_LIBRARIES[rng.integers(len(ROTATE_LIBRARIES))],
                            list(ROTATE_INTERPOLATIONS)[rng.integers(len(ROTATE_INTERPOLATIONS))]))
    if rng.random() < 1 / 5:
        steps.append(Upload(UPLOAD_SIDES[rng.integers(len(UPLOAD_SIDES))],
                            UPLOAD_RESIZERS[rng.integers(len(UPLOAD_RESIZERS))],
                            int(rng.integers(UPLOAD_QUALITY[0], UPLOAD_QUALITY[1] + 1))))
    if photo_size is not None:
        steps = _fitting(steps, photo_size)
    label = (name + (" squash" if squash else "") + (f" + JPEG {jpeg}" if jpeg else "")
             + "".join(f", {step.describe()}" for step in steps if not _is_small_trim(step)))
    return Pipeline(label, with_resizer(preprocessing, name, jpeg=jpeg, squash=squash), tuple(steps))


def _fitting(steps: list, size: Size) -> list:
    """``steps`` without those that do not fit a ``size`` photo (checked in order)."""
    kept: list = []
    for step in steps:
        try:
            Pipeline("draw", _ANY_PREPROCESSING, tuple(kept + [step])).stage_sizes(size)
        except ModelError:
            continue
        kept.append(step)
    return kept


def _is_small_trim(step) -> bool:
    return isinstance(step, Trim) and max(step.top, step.left, step.bottom, step.right) <= MAX_TRIM


def _same_steps(a: Pipeline, b: Pipeline) -> bool:
    """Whether two pipelines do the very same steps (names and groups aside)."""
    pa, pb = a.preprocessing, b.preprocessing
    if pa.resizer == "pillow" and pb.resizer == "pillow" and (pa.resample or "bilinear") == (pb.resample or "bilinear"):
        pa = replace(pa, resample=pb.resample)
    if pa.resizer == "opencv" and pb.resizer == "opencv" and (pa.interpolation or "linear") == (pb.interpolation
                                                                                              or "linear"):
        pa = replace(pa, interpolation=pb.interpolation)
    return (pa, a.steps, a.engine) == (pb, b.steps, b.engine)


_ANY_PREPROCESSING = Preprocessing(input_size=(MIN_SIDE, MIN_SIDE))
