"""The real-world ways a photo can reach a network: a family of preprocessing pipelines.

A model file states one pipeline exactly (its ``[preprocess]`` table, a
:class:`~breaking_nn.preprocessing.Preprocessing`). In the real world the same
photo also reaches the network through other resizers, a JPEG re-encode, a
few pixels cropped off, or a smaller copy. A :class:`Pipeline` is one such
path, a small value object:

    photo (H, W, 3) uint8 RGB 0-255
      -> [JPEG re-encode of the whole file]  -> [trim a few pixels]
      -> [downscale by ``photo_scale``]      -> the model's resize, crop, mean, ...
      -> data (3, h, w) float32, as the network eats it

:meth:`Pipeline.forward` runs it exactly (Pillow's 8-bit rounding and JPEG
included); :meth:`Pipeline.adjoint` is the transpose of its linear part, with
the rounding and JPEG steps passed straight through (BPDA).

Two uses, both data here:

* :func:`verification_suite`: the fixed, named pipelines a saved photo is
  checked against (the model's own first);
* :func:`random_pipeline`: one draw from the family, for expectation over
  transformation (:mod:`breaking_nn.eot`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from .preprocessing import (Preprocessing, Size, add_product, jpeg_roundtrip, pillow_matrix, pillow_resize,
                            transposed)

#: Resizers of the family: (resizer, resample or None, antialias), by name.
RESIZER_FAMILY = {
    "skimage bilinear": ("skimage", None, False),
    "skimage anti-aliased": ("skimage", None, True),
    "pillow bilinear": ("pillow", "bilinear", False),
    "pillow bicubic": ("pillow", "bicubic", False),
    "pillow lanczos": ("pillow", "lanczos", False),
    "pillow box": ("pillow", "box", False),
}
#: Largest number of pixels :func:`random_pipeline` trims off any side.
MAX_TRIM = 4
#: The range of :func:`random_pipeline`'s photo downscale (drawn half the time).
SCALE_RANGE = (0.5, 1.0)
#: The range of :func:`random_pipeline`'s JPEG quality after the resize (drawn two times in three).
JPEG_RANGE = (50, 95)


@dataclass(frozen=True)
class Pipeline:
    """One way an (H, W, 3) uint8 RGB photo becomes (3, h, w) network data.

    Arguments:
        name: how tables and messages call it ("model", "pillow bicubic", ...).
        preprocessing: the network-side steps (resize, JPEG, crop, mean, ...).
        photo_jpeg: re-encode the whole photo as JPEG at this quality first
            (1-95, 4:2:0, as a re-saved or re-uploaded file); None: no.
        trim: (top, left, bottom, right) pixels cut off the photo next.
        photo_scale: then downscale the photo by this factor (0 < s <= 1,
            Pillow bilinear, 8-bit), as a smaller copy of the file would be.

    >>> p = Pipeline("half size", Preprocessing(input_size=(224, 224)), photo_scale=0.5)
    >>> p.forward(np.zeros((300, 400, 3), np.uint8)).shape
    (3, 224, 224)
    """

    name: str
    preprocessing: Preprocessing
    photo_jpeg: Optional[int] = None
    trim: tuple[int, int, int, int] = (0, 0, 0, 0)
    photo_scale: float = 1.0

    def photo_steps_size(self, size: Size) -> Size:
        """(H', W'): the size the photo has when the model's own steps start."""
        top, left, bottom, right = self.trim
        h, w = max(1, size[0] - top - bottom), max(1, size[1] - left - right)
        return max(1, round(h * self.photo_scale)), max(1, round(w * self.photo_scale))

    def forward(self, photo: np.ndarray, *, fast: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 RGB 0-255 photo -> (3, h, w) float32 data, exactly as this pipeline does it.

        ``fast``: scikit-image's resize as its matrices (see :meth:`Preprocessing.forward`).
        """
        x = photo
        if self.photo_jpeg is not None:
            x = jpeg_roundtrip(x, self.photo_jpeg)
        x = self._trimmed(x)
        if self.photo_scale != 1.0:
            x = pillow_resize(x, self.photo_steps_size(photo.shape[:2]), "bilinear")
        return self.preprocessing.forward(x, fast=fast)

    def adjoint(self, grad: np.ndarray, photo_size: Size, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """d/d data (3, h, w) -> d/d photo (H, W, 3) float32, per 0-1 unit.

        The transpose of the linear part: the model's steps (exact), the
        downscale (Pillow's float-mode matrices), the trim (zero padding);
        the JPEG re-encode and 8-bit rounding count as the identity. ``out``:
        a (3, H, W) float32 array the result is added to (see
        :meth:`Preprocessing.adjoint`); the returned array is an (H, W, 3) view of it.
        """
        H, W = photo_size
        if out is None:
            out = np.zeros((3, H, W), np.float32)
        top, left, bottom, right = self.trim
        th, tw = max(1, H - top - bottom), max(1, W - left - right)
        view = out[:, top:top + th, left:left + tw]
        if self.photo_scale == 1.0:
            self.preprocessing.adjoint(grad, (th, tw), out=view)
        else:
            sh, sw = self.photo_steps_size(photo_size)
            small = self.preprocessing.adjoint(grad, (sh, sw)).transpose(2, 0, 1)  # (3, sh, sw)
            rows_t, cols = transposed("pillow", th, sh, "bilinear"), pillow_matrix(tw, sw, "bilinear")
            for c in range(3):
                add_product(view[c], rows_t, small[c] @ cols)
        return out.transpose(1, 2, 0)

    def _trimmed(self, photo: np.ndarray) -> np.ndarray:
        top, left, bottom, right = self.trim
        if not any(self.trim):
            return photo
        H, W = photo.shape[:2]
        return photo[top:top + max(1, H - top - bottom), left:left + max(1, W - left - right)]

    def describe(self) -> str:
        """The steps in words, e.g. ``pillow bicubic 256x256, JPEG 75 (4:2:0), crop 224x224``."""
        p = self.preprocessing
        parts = []
        if self.photo_jpeg is not None:
            parts.append(f"file as JPEG {self.photo_jpeg}")
        if any(self.trim):
            parts.append(f"trim {'/'.join(map(str, self.trim))} px")
        if self.photo_scale != 1.0:
            parts.append(f"downscale x{self.photo_scale:.2f}")
        resizer = (f"pillow {p.resample or 'bilinear'}" if p.resizer == "pillow"
                   else f"skimage{' anti-aliased' if p.antialias else ''}")
        parts.append(f"{resizer} {p.resized_size[0]}x{p.resized_size[1]}")
        if p.jpeg_roundtrip is not None:
            parts.append(f"JPEG {p.jpeg_roundtrip}")
        if p.crop is not None:
            parts.append(f"crop {p.crop[0]}x{p.crop[1]}")
        return ", ".join(parts)


def model_pipeline(preprocessing: Preprocessing) -> Pipeline:
    """The model file's own pipeline, exactly: the family member named "model"."""
    return Pipeline("model", preprocessing)


def with_resizer(preprocessing: Preprocessing, name: str, *, jpeg: Optional[int] = None) -> Preprocessing:
    """``preprocessing`` with the resizer ``name`` of :data:`RESIZER_FAMILY` and JPEG step ``jpeg``."""
    resizer, resample, antialias = RESIZER_FAMILY[name]
    return replace(preprocessing, resizer=resizer, resample=resample, antialias=antialias, jpeg_roundtrip=jpeg)


def verification_suite(preprocessing: Preprocessing) -> list[Pipeline]:
    """The named real-world pipelines a saved photo is checked against; the model's own first.

    For a model whose ``[preprocess]`` is ``preprocessing``:

    * "model": the model file's pipeline, exactly;
    * the six resizers of :data:`RESIZER_FAMILY`, no JPEG;
    * Pillow bilinear, then JPEG at 50, 75 and 90 inside the pipeline, after
      the resize (Yahoo's way);
    * the file itself re-encoded as JPEG at 75 and at 90, then the model's pipeline;
    * the file downscaled to half size, then the model's pipeline.

    A member equal to the model's own pipeline is left out (it is "model"),
    so every member is a different pipeline; at least 12 remain.
    """
    members = [model_pipeline(preprocessing)]
    members += [Pipeline(name, with_resizer(preprocessing, name)) for name in RESIZER_FAMILY]
    members += [Pipeline(f"pillow bilinear + JPEG {q}", with_resizer(preprocessing, "pillow bilinear", jpeg=q))
                for q in (50, 75, 90)]
    members += [Pipeline(f"file as JPEG {q}", preprocessing, photo_jpeg=q) for q in (75, 90)]
    members += [Pipeline("file at half size", preprocessing, photo_scale=0.5)]
    suite: list[Pipeline] = []
    for member in members:
        if not any(_same_steps(member, kept) for kept in suite):
            suite.append(member)
    return suite


def random_pipeline(preprocessing: Preprocessing, rng: np.random.Generator) -> Pipeline:
    """One random member of the family around the model's ``preprocessing``, for EOT.

    Drawn independently: a resizer of :data:`RESIZER_FAMILY` (uniform); a JPEG
    step after the resize at a quality in :data:`JPEG_RANGE` (two times in
    three); 0 to :data:`MAX_TRIM` pixels trimmed off each side; and half the
    time a downscale of the photo by a factor in :data:`SCALE_RANGE`.
    """
    name = list(RESIZER_FAMILY)[rng.integers(len(RESIZER_FAMILY))]
    jpeg = int(rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1)) if rng.random() < 2 / 3 else None
    trim = tuple(int(t) for t in rng.integers(0, MAX_TRIM + 1, size=4))
    scale = float(rng.uniform(*SCALE_RANGE)) if rng.random() < 0.5 else 1.0
    label = name + (f" + JPEG {jpeg}" if jpeg else "") + (f", x{scale:.2f}" if scale != 1.0 else "")
    return Pipeline(label, with_resizer(preprocessing, name, jpeg=jpeg), trim=trim, photo_scale=scale)


def _same_steps(a: Pipeline, b: Pipeline) -> bool:
    """Whether two pipelines do the very same steps (names aside)."""
    pa, pb = a.preprocessing, b.preprocessing
    if pa.resizer == "pillow" and pb.resizer == "pillow" and (pa.resample or "bilinear") == (pb.resample or "bilinear"):
        pa = replace(pa, resample=pb.resample)
    return (pa, a.photo_jpeg, a.trim, a.photo_scale) == (pb, b.photo_jpeg, b.trim, b.photo_scale)
