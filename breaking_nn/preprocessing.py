"""A classifier's input pipeline, image -> network data, and its exact adjoint.

Layouts and units:

* **image**: (H, W, 3) float, HWC, RGB, 0-1 (see :mod:`breaking_nn.images`);
* **data**: (3, h, w) float32, CHW, in the model's channel order (BGR for
  Caffe's ImageNet models), scaled by ``raw_scale`` (0-255 by default), mean
  subtracted: what the network eats.

The steps, in Caffe's order (``caffe.io.Transformer`` plus the classic
``caffe.Classifier`` crop): resize to ``resize``, optionally re-encode as JPEG
(``jpeg_roundtrip``), centre crop to ``crop``, HWC -> CHW, RGB ->
``channel_order``, times ``raw_scale``, minus ``mean_bgr``.

The resize is one of two libraries':

* ``resizer="skimage"``: bilinear, as ``caffe.io`` does it (float, with or
  without anti-aliasing; GoogLeNet's 2017 path, bit-identical to the blog);
* ``resizer="pillow"``: ``Image.resize`` on the 8-bit RGB photo with
  ``resample`` (bilinear, bicubic, lanczos, box, nearest), as deployed code
  such as Yahoo's ``classify_nsfw.py`` does; the result is 8-bit again.

The resizes are linear, up to Pillow's rounding to 8 bits; the JPEG round trip
(Pillow's encoder, ``JPEG_SUBSAMPLING`` chroma) is not differentiable. The
gradient with respect to the image is the transpose of the linear part applied
to the gradient with respect to the data (:meth:`Preprocessing.adjoint`); the
rounding and the JPEG step pass the gradient through unchanged (the
straight-through estimate, BPDA: Athalye, Carlini and Wagner, 2018). The
resize matrices are taken from the libraries themselves (they resize identity
matrices; Pillow in its linear float mode ``"F"``), so each transpose is exact.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from PIL import Image
from scipy import sparse
from skimage.transform import resize as sk_resize

from .errors import ModelError

Size = tuple[int, int]
CHANNEL_ORDERS = ("BGR", "RGB")
RESIZERS = ("skimage", "pillow")
#: Pillow's resampling filters by the names a model file uses.
RESAMPLES = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX,
             "nearest": Image.Resampling.NEAREST}
#: Chroma subsampling of every JPEG round trip: 4:2:0, what Pillow's encoder does when
#: given no ``subsampling`` (as in Yahoo's ``classify_nsfw.py``).
JPEG_SUBSAMPLING = "4:2:0"
_BLOCK = 512  # identity columns resized at a time when building a resize matrix


def check_settings(*, resize: Optional[Size], crop: Optional[Size], mean_bgr: Optional[tuple],
                   raw_scale: float, channel_order: str, resizer: str = "skimage",
                   resample: Optional[str] = None, antialias: bool = False,
                   jpeg_roundtrip: Optional[int] = None) -> None:
    """Raise :class:`ModelError` unless these preprocessing settings make sense on their own.

    The rules a model file's ``[preprocess]`` table and :class:`Preprocessing`
    share: a known channel order, three mean values, a positive scale, a crop
    that fits inside ``resize`` (None: not known yet, not checked), a known
    resizer, a Pillow ``resample`` filter only with ``resizer="pillow"``,
    ``antialias`` only with scikit-image (Pillow always filters when it
    shrinks), and a JPEG quality from 1 to 95.
    """
    if resizer not in RESIZERS:
        raise ModelError(f'resizer must be "skimage" or "pillow", not {resizer!r}')
    if resample is not None:
        if resizer != "pillow":
            raise ModelError(f'resample = {resample!r} is a Pillow filter: add resizer = "pillow", or leave '
                             "resample out (scikit-image's resize is bilinear)")
        if resample not in RESAMPLES:
            raise ModelError(f"resample must be one of {', '.join(map(repr, RESAMPLES))}, not {resample!r}")
    if antialias and resizer == "pillow":
        raise ModelError('antialias is a scikit-image option: Pillow always filters when it shrinks; '
                         'leave antialias out with resizer = "pillow"')
    if jpeg_roundtrip is not None and (isinstance(jpeg_roundtrip, bool) or not isinstance(jpeg_roundtrip, int)
                                       or not 1 <= jpeg_roundtrip <= 95):
        raise ModelError(f"jpeg_roundtrip must be a JPEG quality, a whole number from 1 to 95, not {jpeg_roundtrip!r}")
    if channel_order not in CHANNEL_ORDERS:
        raise ModelError(f'channel_order must be "BGR" or "RGB", not {channel_order!r}')
    if crop is not None and resize is not None and (crop[0] > resize[0] or crop[1] > resize[1]):
        raise ModelError(f"crop {list(crop)} is larger than resize {list(resize)}: "
                         "the centre crop must fit inside the resized image")
    if mean_bgr is not None and len(mean_bgr) != 3:
        raise ModelError(f"mean_bgr must be three numbers [blue, green, red], not {list(mean_bgr)}")
    if not np.isfinite(raw_scale) or raw_scale <= 0:
        raise ModelError(f"raw_scale must be a positive number, not {raw_scale!r}")


@dataclass(frozen=True)
class Preprocessing:
    """How (H, W, 3) RGB 0-1 images become a network's (3, h, w) data.

    Arguments (all in the model file's ``[preprocess]`` table):
        input_size: (h, w), the network's input height and width.
        resize: (H', W') the image is resized to first; None: ``input_size``.
        crop: (h, w) centre crop after the resize; None: no crop.
        mean_bgr: (b, g, r) subtracted after scaling, in data units (0-255
            with the default ``raw_scale``); None: nothing subtracted.
        raw_scale: 0-1 image values are multiplied by this (default 255).
        channel_order: "BGR" (Caffe's ImageNet models) or "RGB".
        resizer: "skimage" (``caffe.io``'s resize, float) or "pillow"
            (``Image.resize`` on the 8-bit photo, 8-bit result).
        resample: Pillow's filter: "bilinear" (default), "bicubic",
            "lanczos", "box" or "nearest"; only with ``resizer="pillow"``.
        antialias: scikit-image's Gaussian pre-filter before a down-sizing
            resize (False: the 2017 ``caffe.io`` behaviour GoogLeNet's numbers need).
        jpeg_roundtrip: re-encode the resized image as JPEG at this quality
            (1-95, :data:`JPEG_SUBSAMPLING` chroma) and decode it, as Yahoo's
            open_nsfw code does; None: no JPEG step.

    >>> p = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224),
    ...                   mean_bgr=(104.0, 117.0, 123.0))
    >>> p.forward(np.zeros((300, 400, 3), np.float32)).shape
    (3, 224, 224)
    """

    input_size: Size
    resize: Optional[Size] = None
    crop: Optional[Size] = None
    mean_bgr: Optional[tuple[float, float, float]] = None
    raw_scale: float = 255.0
    channel_order: str = "BGR"
    antialias: bool = False
    resizer: str = "skimage"
    resample: Optional[str] = None
    jpeg_roundtrip: Optional[int] = None

    def __post_init__(self) -> None:
        check_settings(resize=self.resized_size, crop=self.crop, mean_bgr=self.mean_bgr,
                       raw_scale=self.raw_scale, channel_order=self.channel_order, resizer=self.resizer,
                       resample=self.resample, antialias=self.antialias, jpeg_roundtrip=self.jpeg_roundtrip)
        if self.output_size != tuple(self.input_size):
            raise ModelError(f"preprocessing makes {list(self.output_size)} images but the network takes "
                             f"{list(self.input_size)}: set crop (or resize) to the network's input size")

    # -- sizes ---------------------------------------------------------------------
    @property
    def resized_size(self) -> Size:
        """(H', W'): the size after the resize step."""
        return tuple(self.resize) if self.resize is not None else tuple(self.input_size)

    @property
    def output_size(self) -> Size:
        """(h, w): the size of the data, after the crop."""
        return tuple(self.crop) if self.crop is not None else self.resized_size

    def crop_box(self) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the centre crop inside the resized image."""
        (rh, rw), (h, w) = self.resized_size, self.output_size
        top, left = (rh - h) // 2, (rw - w) // 2
        return top, left, h, w

    @property
    def _channels(self) -> list[int]:
        """Data channel i holds RGB channel ``_channels[i]``."""
        return [2, 1, 0] if self.channel_order == "BGR" else [0, 1, 2]

    @property
    def _mean(self) -> Optional[np.ndarray]:
        """The mean per data channel, (3, 1, 1), in the data's channel order."""
        if self.mean_bgr is None:
            return None
        bgr = np.asarray(self.mean_bgr, np.float32)
        return (bgr if self.channel_order == "BGR" else bgr[::-1]).reshape(3, 1, 1)

    # -- image -> data ---------------------------------------------------------------
    def forward(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB image -> (3, h, w) float32 data (see the module docstring).

        ``image`` is float 0-1 (from ``load_image``) or uint8 0-255 (a photo's
        own pixels); both give the same data. Each channel is resized on its
        own, so a large photo never has a full-size float copy of all three.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(
                f"preprocess takes an (H, W, 3) RGB image in 0-1 (HWC, from load_image), not shape {image.shape}"
            )
        x = self.resize_image(image)
        top, left, h, w = self.crop_box()
        x = x[top:top + h, left:left + w]
        data = x.transpose(2, 0, 1)[self._channels] * np.float32(self.raw_scale)
        if self._mean is not None:
            data -= self._mean
        return np.ascontiguousarray(data, dtype=np.float32)

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """The resize (and JPEG) steps: (H, W, 3) RGB, uint8 or float 0-1 -> (H', W', 3) float32 0-1."""
        if self.resizer == "pillow":
            resized = pillow_resize(as_uint8(image), self.resized_size, self.resample or "bilinear")
        elif image.shape[:2] != self.resized_size:
            resized = resize_image(image, self.resized_size, antialias=self.antialias)
        else:
            resized = as_float(image)
        if self.jpeg_roundtrip is not None:
            resized = jpeg_roundtrip(as_uint8(resized), self.jpeg_roundtrip)
        return as_float(resized)

    def adjoint(self, grad: np.ndarray, image_size: Size, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Transpose of :meth:`forward`'s linear part: d/d data (3, h, w) -> d/d image (H, W, 3) float32.

        ``grad`` is a gradient with respect to the data (per data unit);
        the result is the gradient with respect to an (H, W, 3) RGB 0-1 image of
        ``image_size`` (per 0-1 unit: divide by 255 for per grey level). Pillow's
        rounding and the JPEG step count as the identity (straight-through).
        ``out``: an (H, W, 3) float32 array the result is *added* to (and
        returned), so several gradients sum without a full-size copy each.
        """
        grad = np.asarray(grad, np.float32)
        if grad.shape != (3, *self.output_size):
            raise ModelError(f"adjoint takes a gradient of shape {(3, *self.output_size)}, not {grad.shape}")
        H, W = image_size
        if out is None:
            out = np.zeros((H, W, 3), np.float32)
        g = np.empty_like(grad)
        g[self._channels] = grad * np.float32(self.raw_scale)
        rh, rw = self.resized_size
        top, left, h, w = self.crop_box()
        canvas = np.zeros((3, rh, rw), np.float32)
        canvas[:, top:top + h, left:left + w] = g
        if (H, W) == (rh, rw) and self.resizer == "skimage":
            out += canvas.transpose(1, 2, 0)
            return out
        rows, cols = self.resize_matrices(H, W)  # (rh, H), (rw, W)
        for c in range(3):  # rows^T canvas_c cols, one channel at a time
            out[:, :, c] += rows.T @ (cols.T @ canvas[c].T).T
        return out

    def resize_matrices(self, height: int, width: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """The resize's 1-D matrices for an image of ``height`` x ``width``: (H', height), (W', width)."""
        rh, rw = self.resized_size
        if self.resizer == "pillow":
            resample = self.resample or "bilinear"
            return pillow_matrix(height, rh, resample), pillow_matrix(width, rw, resample)
        return resize_matrix(height, rh, self.antialias), resize_matrix(width, rw, self.antialias)

    def deprocess(self, data: np.ndarray, *, add_mean: bool = True) -> np.ndarray:
        """(3, h, w) data -> (h, w, 3) RGB image, 0-1 where the data is a real image (not clipped).

        This is what the network sees: the resized, cropped view, not the whole
        original photo. ``add_mean=False`` leaves the mean out, for pictures of
        gradients.
        """
        x = np.asarray(data, np.float32)
        if add_mean and self._mean is not None:
            x = x + self._mean
        rgb = np.empty_like(x)
        rgb[self._channels] = x
        return (rgb / np.float32(self.raw_scale)).transpose(1, 2, 0)


def resize_image(image: np.ndarray, size: Size, *, antialias: bool = False) -> np.ndarray:
    """Resize (H, W, 3) float32 0-1 (or uint8) to ``size`` as ``caffe.io.resize_image`` does, bilinearly.

    The image is stretched to 0-1 by its own min and max, resized with
    scikit-image (``mode='constant'``, anti-aliasing as asked) and stretched
    back; a constant image stays constant. Same float32 arithmetic as caffe.io,
    so GoogLeNet's numbers are bit-identical to the blog's set-up. Channels
    are resized one at a time (scikit-image resizes them independently anyway:
    the same bits, a third of the memory).
    """
    lo, hi = _min_max(image)
    if hi <= lo:
        return np.full((*size, image.shape[2]), lo, np.float32)
    out = np.empty((*size, image.shape[2]), np.float32)
    for c in range(image.shape[2]):
        unit = (as_float(image[:, :, c]) - lo) / (hi - lo)
        resized = sk_resize(unit, size, order=1, mode="constant", anti_aliasing=antialias)
        out[:, :, c] = resized * (hi - lo) + lo
    return out


def pillow_resize(photo: np.ndarray, size: Size, resample: str = "bilinear") -> np.ndarray:
    """``Image.resize`` of an (H, W, 3) uint8 RGB photo to ``size`` (H', W'): uint8 (H', W', 3)."""
    if photo.shape[:2] == tuple(size):
        return photo
    resized = Image.fromarray(photo, "RGB").resize((size[1], size[0]), RESAMPLES[resample])
    return np.asarray(resized)


def jpeg_roundtrip(photo: np.ndarray, quality: int) -> np.ndarray:
    """Encode (H, W, 3) uint8 RGB as JPEG at ``quality`` (:data:`JPEG_SUBSAMPLING`) and decode it again."""
    buffer = io.BytesIO()
    Image.fromarray(photo, "RGB").save(buffer, format="JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def as_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 0-255 from uint8 (as is) or float 0-1 (rounded to whole grey levels)."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.asarray(image, np.float32) * np.float32(255)), 0, 255).astype(np.uint8)


def as_float(image: np.ndarray) -> np.ndarray:
    """float32 0-1 from uint8 0-255 (``/ 255`` as ``load_image`` divides) or float 0-1."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32, copy=False)


def _min_max(image: np.ndarray) -> tuple[np.float32, np.float32]:
    """(min, max) of ``image`` as float32 0-1 values, without a float copy of a uint8 photo."""
    lo, hi = image.min(), image.max()
    if image.dtype == np.uint8:
        return np.float32(lo) / np.float32(255.0), np.float32(hi) / np.float32(255.0)
    return np.float32(lo), np.float32(hi)


@lru_cache(maxsize=16)
def resize_matrix(n_in: int, n_out: int, antialias: bool) -> sparse.csr_matrix:
    """The (n_out, n_in) matrix of scikit-image's 1-D resize from ``n_in`` to ``n_out`` samples.

    Built by resizing identity columns with the very call :func:`resize_image`
    makes, so ``resize_matrix(H, h) @ column`` equals the library's result; the
    2-D resize is separable (rows, then columns). Stored sparse: bilinear rows
    have two non-zeros, anti-aliased ones a Gaussian's width.
    """
    blocks = []
    for start in range(0, n_in, _BLOCK):
        k = min(_BLOCK, n_in - start)
        basis = np.zeros((n_in, k))
        basis[np.arange(start, start + k), np.arange(k)] = 1.0
        # Only axis 0 is resized, so anti-aliasing filters along it alone, with
        # the sigma the 2-D resize uses on that axis.
        block = sk_resize(basis, (n_out, k), order=1, mode="constant", anti_aliasing=antialias)
        blocks.append(sparse.csr_matrix(np.where(np.abs(block) > 1e-12, block, 0.0).astype(np.float32)))
    return sparse.hstack(blocks, format="csr")


@lru_cache(maxsize=32)
def pillow_matrix(n_in: int, n_out: int, resample: str) -> sparse.csr_matrix:
    """The (n_out, n_in) matrix of Pillow's 1-D resize from ``n_in`` to ``n_out`` samples with ``resample``.

    Built by resizing identity columns in Pillow's linear float mode ("F"):
    resizing only the height makes Pillow run its vertical pass alone, so each
    column of the result is the filter Pillow applies. The 8-bit resize is this
    matrix followed by rounding (after each of its two passes).
    """
    blocks = []
    for start in range(0, n_in, _BLOCK):
        k = min(_BLOCK, n_in - start)
        basis = np.zeros((n_in, k), np.float32)
        basis[np.arange(start, start + k), np.arange(k)] = 1.0
        block = np.asarray(Image.fromarray(basis, "F").resize((k, n_out), RESAMPLES[resample]))
        blocks.append(sparse.csr_matrix(np.where(np.abs(block) > 1e-9, block, 0.0).astype(np.float32)))
    return sparse.hstack(blocks, format="csr")
