"""A classifier's input pipeline, image -> network data, and its exact adjoint.

Layouts and units:

* **image**: (H, W, 3) float, HWC, RGB, 0-1 (see :mod:`breaking_nn.images`);
* **data**: (3, h, w) float32, CHW, in the model's channel order (BGR for
  Caffe's ImageNet models), scaled by ``raw_scale`` (0-255 by default), mean
  subtracted: what the network eats.

The steps, in Caffe's order (``caffe.io.Transformer`` plus the classic
``caffe.Classifier`` crop): resize to ``resize`` (bilinear, as ``caffe.io``
does it, with or without anti-aliasing), centre crop to ``crop``, HWC -> CHW,
RGB -> ``channel_order``, times ``raw_scale``, minus ``mean_bgr``. Each step
is linear or affine, so the gradient with respect to the image is the
transpose of the linear part applied to the gradient with respect to the data:
:meth:`Preprocessing.adjoint`. The resize's matrices are taken from
scikit-image itself (it resizes identity matrices), so the transpose is exact,
not a resampled approximation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy import sparse
from skimage.transform import resize as sk_resize

from .errors import ModelError

Size = tuple[int, int]
CHANNEL_ORDERS = ("BGR", "RGB")
_BLOCK = 512  # identity columns resized at a time when building a resize matrix


def check_settings(*, resize: Optional[Size], crop: Optional[Size], mean_bgr: Optional[tuple],
                   raw_scale: float, channel_order: str) -> None:
    """Raise :class:`ModelError` unless these preprocessing settings make sense on their own.

    The rules a model file's ``[preprocess]`` table and :class:`Preprocessing`
    share: a known channel order, three mean values, a positive scale, and a
    crop that fits inside ``resize`` (None: not known yet, not checked).
    """
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
        antialias: Gaussian pre-filter before a down-sizing resize
            (False: the 2017 ``caffe.io`` behaviour GoogLeNet's numbers need).

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

    def __post_init__(self) -> None:
        check_settings(resize=self.resized_size, crop=self.crop, mean_bgr=self.mean_bgr,
                       raw_scale=self.raw_scale, channel_order=self.channel_order)
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
        """(H, W, 3) RGB 0-1 image -> (3, h, w) float32 data (see the module docstring)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(
                f"preprocess takes an (H, W, 3) RGB image in 0-1 (HWC, from load_image), not shape {image.shape}"
            )
        x = image.astype(np.float32, copy=False)
        if x.shape[:2] != self.resized_size:
            x = resize_image(x, self.resized_size, antialias=self.antialias)
        top, left, h, w = self.crop_box()
        x = x[top:top + h, left:left + w]
        data = x.transpose(2, 0, 1)[self._channels] * np.float32(self.raw_scale)
        if self._mean is not None:
            data -= self._mean
        return np.ascontiguousarray(data, dtype=np.float32)

    def adjoint(self, grad: np.ndarray, image_size: Size) -> np.ndarray:
        """Transpose of :meth:`forward`'s linear part: d/d data (3, h, w) -> d/d image (H, W, 3).

        ``grad`` is a gradient with respect to the data (per data unit);
        the result is the gradient with respect to an (H, W, 3) RGB 0-1 image of
        ``image_size`` (per 0-1 unit: divide by 255 for per grey level).
        """
        grad = np.asarray(grad, np.float64)
        if grad.shape != (3, *self.output_size):
            raise ModelError(f"adjoint takes a gradient of shape {(3, *self.output_size)}, not {grad.shape}")
        g = np.empty_like(grad)
        g[self._channels] = grad * self.raw_scale
        rh, rw = self.resized_size
        top, left, h, w = self.crop_box()
        canvas = np.zeros((3, rh, rw))
        canvas[:, top:top + h, left:left + w] = g
        H, W = image_size
        if (H, W) == (rh, rw):
            return canvas.transpose(1, 2, 0)
        rows = resize_matrix(H, rh, self.antialias)  # (rh, H)
        cols = resize_matrix(W, rw, self.antialias)  # (rw, W)
        out = np.stack([(rows.T @ (cols.T @ c.T).T) for c in canvas])  # rows^T c cols, per channel
        return out.transpose(1, 2, 0)

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
    """Resize (H, W, 3) float32 to ``size`` as ``caffe.io.resize_image`` does, bilinearly.

    The image is stretched to 0-1 by its own min and max, resized with
    scikit-image (``mode='constant'``, anti-aliasing as asked) and stretched
    back; a constant image stays constant. Same float32 arithmetic as caffe.io,
    so GoogLeNet's numbers are bit-identical to the blog's set-up.
    """
    lo, hi = image.min(), image.max()
    if hi <= lo:
        return np.full((*size, image.shape[2]), lo, np.float32)
    unit = (image - lo) / (hi - lo)
    resized = sk_resize(unit, size, order=1, mode="constant", anti_aliasing=antialias)
    return (resized * (hi - lo) + lo).astype(np.float32)


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
        blocks.append(sparse.csr_matrix(np.where(np.abs(block) > 1e-12, block, 0.0)))
    return sparse.hstack(blocks, format="csr")

