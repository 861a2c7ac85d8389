"""Model files: a ``model.toml`` beside a deploy prototxt describes one Caffe classifier.

Example (``models/bvlc_googlenet/model.toml`` is another)::

    name = "open_nsfw"
    prototxt = "deploy.prototxt"                  # relative to this file
    weights = "resnet_50_1by2_nsfw.caffemodel"    # a local path, or with url + sha1 + size,
                                                  # where the download is saved
    # url = "https://..."         # where to download it from, or
    # urls = ["https://a/...", "https://b/..."]   # sources tried in order (same SHA-1)
    labels = ["safe for work", "not safe for work"]   # or labels_file = "synset_words.txt"

    [preprocess]
    resize = [256, 256]           # optional; default: the network's input size
    crop = [224, 224]             # optional centre crop
    mean_bgr = [104, 117, 123]    # optional, in data units (after raw_scale)
    raw_scale = 255               # optional; default 255
    channel_order = "BGR"         # "BGR" or "RGB"
    resizer = "pillow"            # optional: "skimage" (default, caffe.io's), "pillow" or "opencv"
    resample = "bilinear"         # optional, Pillow's filter: bilinear, bicubic, lanczos, box, nearest
    # interpolation = "linear"    # optional, resizer "opencv" only: linear (default), area, cubic, nearest
    # blob_crop = true            # optional, resizer "opencv" only, without resize/crop: scale to cover
                                  # the input size, centre crop (cv2.dnn.blobFromImage's crop=True)
    jpeg_roundtrip = 75           # optional: re-encode as JPEG at this quality (1-95, 4:2:0) after the resize
    # antialias = false           # optional, scikit-image only; false: the 2017 caffe.io resize

``resizer = "opencv"`` is ``cv2.resize`` on the 8-bit RGB photo (HWC, 0-255), as OpenCV-based
services run it; the attack's adjoint is the transpose of the float map read off
``cv2.resize`` itself at the photo's size. Without ``resize`` (and without ``blob_crop``)
it squashes straight to the input size, as ``cv2.dnn.blobFromImage(crop=False)`` does.
Which engine runs the net is not a model-file key: ``breaking-nn predict --engine opencv``
(:class:`~breaking_nn.opencv_engine.OpenCVNet`) runs these same files on ``cv2.dnn``.

Every problem is a :class:`~breaking_nn.errors.ModelError` naming the file,
the key and the fix. Nothing here touches Caffe: the network's own facts
(input size, class count) are checked when the model is loaded.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union

from .errors import LabelError, ModelError
from .labels import Labels
from .preprocessing import check_settings
from .weights import WeightsFile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (Ubuntu 22.04)
    import tomli as tomllib

PathLike = Union[str, Path]
TOP_KEYS = {"name": str, "description": str, "prototxt": str, "weights": str, "url": str, "urls": list, "sha1": str,
            "size": int, "labels": list, "labels_file": str, "preprocess": dict}
REQUIRED_KEYS = ("name", "prototxt", "preprocess")
PREPROCESS_KEYS = {"resize": list, "crop": list, "mean_bgr": list, "raw_scale": (int, float),
                   "channel_order": str, "antialias": bool, "resizer": str, "resample": str, "jpeg_roundtrip": int,
                   "interpolation": str, "blob_crop": bool}
#: The blog's preprocessing for GoogLeNet (caffe.io.Transformer: raw_scale 255, RGB -> BGR, no mean).
BLOG_PREPROCESS = {"channel_order": "BGR", "raw_scale": 255.0, "antialias": False}


@dataclass(frozen=True)
class ModelSpec:
    """A classifier as a model file describes it; paths are absolute.

    ``weights`` is the caffemodel's path (None: untrained, generated fillers);
    ``download`` says where it comes from when it is missing; ``preprocess``
    holds :class:`~breaking_nn.preprocessing.Preprocessing`'s keyword
    arguments, less the network's input size.
    """

    name: str
    prototxt: Path
    weights: Optional[Path]
    labels: Labels
    preprocess: dict[str, Any] = field(default_factory=lambda: dict(BLOG_PREPROCESS))
    download: Optional[WeightsFile] = None
    source: Optional[Path] = None

    def with_weights(self, weights: Optional[PathLike]) -> "ModelSpec":
        """The same model with another caffemodel (and nothing to download)."""
        return replace(self, weights=None if weights is None else Path(weights).expanduser(), download=None)

    def where(self) -> str:
        """How error messages name this model: its file, else its prototxt."""
        return str(self.source or self.prototxt)


def read_model_file(path: PathLike) -> ModelSpec:
    """Parse and check a ``model.toml``; see the module docstring for its keys."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: pass the path of a model.toml "
                         "(see models/bvlc_googlenet/model.toml)")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid TOML: {exc}") from None
    _check_keys(path, table, TOP_KEYS, REQUIRED_KEYS, "")
    folder = path.parent
    prototxt = folder / table["prototxt"]
    if not prototxt.is_file():
        raise ModelError(f"{path}: prototxt {prototxt} does not exist: fix the path (it is relative to the model file)")
    weights, download = _weights(path, table)
    return ModelSpec(name=table["name"], prototxt=prototxt, weights=weights, labels=_labels(path, table),
                     preprocess=_preprocess(path, table["preprocess"]), download=download, source=path)


