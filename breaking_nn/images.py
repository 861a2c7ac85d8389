"""Read images from files, URLs or arrays into the layout caffe.io expects.

:func:`load_image` returns an image as a float32 array of shape (H, W, 3):
HWC layout, RGB channel order, values 0.0-1.0 (what ``caffe.io.load_image``
returns). :func:`read_photo` returns the same pixels as uint8 0-255, with the
file's ICC colour profile. Grayscale is repeated over the three channels;
alpha is dropped.

Photos come upright: a file's EXIF orientation tag (phones store portrait
photos as landscape pixels plus "rotate 90") is applied on load, as every
viewer shows it, so the network sees, and an attack saves, the upright photo.
A corrupt EXIF block is ignored with a warning. Nothing else of the file's
metadata (GPS, camera serial, ...) is kept.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import requests
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError
from .network import request_problem
from .url_guard import URLRefused, guarded_session, refusal

ImageSource = Union[str, Path, np.ndarray, Image.Image]

#: The blog's photo of Liz the cat (the image behind its numbers).
BLOG_IMAGE_URL = "https://github.com/livz/livz.github.io/raw/master/assets/images/liz.jpg"
#: Largest download accepted by :func:`fetch_image_bytes`, in bytes.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Photo:
    """A photo's own pixels: ``pixels`` (H, W, 3) uint8, HWC, RGB, 0-255, upright;
    ``icc_profile``: the file's colour profile (bytes), None if it had none."""

    pixels: np.ndarray
    icc_profile: Optional[bytes] = None


def load_image(source: ImageSource, *, timeout: float = 20.0, public_only: bool = False) -> np.ndarray:
    """Load an image as (H, W, 3) float32 RGB in 0-1, upright (EXIF orientation applied).

    ``source`` is a local path, an ``http(s)://`` URL, a PIL image, or an array:
    (H, W) or (H, W, 3|4), uint8 0-255 or float 0-1. ``public_only``: a URL is
    fetched only from public addresses (:mod:`breaking_nn.url_guard`), as the served app does.

    >>> img = load_image("liz.jpg")          # doctest: +SKIP
    >>> img.shape, img.dtype                 # doctest: +SKIP
    ((948, 533, 3), dtype('float32'))
    """
    if isinstance(source, np.ndarray):
        return _array_to_image(source)
    if isinstance(source, Image.Image):
        return _pil_to_array(_upright(source, "the given PIL image"), "the given PIL image")
    text = str(source)
    return _decode(_read_bytes(text, timeout, public_only), text, _pil_to_array)


def read_photo(source: ImageSource, *, timeout: float = 20.0, public_only: bool = False) -> Photo:
    """Load a photo's own pixels, (H, W, 3) uint8 RGB 0-255, upright, with its ICC profile.

    ``source`` and ``public_only`` as for :func:`load_image`; the pixels are ``load_image``'s
    times 255. No float copy is made, so a 48 MP photo costs 145 MB here.
    """
    if isinstance(source, np.ndarray):
        if source.dtype == np.uint8 and source.ndim == 3 and source.shape[2] == 3:
            return Photo(source.copy())
        return Photo(np.rint(_array_to_image(source) * 255.0).astype(np.uint8))
    if isinstance(source, Image.Image):
        return _pil_to_photo(_upright(source, "the given PIL image"), "the given PIL image")
    text = str(source)
    return _decode(_read_bytes(text, timeout, public_only), text, _pil_to_photo)


def decode_image(data: bytes, origin: str = "the data") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, GIF, ...) with Pillow; see :func:`load_image`."""
    return _decode(data, origin, _pil_to_array)


def _read_bytes(text: str, timeout: float, public_only: bool = False) -> bytes:
    """The bytes of a local file or an http(s) URL; :class:`ImageLoadError` for anything else."""
    if text.startswith(("http://", "https://")):
        return fetch_image_bytes(text, timeout=timeout, public_only=public_only)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme:
        raise ImageLoadError(f"{text}: only http:// and https:// URLs can be fetched, not {scheme.group(1)}://; "
                             "download the image and pass its local path")
    path = Path(text).expanduser()
    if not path.is_file():
        raise ImageLoadError(f"image file {path} does not exist: check the path (or pass an http(s) URL)")
    return path.read_bytes()


def _decode(data: bytes, origin: str, convert: Callable):
    """Open ``data`` with Pillow, set it upright, and ``convert(image, origin)``; one clear error if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return convert(_upright(img, origin), origin)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        start = data[:60].decode("utf-8", "replace").strip()
        # Pillow's own text for an unknown format names its in-memory buffer: say it plainly.
        reason = "no known image format" if isinstance(exc, UnidentifiedImageError) else f"{type(exc).__name__}: {exc}"
        raise ImageLoadError(
            f"{origin} is not an image Pillow can read ({reason}); "
            f"it starts with {start!r}. Give a JPEG, PNG, GIF, BMP or WebP file."
        ) from None


