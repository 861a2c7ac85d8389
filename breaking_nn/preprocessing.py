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
  such as Yahoo's ``classify_nsfw.py`` does; the result is 8-bit again;
* ``resizer="opencv"``: ``cv2.resize`` on the 8-bit photo with
  ``interpolation`` (linear, area, cubic, nearest), 8-bit result; with
  ``blob_crop=True`` the photo is scaled by the larger of the two ratios and
  centre-cropped to the input size, as ``cv2.dnn.blobFromImage(crop=True)``
  does (``crop=False`` is the plain squash to the input size).

The resizes are linear, up to Pillow's rounding to 8 bits; the JPEG round trip
(Pillow's encoder, ``JPEG_SUBSAMPLING`` chroma) is not differentiable. The
gradient with respect to the image is the transpose of the linear part applied
to the gradient with respect to the data (:meth:`Preprocessing.adjoint`); the
rounding and the JPEG step pass the gradient through unchanged (the
straight-through estimate, BPDA: Athalye, Carlini and Wagner, 2018). The
resize matrices are taken from the libraries themselves (they resize identity
matrices; Pillow in its linear float mode ``"F"``; OpenCV from float32 probes
of the photo's own 2-D size with the very call the forward makes, since OpenCV
picks its algorithm by the scale), so each transpose is exact for the float map.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import cv2
import numpy as np
from PIL import Image
from scipy import sparse
from skimage.transform import resize as sk_resize

from .workspace import pillow_rgb, scratch
from .errors import ModelError

Size = tuple[int, int]
CHANNEL_ORDERS = ("BGR", "RGB")
RESIZERS = ("skimage", "pillow", "opencv")
#: OpenCV's interpolations by the names a model file uses.
INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC,
                  "nearest": cv2.INTER_NEAREST}
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
                   jpeg_roundtrip: Optional[int] = None, interpolation: Optional[str] = None,
                   blob_crop: bool = False) -> None:
    """Raise :class:`ModelError` unless these preprocessing settings make sense on their own.

    The rules a model file's ``[preprocess]`` table and :class:`Preprocessing`
    share: a known channel order, three mean values, a positive scale, a crop
    that fits inside ``resize`` (None: not known yet, not checked), a known
    resizer, a Pillow ``resample`` filter only with ``resizer="pillow"``, an
    OpenCV ``interpolation`` and ``blob_crop`` only with ``resizer="opencv"``
    (``blob_crop`` with neither resize nor crop), ``antialias`` only with
    scikit-image (Pillow and OpenCV's area do their own), and a JPEG quality from 1 to 95.
    """
    if resizer not in RESIZERS:
        raise ModelError(f'resizer must be "skimage", "pillow" or "opencv", not {resizer!r}')
    if interpolation is not None:
        if resizer != "opencv":
            raise ModelError(f'interpolation = {interpolation!r} is an OpenCV setting: add resizer = "opencv", '
                             'or leave interpolation out (resample is the Pillow filter)')
        if interpolation not in INTERPOLATIONS:
            raise ModelError(f"interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, "
                             f"not {interpolation!r}")
    if blob_crop:
        if resizer != "opencv":
            raise ModelError('blob_crop is cv2.dnn.blobFromImage\'s crop=True: add resizer = "opencv", '
                             'or leave blob_crop out')
        if resize is not None or crop is not None:
            raise ModelError("blob_crop scales the photo to cover the input size and centre-crops it "
                             "(blobFromImage's crop=True): leave resize and crop out")
    if resample is not None:
        if resizer != "pillow":
            raise ModelError(f'resample = {resample!r} is a Pillow filter: add resizer = "pillow", or leave '
                             "resample out (scikit-image's resize is bilinear)")
        if resample not in RESAMPLES:
            raise ModelError(f"resample must be one of {', '.join(map(repr, RESAMPLES))}, not {resample!r}")
    if antialias and resizer != "skimage":
        how = ("Pillow always filters when it shrinks" if resizer == "pillow"
               else 'OpenCV\'s interpolation = "area" is its filtered shrink')
        raise ModelError(f'antialias is a scikit-image option: {how}; leave antialias out with resizer = "{resizer}"')
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
        resizer: "skimage" (``caffe.io``'s resize, float), "pillow"
            (``Image.resize`` on the 8-bit photo, 8-bit result) or "opencv"
            (``cv2.resize`` on the 8-bit photo, 8-bit result).
        resample: Pillow's filter: "bilinear" (default), "bicubic",
            "lanczos", "box" or "nearest"; only with ``resizer="pillow"``.
        interpolation: OpenCV's: "linear" (default), "area", "cubic" or
            "nearest"; only with ``resizer="opencv"``.
        blob_crop: ``cv2.dnn.blobFromImage``'s ``crop=True``: scale the photo
            by the larger of input/photo height and width ratios (float32, as
            OpenCV computes it; ``cv2.resize(fx=, fy=)``), then centre-crop to
            ``input_size``; only with ``resizer="opencv"`` and without resize
            or crop. False with ``resizer="opencv"`` and no resize: the squash
            (``crop=False``). Either way the resize is rounded to 8 bits before
            the channel swap, scale and mean, as blobFromImage does.
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
    interpolation: Optional[str] = None
    blob_crop: bool = False

    def __post_init__(self) -> None:
        check_settings(resize=self.resize, crop=self.crop, mean_bgr=self.mean_bgr,
                       raw_scale=self.raw_scale, channel_order=self.channel_order, resizer=self.resizer,
                       resample=self.resample, antialias=self.antialias, jpeg_roundtrip=self.jpeg_roundtrip,
                       interpolation=self.interpolation, blob_crop=self.blob_crop)
        check_settings(resize=self.resized_size, crop=self.crop, mean_bgr=None, raw_scale=1.0,
                       channel_order=self.channel_order)  # the crop against the default resize too
        if self.output_size != tuple(self.input_size):
            raise ModelError(f"preprocessing makes {list(self.output_size)} images but the network takes "
                             f"{list(self.input_size)}: set crop (or resize) to the network's input size")

    # -- sizes ---------------------------------------------------------------------
    @property
    def resized_size(self) -> Size:
        """(H', W'): the size after the resize step (with ``blob_crop``: the crop's, see :meth:`resized_size_for`)."""
        return tuple(self.resize) if self.resize is not None else tuple(self.input_size)

    def resized_size_for(self, image_size: Size) -> Size:
        """(H', W') after the resize of an ``image_size`` (H, W) photo: :attr:`resized_size`, or blob_crop's cover."""
        if not self.blob_crop:
            return self.resized_size
        return opencv_call(image_size, self.resized_size, cover=True)[0]

    @property
    def output_size(self) -> Size:
        """(h, w): the size of the data, after the crop."""
        return tuple(self.crop) if self.crop is not None else self.resized_size

    def crop_box(self, image_size: Optional[Size] = None) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the centre crop inside the resized image (``image_size``: needed with blob_crop)."""
        if self.blob_crop and image_size is None:
            raise ModelError("blob_crop's crop box depends on the photo: pass crop_box(image_size)")
        (rh, rw), (h, w) = self.resized_size_for(image_size) if self.blob_crop else self.resized_size, self.output_size
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
    def forward(self, image: np.ndarray, *, fast: bool = False, resized: Optional[np.ndarray] = None) -> np.ndarray:
        """(H, W, 3) RGB image -> (3, h, w) float32 data (see the module docstring).

        ``image`` is float 0-1 (from ``load_image``) or uint8 0-255 (a photo's
        own pixels); both give the same data. Each channel is resized on its
        own, so a large photo never has a full-size float copy of all three.
        ``fast=True``: scikit-image's resize is applied as the very matrices
        the adjoint uses (the same linear map, float32 rounding aside; no
        full-resolution Gaussian filter): for gradient estimates, never verdicts.
        ``resized``: :meth:`resize_only` of ``image``, when already made (pipelines
        that share the resize and differ after it, e.g. in the JPEG step); not changed.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(
                f"preprocess takes an (H, W, 3) RGB image in 0-1 (HWC, from load_image), not shape {image.shape}"
            )
        return self.after_resize(self.resize_only(image, fast=fast) if resized is None else resized,
                                 image.shape[:2])

    def after_resize(self, resized: np.ndarray, image_size: Size) -> np.ndarray:
        """The steps after the resize: (H', W', 3) resized image (uint8 0-255 or float 0-1) -> (3, h, w) data.

        The JPEG step, the crop, the channel order, ``raw_scale`` and the mean;
        ``image_size`` (H, W): the photo that was resized (blob_crop's box depends on it).
        """
        x = self.encoded(resized)
        top, left, h, w = self.crop_box(image_size)
        x = x[top:top + h, left:left + w]
        data = x.transpose(2, 0, 1)[self._channels] * np.float32(self.raw_scale)
        if self._mean is not None:
            data -= self._mean
        return np.ascontiguousarray(data, dtype=np.float32)

    def resize_image(self, image: np.ndarray, *, fast: bool = False) -> np.ndarray:
        """The resize (and JPEG) steps: (H, W, 3) RGB, uint8 or float 0-1 -> (H', W', 3) float32 0-1."""
        return self.encoded(self.resize_only(image, fast=fast))

    def resize_key(self) -> tuple:
        """What :meth:`resize_only` depends on besides the image: equal keys, equal resizes."""
        return (self.resizer, self.resample, self.interpolation, self.antialias, self.blob_crop, self.resized_size)

    def encoded(self, resized: np.ndarray) -> np.ndarray:
        """The JPEG step (if any) of a resized (H', W', 3) image: float32 0-1 (a new array only if re-encoded)."""
        if self.jpeg_roundtrip is not None:
            resized = jpeg_roundtrip(as_uint8(resized), self.jpeg_roundtrip)
        return as_float(resized)

    def resize_only(self, image: np.ndarray, *, fast: bool = False) -> np.ndarray:
        """The resize step alone: (H, W, 3) RGB, uint8 or float 0-1 -> (H', W', 3), uint8 (Pillow, OpenCV) or float32."""
        if self.resizer == "pillow":
            resized = pillow_resize(as_uint8(image), self.resized_size, self.resample or "bilinear")
        elif self.resizer == "opencv":
            size, scale = opencv_call(image.shape[:2], self.resized_size, cover=self.blob_crop)
            resized = opencv_resize(as_uint8(image), size, scale, self.interpolation or "linear")
        elif image.shape[:2] != self.resized_size and fast:
            resized = self._matrix_resize(image)
        elif image.shape[:2] != self.resized_size:
            resized = resize_image(image, self.resized_size, antialias=self.antialias)
        else:
            resized = as_float(image)
        return resized

    def _matrix_resize(self, image: np.ndarray) -> np.ndarray:
        """scikit-image's resize as ``rows @ channel @ cols^T``, with caffe.io's min-max stretch kept exact."""
        rows_t, cols = self.resize_matrices(*image.shape[:2])
        rows = rows_t.T.tocsr()
        lo, hi = _min_max(image)
        out = np.empty((*self.resized_size, 3), np.float32)
        for c in range(3):
            resized = np.asarray(rows @ as_float(image[:, :, c])) @ cols.T
            # caffe.io resizes (x - lo) / (hi - lo) and maps back: R x + lo (1 - R 1) for a linear R
            out[:, :, c] = resized
        if hi > lo:
            ones = np.asarray(rows @ np.ones((rows.shape[1], 1), np.float32)) @ np.asarray(cols.sum(axis=1)).T
            out += lo * (1 - ones)[:, :, None]
        return np.clip(out, lo, hi, out=out)  # scikit-image's clip to the input's range

    def adjoint(self, grad: np.ndarray, image_size: Size, *, out: Optional[np.ndarray] = None,
                grid_map=None) -> np.ndarray:
        """Transpose of :meth:`forward`'s linear part: d/d data (3, h, w) -> d/d image (H, W, 3) float32.

        ``grad`` is a gradient with respect to the data (per data unit);
        the result is the gradient with respect to an (H, W, 3) RGB 0-1 image of
        ``image_size`` (per 0-1 unit: divide by 255 for per grey level). Pillow's
        rounding and the JPEG step count as the identity (straight-through).
        ``out``: a (3, H, W) float32 array (CHW: each channel contiguous) the
        result is *added* to, so several gradients sum without a full-size copy
        each; the returned (H, W, 3) array is a view of it. ``grid_map``: a
        function applied to the gradient on the resized grid, (3, H', W') ->
        (3, H', W'), before the resize's transpose (a rotation's transpose at
        the network's scale: :mod:`breaking_nn.pipelines`).
        """
        H, W = image_size
        if out is None:
            out = np.zeros((3, H, W), np.float32)
        canvas = self.adjoint_canvas(grad, image_size, grid_map=grid_map)
        if not self.resizes(image_size):
            out += canvas
        else:
            rows_t, cols = self.resize_matrices(H, W)  # (H, rh), (rw, W)
            for c in range(3):  # rows^T canvas_c cols, one channel at a time
                add_product(out[c], rows_t, canvas[c] @ cols)
        return out.transpose(1, 2, 0)

    def adjoint_canvas(self, grad: np.ndarray, image_size: Size, *, grid_map=None) -> np.ndarray:
        """(3, H', W') float32, RGB: the data gradient (3, h, w) on the resize grid, before the resize's transpose.

        The transposes of the crop (zero padding), the channel order and
        ``raw_scale``, then ``grid_map`` (see :meth:`adjoint`); ``image_size``
        (H, W) is the photo's that is resized.
        """
        grad = np.asarray(grad, np.float32)
        if grad.shape != (3, *self.output_size):
            raise ModelError(f"adjoint takes a gradient of shape {(3, *self.output_size)}, not {grad.shape}")
        g = np.empty_like(grad)
        g[self._channels] = grad * np.float32(self.raw_scale)
        rh, rw = self.resized_size_for(image_size)
        top, left, h, w = self.crop_box(image_size)
        canvas = np.zeros((3, rh, rw), np.float32)
        canvas[:, top:top + h, left:left + w] = g
        return canvas if grid_map is None else grid_map(canvas)

    def resizes(self, image_size: Size) -> bool:
        """Whether the resize of an ``image_size`` (H, W) photo is more than a copy (Pillow resamples even then)."""
        return tuple(image_size) != self.resized_size_for(image_size) or self.resizer == "pillow"

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

    def resize_matrices(self, height: int, width: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """The resize as two sparse matrices for an image of ``height`` x ``width``.

        Returns (rows^T (height, H'), cols (W', width)), the forms the adjoint
        multiplies by: resized = rows @ image @ cols^T for each channel.
        OpenCV's pair is read off the 2-D call at this very size (float32 map;
        the 8-bit rounding is not in it).
        """
        if self.resizer == "opencv":
            size, scale = opencv_call((height, width), self.resized_size, cover=self.blob_crop)
            return opencv_matrices(height, width, size, scale, self.interpolation or "linear")
        rh, rw = self.resized_size
        option = (self.resample or "bilinear") if self.resizer == "pillow" else self.antialias
        return transposed(self.resizer, height, rh, option), one_d_matrix(self.resizer, width, rw, option)


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
        unit = as_float(image[:, :, c], copy=True)
        unit -= lo  # in place: the same float32 operations as (x - lo) / (hi - lo), one buffer
        unit /= hi - lo
        # scikit-image clips to its input's range: the stretched image's, 0-1 over all three channels
        # (one channel's own range is narrower), so clip here, as the three-channel call does
        resized = np.clip(sk_resize(unit, size, order=1, mode="constant", anti_aliasing=antialias, clip=False), 0, 1)
        del unit
        out[:, :, c] = resized * (hi - lo) + lo
    return out


def pillow_resize(photo: np.ndarray, size: Size, resample: str = "bilinear") -> np.ndarray:
    """``Image.resize`` of an (H, W, 3) uint8 RGB photo to ``size`` (H', W'): uint8 (H', W', 3).

    Inside an attack's :func:`~breaking_nn.workspace.reusing`, the photo is copied into the Pillow image the
    attack keeps (:func:`~breaking_nn.workspace.pillow_rgb`).
    """
    if photo.shape[:2] == tuple(size):
        return photo
    resized = pillow_rgb(photo).resize((size[1], size[0]), RESAMPLES[resample])
    return np.asarray(resized)


def opencv_call(image_size: Size, size: Size, *, cover: bool = False) -> tuple[Size, Optional[float]]:
    """How the OpenCV resize of an ``image_size`` (H, W) photo is called: ((H', W') it makes, fx = fy or None).

    ``cover=False``: ``cv2.resize(photo, (W', H'))`` to ``size``, scale None.
    ``cover=True``: blobFromImage's ``crop=True``: the factor is
    ``max(w / (float)W, h / (float)H)`` in float32 and the call is
    ``cv2.resize(photo, None, fx=f, fy=f)``, which makes ``(round(H f), round(W f))``
    (OpenCV rounds half to even, as ``np.rint``).
    """
    if not cover:
        return tuple(size), None
    (H, W), (h, w) = image_size, size
    f = float(max(np.float32(w) / np.float32(W), np.float32(h) / np.float32(H)))
    return (int(np.rint(H * f)), int(np.rint(W * f))), f


def opencv_resize(image: np.ndarray, size: Size, scale: Optional[float], interpolation: str) -> np.ndarray:
    """``cv2.resize`` of an (H, W[, C]) array to ``size`` (H', W'), as :func:`opencv_call` says to call it.

    uint8 in: uint8 out (OpenCV's fixed-point weights, rounded and saturated);
    float32 in: float32 out (the float map). The same size is a copy, as in OpenCV.
    """
    if image.shape[:2] == tuple(size):
        return image.copy()
    if scale is None:
        return cv2.resize(image, (size[1], size[0]), interpolation=INTERPOLATIONS[interpolation])
    out = cv2.resize(image, None, fx=scale, fy=scale, interpolation=INTERPOLATIONS[interpolation])
    if out.shape[:2] != tuple(size):  # opencv_call's rounding no longer OpenCV's: a bug, not bad input
        raise RuntimeError(f"cv2.resize made {out.shape[:2]}, not the expected {size}")
    return out


@lru_cache(maxsize=16)
def opencv_matrices(height: int, width: int, size: Size, scale: Optional[float],
                    interpolation: str) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """OpenCV's resize of a ``height`` x ``width`` photo as (rows^T (height, H'), cols (W', width)), float32.

    Read off ``cv2.resize`` itself at this very 2-D size and call (OpenCV picks
    its algorithm by both scales: integer factors, 2x, area's paths): float32
    probes comb-shaped along one axis (see :func:`library_matrix`) and constant
    along the other over blocks wider than the reads, so that one full-size 2-D
    resize holds many combs side by side (:func:`_packed_responses`). OpenCV's
    interpolations are separable with rows summing to one, so a probe constant
    along x gives the row matrix in every output column whose reads stay in its
    block. The 8-bit resize is this float map plus OpenCV's fixed-point rounding.
    """
    rh, rw = size
    across_rows = _probe_blocks(width, rw)  # row probes are packed side by side along x, column probes along y
    across_cols = _probe_blocks(height, rh)

    def resize(probe: np.ndarray) -> np.ndarray:
        return opencv_resize(probe, size, scale, interpolation)

    def along_rows(basis: np.ndarray) -> np.ndarray:  # (height, k) -> (rh, k)
        return _packed_responses(basis, width, across_rows, resize, across_rows=True)

    def along_cols(basis: np.ndarray) -> np.ndarray:  # (width, k) -> (rw, k)
        return _packed_responses(basis, height, across_cols, resize, across_rows=False)

    def matrix(n_in: int, n_out: int, resize_columns) -> sparse.csr_matrix:
        step = n_in / n_out
        reach = int(np.ceil(max(step, 1.0))) + 3  # area reads ceil(step) + 1 inputs, cubic 4, linear 2
        return library_matrix(n_in, n_out, resize_columns, reach, (np.arange(n_out) + 0.5) * step - 0.5)

    rows = matrix(height, rh, along_rows)
    return rows.T.tocsr(), matrix(width, rw, along_cols)


def _probe_blocks(n_across: int, m_across: int) -> list[tuple[int, int, int]]:
    """Where probes can sit side by side across the other axis: [(first input, end, output read), ...].

    The other axis is resized from ``n_across`` to ``m_across`` samples; output
    sample ``read`` takes inputs only inside [first, end) (its reach, with the
    margin :func:`opencv_matrices` uses, lies inside), so a probe constant
    across that block and zero elsewhere gives, at ``read``, what a probe
    constant across the whole axis gives (rows sum to one). Empty when the axis
    is too short for one block: then every probe is a whole image of its own.
    """
    step = n_across / m_across
    reach = int(np.ceil(max(step, 1.0))) + 3
    width = 2 * reach + int(np.ceil(max(step, 1.0))) + 2  # the reads' window is wider than one output step
    centres = (np.arange(m_across) + 0.5) * step - 0.5
    blocks = []
    for first in range(0, n_across - width + 1, width):
        read = int(np.searchsorted(centres, first + reach))
        if read < m_across and centres[read] <= first + width - 1 - reach:
            blocks.append((first, first + width, read))
    return blocks


def _packed_responses(basis: np.ndarray, n_across: int, blocks: list[tuple[int, int, int]], resize, *,
                      across_rows: bool) -> np.ndarray:
    """(n, k) probe columns -> (n_out, k): each column resized as an image constant across the other axis.

    ``resize`` is the 2-D call on a float32 image: (n, n_across) -> (n_out,
    m_across) with ``across_rows`` (the probes vary along y), else (n_across, n)
    -> (m_across, n_out). The columns are packed into :func:`_probe_blocks`'
    blocks, as many a 2-D resize as there are blocks (with none, one whole
    constant image a column), so the matrices of a 48 MP photo take a few
    full-size resizes, not dozens. Only the blocks are written: the rest of
    the probe holds whatever its buffer held, which no output read here
    reaches (OpenCV's resizes are separable, each output reading its reach).
    """
    per_probe = max(1, len(blocks))
    out = []
    for start in range(0, basis.shape[1], per_probe):
        chunk = basis[:, start:start + per_probe].astype(np.float32)
        shape = (basis.shape[0], n_across) if across_rows else (n_across, basis.shape[0])
        probe = scratch(shape)  # full size: an attack's reused buffer (fresh memory is slow to touch)
        across = probe if across_rows else probe.T  # (n, n_across) either way: blocks are its column ranges
        places = blocks if blocks else [(0, n_across, 0)]
        for i in range(chunk.shape[1]):
            first, end, _ = places[i]
            across[:, first:end] = chunk[:, i:i + 1]
        response = resize(probe)
        reads = [places[i][2] for i in range(chunk.shape[1])]
        out.append(response[:, reads] if across_rows else response[reads, :].T)
    return np.concatenate(out, axis=1)


def jpeg_roundtrip(photo: np.ndarray, quality: int) -> np.ndarray:
    """Encode (H, W, 3) uint8 RGB as JPEG at ``quality`` (:data:`JPEG_SUBSAMPLING`) and decode it again."""
    return pillow_roundtrip(photo, "JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING)


def pillow_roundtrip(photo: np.ndarray, format: str, **options) -> np.ndarray:
    """(H, W, 3) uint8 RGB saved by Pillow as ``format`` with its save ``options`` and decoded again."""
    buffer = io.BytesIO()
    Image.fromarray(photo, "RGB").save(buffer, format=format, **options)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def as_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 0-255 from uint8 (as is) or float 0-1 (rounded to whole grey levels)."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.asarray(image, np.float32) * np.float32(255)), 0, 255).astype(np.uint8)


def as_float(image: np.ndarray, *, copy: bool = False) -> np.ndarray:
    """float32 0-1 from uint8 0-255 (``/ 255`` as ``load_image`` divides) or float 0-1 (a copy if ``copy``)."""
    if image.dtype == np.uint8:
        x = image.astype(np.float32)
        x /= np.float32(255.0)
        return x
    return image.astype(np.float32, copy=copy)


def _min_max(image: np.ndarray) -> tuple[np.float32, np.float32]:
    """(min, max) of ``image`` as float32 0-1 values, without a float copy of a uint8 photo."""
    lo, hi = image.min(), image.max()
    if image.dtype == np.uint8:
        return np.float32(lo) / np.float32(255.0), np.float32(hi) / np.float32(255.0)
    return np.float32(lo), np.float32(hi)


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int, antialias: bool) -> sparse.csr_matrix:
    """The (n_out, n_in) float32 matrix of scikit-image's 1-D resize from ``n_in`` to ``n_out`` samples.

    Taken from the very call :func:`resize_image` makes (see
    :func:`library_matrix`), so ``resize_matrix(H, h) @ column`` equals the
    library's result; the 2-D resize is separable (rows, then columns).
    Bilinear rows have two non-zeros, anti-aliased ones a Gaussian's width.
    """
    def resize_columns(basis: np.ndarray) -> np.ndarray:
        # Only axis 0 is resized, so anti-aliasing filters along it alone, with
        # the sigma the 2-D resize uses on that axis.
        return sk_resize(basis, (n_out, basis.shape[1]), order=1, mode="constant", anti_aliasing=antialias)

    scale = n_in / n_out
    sigma = max(0.0, (scale - 1) / 2) if antialias else 0.0
    reach = int(4.0 * sigma + 0.5) + 2  # scipy's Gaussian truncates at 4 sigma; bilinear adds one sample
    return library_matrix(n_in, n_out, resize_columns, reach, (np.arange(n_out) + 0.5) * scale - 0.5)


@lru_cache(maxsize=64)
def pillow_matrix(n_in: int, n_out: int, resample: str) -> sparse.csr_matrix:
    """The (n_out, n_in) float32 matrix of Pillow's 1-D resize from ``n_in`` to ``n_out`` samples with ``resample``.

    Taken from Pillow's linear float mode ("F"), resizing only the height,
    so Pillow runs its vertical pass alone (see :func:`library_matrix`). The
    8-bit resize is this matrix followed by rounding (after each of its two passes).
    """
    def resize_columns(basis: np.ndarray) -> np.ndarray:
        image = Image.fromarray(basis.astype(np.float32), "F")
        return np.asarray(image.resize((basis.shape[1], n_out), RESAMPLES[resample]))

    scale = n_in / n_out
    support = {"nearest": 0.5, "box": 0.5, "bilinear": 1.0, "bicubic": 2.0, "lanczos": 3.0}[resample]
    reach = int(np.ceil(support * max(scale, 1.0))) + 2
    return library_matrix(n_in, n_out, resize_columns, reach, (np.arange(n_out) + 0.5) * scale - 0.5)


def add_product(out: np.ndarray, left: sparse.csr_matrix, right: np.ndarray) -> None:
    """``out += left @ right`` (sparse (H, n) times dense (n, W)), in bands of rows: no (H, W) temporary."""
    right = np.ascontiguousarray(right)  # scipy would copy a transposed one for every band
    band = max(1, (1 << 20) // max(1, right.shape[1]))
    for top in range(0, left.shape[0], band):
        out[top:top + band] += left[top:top + band] @ right


def one_d_matrix(resizer: str, n_in: int, n_out: int, option) -> sparse.csr_matrix:
    """:func:`pillow_matrix` (``option``: the resample filter) or :func:`resize_matrix` (``option``: antialias)."""
    return pillow_matrix(n_in, n_out, option) if resizer == "pillow" else resize_matrix(n_in, n_out, option)


@lru_cache(maxsize=64)
def transposed(resizer: str, n_in: int, n_out: int, option) -> sparse.csr_matrix:
    """:func:`one_d_matrix`'s transpose, (n_in, n_out), as CSR (cached: the adjoint multiplies by it every step)."""
    return one_d_matrix(resizer, n_in, n_out, option).T.tocsr()


def library_matrix(n_in: int, n_out: int, resize_columns, reach: int, centres: np.ndarray) -> sparse.csr_matrix:
    """The (n_out, n_in) matrix of a library's linear 1-D resize, read off the library itself.

    ``resize_columns(basis)`` resizes an (n_in, k) array to (n_out, k) along
    axis 0 with the library. Output sample i reads only inputs within
    ``reach`` of ``centres[i]`` (its position in input coordinates), so
    probes spaced ``2 * reach + 1`` apart never share an output: one
    resize of that many comb-shaped columns gives every coefficient (instead
    of resizing all n_in identity columns). The matrix is then checked
    against the library on a random column; should the reach ever be wrong,
    the identity columns are resized instead. Either way the result is the
    library's own coefficients.
    """
    period = 2 * reach + 1
    if period < n_in:
        probes = np.zeros((n_in, period + 1))
        for phase in range(period):
            probes[phase::period, phase] = 1.0
        check = np.random.default_rng(0).random(n_in)
        probes[:, period] = check  # resized with the combs: columns are resized independently
        response = resize_columns(probes)  # (n_out, period + 1)
        rows, cols, values = [], [], []
        for phase in range(period):
            source = phase + period * np.round((centres - phase) / period)  # the probe inside each output's reach
            keep = (source >= 0) & (source < n_in) & (response[:, phase] != 0)
            rows.append(np.nonzero(keep)[0])
            cols.append(source[keep].astype(np.int64))
            values.append(response[keep, phase])
        matrix = sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(n_out, n_in), dtype=np.float64)
        if np.allclose(matrix @ check, response[:, period], rtol=1e-5, atol=1e-6):
            return _sparse32(matrix)
    blocks = []
    for start in range(0, n_in, _BLOCK):
        k = min(_BLOCK, n_in - start)
        basis = np.zeros((n_in, k))
        basis[np.arange(start, start + k), np.arange(k)] = 1.0
        blocks.append(sparse.csr_matrix(resize_columns(basis)))
    return _sparse32(sparse.hstack(blocks, format="csr"))


def _sparse32(matrix: sparse.spmatrix) -> sparse.csr_matrix:
    """``matrix`` as float32 CSR without its (numerically) zero entries."""
    matrix = sparse.csr_matrix(matrix, dtype=np.float64)
    matrix.data[np.abs(matrix.data) <= 1e-12] = 0.0
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)
