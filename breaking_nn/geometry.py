"""Photo-side steps of a real-world pipeline: re-encodes, trims, crops, zooms, shifts, uploads, rotations.

Each step takes the photo as a deployment holds it, (H, W, 3) uint8, HWC,
RGB, 0-255, and gives the next photo, exactly as the library does it
(:meth:`forward`: Pillow, OpenCV), before the model's own resize, crop and
mean (:mod:`breaking_nn.preprocessing`). For gradients each step also has a
linear part with an exact transpose:

* windows (:class:`Trim` in pixels, :class:`Crop` in fractions of a side,
  :class:`AspectCrop` centred) and resizes (:class:`Scale`, :class:`Upload`)
  are separable: :meth:`matrices` gives ``(rows (h', H), cols (w', W))``,
  float32 CSR, the resize ones read off the libraries (see
  :func:`~breaking_nn.preprocessing.pillow_matrix`), so that
  ``out_c = rows @ photo_c @ cols.T`` per channel, 8-bit rounding aside;
* re-encodes (:class:`Encode`, and an upload's JPEG) are the identity for
  gradients (the straight-through estimate, BPDA);
* a :class:`Rotate` is not separable and a full-resolution rotation matrix
  would not fit in memory: its linear part is taken at the network's scale,
  after the downscale (:func:`network_rotation`, OpenCV's warp of the same
  rotation on the resized grid, read off ``cv2.warpAffine``). Verdicts always
  run the exact full-resolution :meth:`Rotate.forward`.

Ranges (the real-world family of issue 24): crops and zooms up to
:data:`MAX_CROP` of each side; trims and shifts up to :func:`max_shift`
pixels; rotations up to :data:`MAX_DEGREES`; uploads to a longest side of
1080 or 2048 px with JPEG 70-90. A step out of range is a :class:`ModelError`
when made; a photo too small for a step is one when applied (every window
keeps at least :data:`MIN_SIDE` pixels a side).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Union

import cv2
import numpy as np
from PIL import Image
from scipy import sparse

from .errors import ModelError
from .preprocessing import (Size, jpeg_roundtrip, opencv_matrices, opencv_resize, pillow_matrix, pillow_resize,
                            pillow_roundtrip, transposed)

#: Smallest side a window may leave (Pillow and scikit-image need it to interpolate).
MIN_SIDE = 3
#: Largest fraction of a side a :class:`Crop` cuts off.
MAX_CROP = 0.15
#: Largest rotation, in degrees either way.
MAX_DEGREES = 5.0
#: Longest sides an :class:`Upload` resizes to, and its JPEG qualities.
UPLOAD_SIDES = (1080, 2048)
UPLOAD_QUALITY = (70, 90)
#: An upload's resizers: Pillow's Lanczos or OpenCV's INTER_AREA (what photo sites use).
UPLOAD_RESIZERS = ("pillow lanczos", "opencv area")
ROTATE_LIBRARIES = ("pillow", "opencv")
ROTATE_INTERPOLATIONS = {"bilinear": (Image.Resampling.BILINEAR, cv2.INTER_LINEAR),
                         "bicubic": (Image.Resampling.BICUBIC, cv2.INTER_CUBIC)}
Matrices = tuple[sparse.csr_matrix, sparse.csr_matrix]


def _forward_form(pair: Matrices) -> Matrices:
    """(rows^T, cols) -> (rows (h', H), cols (w', W)): ``out_c = rows @ photo_c @ cols.T``."""
    return pair[0].T.tocsr(), pair[1]


def max_shift(size: Size) -> int:
    """Largest trim or shift, in pixels, for a photo of ``size`` (H, W): the larger of 16 px and 2 % of its longer side."""
    return max(16, int(0.02 * max(size)))


def _whole(value, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ModelError(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def _window_matrices(size: Size, top: int, left: int, h: int, w: int) -> Matrices:
    """Selection matrices of the window (top, left, h, w) of a ``size`` photo: rows (h, H), cols (w, W)."""
    def select(n_out: int, start: int, n_in: int) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(n_out, np.float32), (np.arange(n_out), start + np.arange(n_out))),
                                 shape=(n_out, n_in))
    return select(h, top, size[0]), select(w, left, size[1])


def _check_fraction(side: str, f) -> None:
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= MAX_CROP:
        raise ModelError(f"a crop's {side} must be a fraction of the side from 0 to {MAX_CROP}, not {f!r}")


class _Window:
    """A step that keeps a window of the photo: :meth:`window` says which; the forward is a slice."""

    def window(self, size: Size) -> tuple[int, int, int, int]:  # pragma: no cover - each window says
        raise NotImplementedError

    def _each_side(self, check) -> None:
        """``check(side, value)`` for each of top, left, bottom, right (a trim's or crop's)."""
        for side in ("top", "left", "bottom", "right"):
            check(side, getattr(self, side))

    def _checked(self, size: Size, top: int, left: int, h: int, w: int) -> tuple[int, int, int, int]:
        if h < MIN_SIDE or w < MIN_SIDE:
            raise ModelError(f"the photo is {size[1]}x{size[0]} pixels: too small for the step "
                             f"'{self.describe()}', which would leave {w}x{h} (at least {MIN_SIDE}x{MIN_SIDE}); "
                             "use a larger photo, or a pipeline without that step")
        return top, left, h, w

    def output_size(self, size: Size) -> Size:
        return self.window(size)[2:]

    def forward(self, photo: np.ndarray) -> np.ndarray:
        top, left, h, w = self.window(photo.shape[:2])
        return photo[top:top + h, left:left + w]

    def matrices(self, size: Size) -> Matrices:
        return _window_matrices(size, *self.window(size))

    def is_noop(self, size: Size) -> bool:
        return self.window(size) == (0, 0, *size)


@dataclass(frozen=True)
class Trim(_Window):
    """Cut whole pixels off each side: (top, left, bottom, right), each at most :func:`max_shift` of the photo.

    Today's 0-4 px trim, and the shifts: 12 px off the top and the left moves
    the photo against the resize grid as a re-framed upload does.
    """

    top: int = 0
    left: int = 0
    bottom: int = 0
    right: int = 0

    def __post_init__(self):
        self._each_side(lambda side, n: _whole(n, f"a trim's {side}", 0, 10 ** 6))

    def window(self, size: Size) -> tuple[int, int, int, int]:
        limit = max_shift(size)
        if max(self.top, self.left, self.bottom, self.right) > limit:
            raise ModelError(f"'{self.describe()}' is out of range for a {size[1]}x{size[0]} photo: a trim or shift "
                             f"cuts at most {limit} px a side (the larger of 16 px and 2 % of the longer side)")
        return self._checked(size, self.top, self.left, size[0] - self.top - self.bottom,
                             size[1] - self.left - self.right)

    def describe(self) -> str:
        return f"trim {self.top}/{self.left}/{self.bottom}/{self.right} px"


@dataclass(frozen=True)
class Crop(_Window):
    """Cut a fraction of each side off (top, left, bottom, right), each 0 to :data:`MAX_CROP`: crops and zooms.

    A 10 % zoom is ``Crop(0.05, 0.05, 0.05, 0.05)``. Pixels: ``round(f * side)``.
    """

    top: float = 0.0
    left: float = 0.0
    bottom: float = 0.0
    right: float = 0.0

    def __post_init__(self):
        self._each_side(_check_fraction)

    def window(self, size: Size) -> tuple[int, int, int, int]:
        (H, W) = size
        top, bottom, left, right = (round(self.top * H), round(self.bottom * H), round(self.left * W),
                                    round(self.right * W))
        return self._checked(size, top, left, H - top - bottom, W - left - right)

    def describe(self) -> str:
        sides = (self.top, self.left, self.bottom, self.right)
        if len(set(sides)) == 1:
            return f"zoom {200 * self.top:g} % (centre)"
        return "crop " + "/".join(f"{100 * s:g}" for s in sides) + " %"


@dataclass(frozen=True)
class AspectCrop(_Window):
    """The largest centred window of aspect ``width:height`` (1:1, 4:5, 16:9, ...): square thumbnails, portrait crops."""

    width: int = 1
    height: int = 1

    def __post_init__(self):
        _whole(self.width, "an aspect crop's width", 1, 64)
        _whole(self.height, "an aspect crop's height", 1, 64)
        if not 0.25 <= self.width / self.height <= 4:
            raise ModelError(f"an aspect crop's ratio must be from 1:4 to 4:1, not {self.width}:{self.height}")

    def window(self, size: Size) -> tuple[int, int, int, int]:
        H, W = size
        if W * self.height > H * self.width:  # too wide: keep the height
            h, w = H, round(H * self.width / self.height)
        else:
            h, w = round(W * self.height / self.width), W
        return self._checked(size, (H - h) // 2, (W - w) // 2, h, w)

    def describe(self) -> str:
        return f"centre {self.width}:{self.height}"


class _Resize:
    """A step that resizes the photo: :meth:`adjoint_matrices` says how; a no-op where it keeps the size."""

    def matrices(self, size: Size) -> Optional[Matrices]:
        """(rows (h', H), cols (w', W)): ``out_c = rows @ photo_c @ cols.T``; None when not resized."""
        pair = self.adjoint_matrices(size)
        return None if pair is None else _forward_form(pair)

    def is_noop(self, size: Size) -> bool:
        return self.output_size(size) == tuple(size)


@dataclass(frozen=True)
class Scale(_Resize):
    """A smaller copy: Pillow bilinear (8-bit) to ``round(side * factor)``, 0 < factor <= 1 (today's ``photo_scale``)."""

    factor: float

    def __post_init__(self):
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) or not 0 < self.factor <= 1:
            raise ModelError(f"a downscale factor must be in (0, 1], not {self.factor!r}")

    def output_size(self, size: Size) -> Size:
        return max(1, round(size[0] * self.factor)), max(1, round(size[1] * self.factor))

    def forward(self, photo: np.ndarray) -> np.ndarray:
        return pillow_resize(np.ascontiguousarray(photo), self.output_size(photo.shape[:2]), "bilinear")

    def adjoint_matrices(self, size: Size) -> Matrices:
        """(rows^T (H, h'), cols (w', W)): what the adjoint multiplies by (cached)."""
        h, w = self.output_size(size)
        return transposed("pillow", size[0], h, "bilinear"), pillow_matrix(size[1], w, "bilinear")

    def describe(self) -> str:
        return f"downscale x{self.factor:.2f}"


