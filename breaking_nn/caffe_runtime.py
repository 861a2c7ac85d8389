"""Import pycaffe quietly, and select the CPU or a GPU for it.

Caffe's mode (CPU/GPU) is process-wide state; :func:`use_device` sets it.
"""
from __future__ import annotations

import ctypes
import json
import os
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from .errors import CaffeNotAvailableError

_SETUP_HINT = "Run `make setup` in the breaking-nn checkout and use its .venv/bin/python."


def import_caffe() -> ModuleType:
    """Return the ``caffe`` module, with glog's INFO, WARNING and ERROR chatter silenced."""
    # 3: glog's FATAL messages only. A CUDA build on a machine without a GPU logs
    # ERRORs (no cuBLAS handle) even in CPU mode; breaking_nn says what matters.
    os.environ.setdefault("GLOG_minloglevel", "3")
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
    ``cuda_arch``, ``cuda`` (the CUDA release it was compiled with, e.g. "13.0"),
    ``gtests``.
    """
    caffe = import_caffe()
    info = Path(caffe.__file__).parent / "build_info.json"
    return json.loads(info.read_text()) if info.is_file() else {}


_NO_GPU = "no CUDA driver or GPU found: "
_CPU_HINT = "Use device='cpu' (slower, same results)."
_CUDA_ERROR_NO_DEVICE = 100


def _cuda_error_name(lib, code: int) -> str:
    name = ctypes.c_char_p()
    if lib.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
        return f"{name.value.decode()} ({code})"
    return f"error {code}"


def cuda_devices(driver: str = "libcuda.so.1") -> tuple[int, int]:
    """Ask the NVIDIA driver how many GPUs it sees: ``(count, driver_cuda_version)``.

    Uses the driver API (``cuInit``, ``cuDriverGetVersion``, ``cuDeviceGetCount``)
    through ctypes, so a missing driver or GPU cannot abort the process the way
    Caffe's own checks do. ``driver_cuda_version`` is the newest CUDA the driver
    supports, as 1000 * major + 10 * minor (12080: CUDA 12.8).

    Raises :class:`CaffeNotAvailableError` ("no CUDA driver or GPU found: ...")
    saying which is missing: the driver library, or a GPU it can see.
    """
    try:
        lib = ctypes.CDLL(driver)
    except OSError as exc:
        raise CaffeNotAvailableError(
            f"{_NO_GPU}no CUDA driver: the NVIDIA driver's library {driver} cannot be loaded ({exc}). "
            "Install the NVIDIA driver; in Docker, start the container with `--gpus all` (the host "
            f"needs the NVIDIA driver and the NVIDIA Container Toolkit). {_CPU_HINT}"
        ) from None
    rc = lib.cuInit(0)
    if rc == _CUDA_ERROR_NO_DEVICE:
        raise CaffeNotAvailableError(
            f"{_NO_GPU}no GPU: the CUDA driver ({driver}) is installed but sees no GPU "
            f"(cuInit: {_cuda_error_name(lib, rc)}). Check `nvidia-smi`; in Docker, use `--gpus all`. {_CPU_HINT}"
        )
    if rc != 0:
        raise CaffeNotAvailableError(
            f"{_NO_GPU}the CUDA driver ({driver}) failed to start: cuInit returned {_cuda_error_name(lib, rc)}. "
            f"Check `nvidia-smi` (a driver/kernel module mismatch needs a reboot). {_CPU_HINT}"
        )
    version, count = ctypes.c_int(0), ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        version.value = 0
    rc = lib.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0 or count.value < 1:
        raise CaffeNotAvailableError(
            f"{_NO_GPU}no GPU: the CUDA driver ({driver}) is installed but counts "
            f"{count.value if rc == 0 else 'no'} GPUs{'' if rc == 0 else f' ({_cuda_error_name(lib, rc)})'}. "
            f"Check `nvidia-smi`; in Docker, use `--gpus all`. {_CPU_HINT}"
        )
    return count.value, version.value


def check_gpu(gpu_id: int, cuda_release: str = "", driver: str = "libcuda.so.1") -> None:
    """Raise :class:`CaffeNotAvailableError` unless GPU ``gpu_id`` can run a Caffe
    compiled with CUDA ``cuda_release`` ("13.0"; "" skips the version check)."""
    count, version = cuda_devices(driver)
    if cuda_release and version:
        needed = int(cuda_release.split(".")[0])
        if version // 1000 < needed:
            raise CaffeNotAvailableError(
                f"the NVIDIA driver supports CUDA {version // 1000}.{version % 1000 // 10} at most, but this "
                f"Caffe was built with CUDA {cuda_release}: update the driver to one for CUDA {needed} "
                f"(see the README's Docker section). {_CPU_HINT}"
            )
    if gpu_id >= count:
        raise CaffeNotAvailableError(
            f"GPU {gpu_id} does not exist: CUDA sees {count} GPU{'s' if count != 1 else ''} "
            f"(gpu_id 0{f' to {count - 1}' if count > 1 else ''}). {_CPU_HINT}"
        )


@lru_cache(maxsize=None)
def _check_gpu_once(gpu_id: int, cuda_release: str) -> None:
    """:func:`check_gpu` with the installed driver, once per GPU per process: use_device
    runs before every forward pass, and the driver and its GPUs do not change under it.
    (A failure raises, so it is not cached: the next call checks again.)"""
    check_gpu(gpu_id, cuda_release)


def use_device(device: str = "cpu", gpu_id: int = 0) -> None:
    """Put Caffe on the CPU (``device="cpu"``) or on GPU ``gpu_id`` (``device="gpu"``).

    A CPU-only Caffe, a missing driver or GPU, or a ``gpu_id`` past the last GPU
    would abort the whole process inside Caffe; each raises
    :class:`CaffeNotAvailableError` instead, saying what is missing.
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
    _check_gpu_once(gpu_id, build_info().get("cuda", ""))
    caffe.set_device(gpu_id)
    caffe.set_mode_gpu()