def _weights(path: Path, table: dict) -> tuple[Path, Optional[WeightsFile]]:
    """(weights path, download or None) from the file's weights, url, sha1 and size keys."""
    if "url" in table and "urls" in table:
        raise ModelError(f"{path}: give 'url' (one source) or 'urls' (sources tried in order), not both: "
                         "move the url into the urls list")
    if "urls" in table:
        urls = table["urls"]
        if not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
            raise ModelError(f"{path}: 'urls' must be a non-empty list of http(s) URLs serving the same file, "
                             f"not {urls!r}")
        table = {**table, "url": urls[0]}
    download_keys = [k for k in ("url", "sha1", "size") if k in table]
    if download_keys and len(download_keys) != 3:
        missing = ", ".join(k for k in ("url", "sha1", "size") if k not in table)
        raise ModelError(f"{path}: a download needs url (or urls), sha1 and size together; add {missing}")
    if not download_keys:
        if "weights" not in table:
            raise ModelError(f"{path}: missing key 'weights': give the caffemodel's path, "
                             "or url, sha1 and size to download it")
        weights = path.parent / table["weights"]
        if not weights.is_file():
            raise ModelError(f"{path}: weights file {weights} does not exist: fix the 'weights' path "
                             "(relative to the model file), or add url, sha1 and size to download it")
        return weights, None
    if not re.fullmatch(r"[0-9a-f]{40}", table["sha1"]):
        raise ModelError(f"{path}: sha1 must be 40 lower-case hex digits, not {table['sha1']!r}")
    if table["size"] <= 0:
        raise ModelError(f"{path}: size must be the file's size in bytes, not {table['size']!r}")
    name = table.get("weights") or table["url"].rstrip("/").rsplit("/", 1)[-1]
    urls = table.get("urls") or [table["url"]]
    return path.parent / name, WeightsFile(url=urls[0], mirrors=tuple(urls[1:]), size=table["size"], sha1=table["sha1"])


def _labels(path: Path, table: dict) -> Labels:
    has_list, has_file = "labels" in table, "labels_file" in table
    if has_list == has_file:
        raise ModelError(f"{path}: give exactly one of 'labels' (a list of class names) and 'labels_file' "
                         f"(a file with one class a line), not {'both' if has_list else 'neither'}")
    if has_list:
        names = table["labels"]
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ModelError(f"{path}: 'labels' must be a non-empty list of class names (strings)")
        _check_unique(path, names)
        return Labels(names)
    try:  # a labels_file may repeat a name (ILSVRC-2012 has two "crane"s): such a name needs the number
        return Labels.from_file(path.parent / table["labels_file"])
    except LabelError as exc:
        raise ModelError(f"{path}: labels_file: {exc}") from None


def _check_unique(path: Path, names: list[str]) -> None:
    """Two classes with one name would make a target name ambiguous: a :class:`ModelError`."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = name.strip().lower()
        if key in seen:
            raise ModelError(f"{path}: classes {seen[key]} and {i} are both named {name!r}: give every class "
                             "its own name, or a target name would be ambiguous")
        seen[key] = i


def _preprocess(path: Path, table: dict) -> dict[str, Any]:
    """The ``[preprocess]`` table as Preprocessing's keyword arguments."""
    _check_keys(path, table, PREPROCESS_KEYS, ("channel_order",), "[preprocess] ")
    out: dict[str, Any] = {"channel_order": table["channel_order"],
                           "raw_scale": float(table.get("raw_scale", 255.0)),
                           "antialias": table.get("antialias", False)}
    out.update({key: table[key] for key in ("resizer", "resample", "jpeg_roundtrip", "interpolation", "blob_crop")
                if key in table})
    for key in ("resize", "crop"):
        if key in table:
            size = table[key]
            if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
                raise ModelError(f"{path}: [preprocess] {key} must be [height, width] in pixels, not {size!r}")
            out[key] = (size[0], size[1])
    if "mean_bgr" in table:
        mean = table["mean_bgr"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean):
            raise ModelError(f"{path}: [preprocess] mean_bgr must be three numbers [blue, green, red], not {mean!r}")
        out["mean_bgr"] = tuple(float(v) for v in mean)
    try:  # the value rules Preprocessing applies again once the network's input size is known
        check_settings(resize=out.get("resize"), crop=out.get("crop"), mean_bgr=out.get("mean_bgr"),
                       raw_scale=out["raw_scale"], channel_order=out["channel_order"],
                       resizer=out.get("resizer", "skimage"), resample=out.get("resample"),
                       antialias=out["antialias"], jpeg_roundtrip=out.get("jpeg_roundtrip"),
                       interpolation=out.get("interpolation"), blob_crop=out.get("blob_crop", False))
    except ModelError as exc:
        raise ModelError(f"{path}: [preprocess] {exc}") from None
    return out


def _check_keys(path: Path, table: dict, allowed: dict, required: tuple, where: str) -> None:
    """Unknown keys, missing keys and wrong types, each named with the fix."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ModelError(f"{path}: unknown {where}key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"the keys are: {', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise ModelError(f"{path}: missing {where}key {key!r}")
    for key, value in table.items():
        kind = allowed[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool and bool not in
                                           (kind if isinstance(kind, tuple) else (kind,))):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise ModelError(f"{path}: {where}key {key!r} must be {_toml_type(names)}, not {value!r}")


def _toml_type(python_names: str) -> str:
    return (python_names.replace("str", "a string").replace("int or float", "a number").replace("int", "an integer")
            .replace("list", "an array").replace("dict", "a table").replace("bool", "true or false"))