@dataclass(frozen=True)
class Encode:
    """Re-save the whole photo as JPEG (4:2:0, Pillow's default) or lossy WebP at ``quality`` (1-95)."""

    quality: int
    format: str = "JPEG"

    def __post_init__(self):
        _whole(self.quality, f"a {self.format} quality", 1, 95)
        if self.format not in ("JPEG", "WEBP"):
            raise ModelError(f'a re-save is "JPEG" or "WEBP", not {self.format!r}')

    def output_size(self, size: Size) -> Size:
        return tuple(size)

    def forward(self, photo: np.ndarray) -> np.ndarray:
        return encode_roundtrip(photo, self.format, self.quality)

    def matrices(self, size: Size) -> None:
        return None  # the identity for gradients (BPDA)

    def is_noop(self, size: Size) -> bool:
        return False

    def describe(self) -> str:
        return f"file as {'JPEG' if self.format == 'JPEG' else 'WebP'} {self.quality}"


@dataclass(frozen=True)
class Upload(_Resize):
    """A photo site's upload: longest side to ``longest`` px (aspect kept) with ``resizer``, then JPEG ``quality``.

    ``resizer``: "pillow lanczos" (``Image.resize`` LANCZOS) or "opencv area"
    (``cv2.resize`` INTER_AREA). A photo whose longest side is at most
    ``longest`` is not resized (:meth:`is_noop`: only re-encoded).
    """

    longest: int = 1080
    resizer: str = "pillow lanczos"
    quality: int = 85

    def __post_init__(self):
        if self.longest not in UPLOAD_SIDES:
            raise ModelError(f"an upload's longest side is one of {UPLOAD_SIDES}, not {self.longest!r}")
        if self.resizer not in UPLOAD_RESIZERS:
            raise ModelError(f"an upload's resizer is one of {', '.join(map(repr, UPLOAD_RESIZERS))}, "
                             f"not {self.resizer!r}")
        _whole(self.quality, "an upload's JPEG quality", *UPLOAD_QUALITY)

    def output_size(self, size: Size) -> Size:
        H, W = size
        if max(H, W) <= self.longest:
            return tuple(size)
        s = self.longest / max(H, W)
        return (self.longest, max(1, round(W * s))) if H >= W else (max(1, round(H * s)), self.longest)

    def forward(self, photo: np.ndarray) -> np.ndarray:
        size = self.output_size(photo.shape[:2])
        photo = np.ascontiguousarray(photo)
        if self.resizer == "pillow lanczos":
            resized = pillow_resize(photo, size, "lanczos")
        else:
            resized = opencv_resize(photo, size, None, "area") if size != photo.shape[:2] else photo
        return encode_roundtrip(resized, "JPEG", self.quality)

    def adjoint_matrices(self, size: Size) -> Optional[Matrices]:
        """(rows^T (H, h'), cols (w', W)) of the resize (cached); None when the photo is not resized."""
        out = self.output_size(size)
        if out == tuple(size):
            return None
        if self.resizer == "pillow lanczos":
            return transposed("pillow", size[0], out[0], "lanczos"), pillow_matrix(size[1], out[1], "lanczos")
        return opencv_matrices(size[0], size[1], out, None, "area")

    def describe(self) -> str:
        return f"upload {self.longest} {self.resizer}, JPEG {self.quality}"


