"""Import pycaffe quietly, and select the CPU or a GPU for it.

Caffe's mode (CPU/GPU) is process-wide state; :func:`use_device` sets it.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from .errors import CaffeNotAvailableError

_SETUP_HINT = "Run `make setup` in the breaking-nn checkout and use its .venv/bin/python."


def import_caffe() -> ModuleType:
    """Return the ``caffe`` module, with glog's INFO/WARNING chatter silenced."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe
    except ImportError as exc:
        raise CaffeNotAvailableError(
            f"pycaffe (BVLC Caffe's Python module) cannot be imported: {exc}. {_SETUP_HINT}"
        ) from exc
    return caffe


@lru_cache(maxsize=1)
def build_info() -> dict:
    """What docker/build-caffe.sh recorded of this Caffe build (``{}`` if unknown).

    Keys: ``device`` ("cpu" or "cuda"), ``source``, ``sdist_sha256``, ``python``,
    ``cuda_arch``.
    """
    caffe = import_caffe()
    info = Path(caffe.__file__).parent / "build_info.json"
    return json.loads(info.read_text()) if info.is_file() else {}


def use_device(device: str = "cpu", gpu_id: int = 0) -> None:
    """Put Caffe on the CPU (``device="cpu"``) or on GPU ``gpu_id`` (``device="gpu"``).

    A CPU-only Caffe would abort the whole process on ``set_mode_gpu``; this
    raises :class:`CaffeNotAvailableError` instead.
    """
    caffe = import_caffe()
    if device == "cpu":
        caffe.set_mode_cpu()
        return
    if device != "gpu":
        raise ValueError(f"device must be 'cpu' or 'gpu', not {device!r}")
    built_for = build_info().get("device")
    if built_for != "cuda":
        raise CaffeNotAvailableError(
            f"this Caffe was built {'CPU-only' if built_for == 'cpu' else 'without a recorded CUDA build'}, "
            "so it cannot use a GPU. Use device='cpu', or build Caffe with CUDA "
            "(docker/build-caffe.sh --device cuda, or the Docker image's default GPU build)."
        )
    if not isinstance(gpu_id, int) or gpu_id < 0:
        raise ValueError(f"gpu_id must be a GPU number >= 0, not {gpu_id!r}")
    caffe.set_device(gpu_id)
    caffe.set_mode_gpu()