def _upright(img: Image.Image, origin: str) -> Image.Image:
    """``img`` turned as its EXIF orientation tag says (as viewers show it); a corrupt EXIF block is ignored."""
    try:
        raw = img.info.get("exif")
        if raw:
            Image.Exif().load(raw)  # getexif() below would hide a corrupt block: an empty tag list
        orientation = img.getexif().get(0x0112, 1)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a corrupt EXIF block
        warnings.warn(f"{origin}: its EXIF block is unreadable ({type(exc).__name__}: {exc}); "
                      "the orientation tag is ignored and the pixels are used as stored", stacklevel=4)
        return img
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        try:
            return ImageOps.exif_transpose(img)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"{origin}: its EXIF orientation could not be applied ({type(exc).__name__}: {exc}); "
                          "the pixels are used as stored", stacklevel=4)
    return img


def fetch_image_bytes(url: str, *, timeout: float = 20.0, max_bytes: int = MAX_DOWNLOAD_BYTES,
                      public_only: bool = False) -> bytes:
    """Download ``url`` (at most ``max_bytes``) and return the body's bytes.

    ``public_only``: :class:`~breaking_nn.url_guard.URLRefused` (one line naming the rule, nothing
    fetched) unless the URL and every redirect hop resolve to, and connect to, public addresses;
    the environment's HTTP(S)_PROXY is then not used (see :mod:`breaking_nn.url_guard`)."""
    if public_only:
        why = refusal(url)
        if why:
            raise URLRefused(why)
    session = guarded_session() if public_only else requests.Session()
    try:
        with session, session.get(url, timeout=timeout, stream=True) as response:
            if response.status_code != 200:
                raise ImageLoadError(
                    f"could not fetch {url}: HTTP {response.status_code} {response.reason}. "
                    "Check the URL, or download the image and pass its local path."
                )
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise ImageLoadError(_too_big(url, max_bytes))
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise ImageLoadError(_too_big(url, max_bytes))
            return bytes(body)
    except requests.RequestException as exc:
        raise ImageLoadError(
            f"could not fetch {url}: {request_problem(url, exc)}. "
            "Check the network, or download the image and pass its local path."
        ) from None


def default_image() -> np.ndarray:
    """An offline cat: scikit-image's CC0 photo of Chelsea, (300, 451, 3) RGB 0-1."""
    from skimage import data

    return _array_to_image(data.chelsea())


def load_blog_image(source: Optional[ImageSource] = None, *, log: Callable[[str], None] = print) -> np.ndarray:
    """The image to attack, (H, W, 3) RGB 0-1: ``source``, else the blog's photo, else offline Chelsea."""
    if source is not None:
        return load_image(source)
    try:
        return load_image(BLOG_IMAGE_URL, timeout=10)
    except ImageLoadError as exc:
        log(f"Could not fetch the blog's photo ({exc}).\nUsing scikit-image's offline cat photo instead.")
        return default_image()


def _too_big(url: str, max_bytes: int) -> str:
    return (f"{url} is larger than {max_bytes // (1024 * 1024)} MiB: not loading it. "
            "Shrink the image, or download it and pass its local path.")


def _pil_to_photo(img: Image.Image, origin: str) -> Photo:
    """A decoded, upright PIL image as a :class:`Photo` (uint8 pixels, ICC profile)."""
    icc = img.info.get("icc_profile") or None
    if img.mode != "RGB":  # grey, palette, alpha, 16-bit, CMYK (whose profile does not describe RGB)
        return Photo(np.rint(_pil_to_array(img, origin) * 255.0).astype(np.uint8), None if img.mode == "CMYK" else icc)
    pixels = np.asarray(img)
    if min(pixels.shape[:2]) == 0:
        raise ImageLoadError(f"{origin} decoded to an unusable array of shape {pixels.shape}")
    return Photo(pixels, icc)


def _pil_to_array(img: Image.Image, origin: str) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if img.mode.startswith("I;16") or grey.max() > 255 else 255.0
        return _array_to_image(np.clip(grey / scale, 0.0, 1.0))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) == 0:
        raise ImageLoadError(f"{origin} decoded to an unusable array of shape {arr.shape}")
    return arr


def _array_to_image(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None].repeat(3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) == 0:
        raise ImageLoadError(
            f"an image array must be (H, W), (H, W, 3) or (H, W, 4) (HWC layout), not shape {a.shape}; "
            "for Caffe's (3, H, W) blobs use Classifier.deprocess first"
        )
    if a.shape[2] == 1:
        a = a.repeat(3, axis=2)
    a = a[:, :, :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ImageLoadError(f"an image array must be uint8 (0-255) or float (0-1), not {a.dtype}")
    if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
        raise ImageLoadError("a float image array must hold values in 0-1 (divide 0-255 data by 255)")
    return a.astype(np.float32)