@dataclass(frozen=True)
class Rotate:
    """Rotate the photo by ``degrees`` (counter-clockwise; up to :data:`MAX_DEGREES` either way) about its centre.

    Same size, the corners filled black, as the libraries do by default:
    ``library="pillow"``: ``Image.rotate(degrees, resample)``;
    ``library="opencv"``: ``cv2.warpAffine(photo, cv2.getRotationMatrix2D((W / 2, H / 2), degrees, 1), (W, H),
    flags=...)``. ``interpolation``: "bilinear" or "bicubic".
    """

    degrees: float
    library: str = "pillow"
    interpolation: str = "bilinear"

    def __post_init__(self):
        d = self.degrees
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or abs(d) > MAX_DEGREES:
            raise ModelError(f"a rotation must be at most {MAX_DEGREES:g} degrees either way, not {d!r}")
        if self.library not in ROTATE_LIBRARIES:
            raise ModelError(f"a rotation's library is one of {', '.join(map(repr, ROTATE_LIBRARIES))}, "
                             f"not {self.library!r}")
        if self.interpolation not in ROTATE_INTERPOLATIONS:
            raise ModelError(f"a rotation's interpolation is one of "
                             f"{', '.join(map(repr, ROTATE_INTERPOLATIONS))}, not {self.interpolation!r}")

    def output_size(self, size: Size) -> Size:
        return tuple(size)

    def forward(self, photo: np.ndarray) -> np.ndarray:
        pil, cv = ROTATE_INTERPOLATIONS[self.interpolation]
        photo = np.ascontiguousarray(photo)
        if self.library == "pillow":
            return np.asarray(Image.fromarray(photo, "RGB").rotate(self.degrees, resample=pil))
        H, W = photo.shape[:2]
        matrix = cv2.getRotationMatrix2D((W / 2, H / 2), self.degrees, 1.0)
        return cv2.warpAffine(photo, matrix, (W, H), flags=cv)

    def matrices(self, size: Size) -> None:
        return None  # not separable: see network_rotation

    def is_noop(self, size: Size) -> bool:
        return self.degrees == 0

    def inverse_map(self, size: Size) -> np.ndarray:
        """(3, 3) affine: output pixel centre (x, y, 1) -> where it is read in the input, both in pixel-centre units."""
        H, W = size
        if self.library == "opencv":
            forward = np.vstack([cv2.getRotationMatrix2D((W / 2, H / 2), self.degrees, 1.0), [0, 0, 1]])
            return np.linalg.inv(forward)
        a = -math.radians(self.degrees)  # Pillow's own matrix, in pixel-edge units (Image.rotate)
        c, s = round(math.cos(a), 15), round(math.sin(a), 15)
        edge = np.array([[c, s, 0.0], [-s, c, 0.0], [0, 0, 1]])
        edge[:2, 2] = edge[:2, :2] @ [-W / 2, -H / 2] + [W / 2, H / 2]
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        return np.linalg.inv(half) @ edge @ half

    def describe(self) -> str:
        return f"rotate {self.degrees:+g} deg {self.library} {self.interpolation}"


Step = Union[Trim, Crop, AspectCrop, Scale, Encode, Upload, Rotate]


def encode_roundtrip(photo: np.ndarray, format: str, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB saved as ``format`` ("JPEG" 4:2:0, or lossy "WEBP") at ``quality`` and decoded again."""
    photo = np.ascontiguousarray(photo)
    return jpeg_roundtrip(photo, quality) if format == "JPEG" else pillow_roundtrip(photo, format, quality=quality)


def network_rotation(step: Rotate, stage_size: Size, grid_size: Size) -> sparse.csr_matrix:
    """``step``'s rotation of a ``stage_size`` photo, taken on the ``grid_size`` (h, w) grid it is resized to.

    The linear part of "rotate, then resize" as "resize, then this": the
    rotation conjugated by the resize's scaling, warped by ``cv2.warpAffine``
    on the small grid (bilinear or bicubic as the step, corners 0). Returns
    the (h*w, h*w) float32 CSR matrix of that warp, read off OpenCV itself,
    so ``(M @ image_c.ravel()).reshape(h, w)`` equals ``cv2.warpAffine`` of
    one (h, w) float32 channel and ``M.T`` is its exact transpose.
    """
    return _network_rotation(step, tuple(stage_size), tuple(grid_size))


@lru_cache(maxsize=32)
def _network_rotation(step: Rotate, stage_size: Size, grid_size: Size) -> sparse.csr_matrix:
    (hs, ws), (h, w) = stage_size, grid_size
    sy, sx = h / hs, w / ws
    to_grid = np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]])  # pixel centres, stage -> grid
    inverse = to_grid @ step.inverse_map(stage_size) @ np.linalg.inv(to_grid)
    flags = ROTATE_INTERPOLATIONS[step.interpolation][1] | cv2.WARP_INVERSE_MAP

    def warp(image: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(np.asarray(image, np.float32), inverse[:2], (w, h), flags=flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    ys, xs = np.mgrid[0:h, 0:w]
    src = inverse[:2] @ np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)])  # where each output reads
    near_y, near_x = np.rint(src[1]).astype(np.int32), np.rint(src[0]).astype(np.int32)

    def probed(period: int) -> sparse.csr_matrix:
        """The matrix from period x period comb probes: one warp each, each output reading one probe of a phase.

        Output o reads pixels within ``period // 2`` of its source point
        rounded (bilinear's 2 taps a side, bicubic's 4, wherever OpenCV's
        1/32-pixel grid puts the point, fit in 3 and 5): that window holds
        each phase once, so o's response to the probe of phase (py, px) is
        its entry at the window's pixel of that phase (0 where that pixel is
        off the grid). Row o of the CSR matrix is those entries, phase by
        phase; the zeros are dropped.
        """
        k, half, n = period * period, period // 2, h * w
        responses = np.empty((k, n), np.float32)  # [py period + px, o]
        probe = np.zeros((h, w), np.float32)
        for phase in range(k):
            py, px = divmod(phase, period)
            probe[py::period, px::period] = 1.0
            cv2.warpAffine(probe, inverse[:2], (w, h), dst=responses[phase].reshape(h, w), flags=flags,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            probe[py::period, px::period] = 0.0
        phases = np.arange(period, dtype=np.int32)[None, :]
        at_y = np.clip(near_y[:, None] - half + (phases - near_y[:, None] + half) % period, 0, h - 1)  # (n, period)
        at_x = np.clip(near_x[:, None] - half + (phases - near_x[:, None] + half) % period, 0, w - 1)
        cols = np.multiply(at_y[:, :, None], w, dtype=np.int32) + at_x[:, None, :]  # (n, py, px)
        matrix = sparse.csr_matrix((np.ascontiguousarray(responses.T).reshape(-1), cols.reshape(-1),
                                    np.arange(0, n * k + 1, k, dtype=np.int32)), shape=(n, n))
        matrix.eliminate_zeros()  # off the grid and out of reach
        return matrix

    check = np.random.default_rng(0).random((h, w)).astype(np.float32)
    expected = warp(check).ravel()
    # Bilinear reads 1 pixel either side of the rounded source point at most, bicubic 2 (see probed);
    # a wider window if ever not.
    for period in ((3, 5) if step.interpolation == "bilinear" else (5, 7)):
        matrix = probed(period)
        if np.allclose(matrix @ check.ravel(), expected, atol=1e-4):
            return matrix
    raise RuntimeError(f"the network-scale matrix of {step.describe()} does not match cv2.warpAffine")
