"""Which BLAS library, and which of its kernels, Caffe's arithmetic runs on.

Debian's OpenBLAS (``DYNAMIC_ARCH``) picks its kernels per CPU at load time
(Haswell, Zen, SkylakeX, Cooperlake, ...), or as ``OPENBLAS_CORETYPE`` says; some
kernels differ in the last bit of some GEMMs, so every speed figure and every
bit-identity claim names the kernel. This asks the very library that pycaffe's
``libcaffe`` links (not NumPy's own bundled OpenBLAS), through threadpoolctl,
without importing caffe.

>>> print(caffe_blas())          # doctest: +SKIP
OpenBLAS 0.3.21, kernel SkylakeX (/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0)

``python -m breaking_nn.blas_info`` prints that line; :func:`machine_summary` adds the CPU
(every benchmark script prints it above its figures).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class BlasInfo:
    """library: the BLAS file libcaffe loads; api: "openblas", "mkl", ... or None; version; kernel (OpenBLAS's
    corename); threads: how many threads it runs on now (threadpoolctl's num_threads), or None."""

    library: Optional[str]
    api: Optional[str] = None
    version: Optional[str] = None
    kernel: Optional[str] = None
    threads: Optional[int] = None

    def __str__(self) -> str:
        if self.library is None:
            return "BLAS unknown (no pycaffe libcaffe found, or ldd finds no BLAS in it)"
        if self.kernel is None:
            return f"{self.library} (not OpenBLAS: it cannot say which kernel it runs)"
        name = {"openblas": "OpenBLAS"}.get(self.api or "", self.api or "BLAS")
        return f"{name} {self.version}, kernel {self.kernel} ({self.library})"


def libcaffe_path() -> Optional[Path]:
    """The libcaffe.so.* beside pycaffe's _caffe.so (build-caffe.sh ships it there), or None."""
    spec = importlib.util.find_spec("caffe")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("libcaffe.so*"))
        if found:
            return found[0]
    return None


def linked_blas(library: Path) -> Optional[str]:
    """The BLAS (or cBLAS) shared library that ``library`` loads, as ldd resolves it."""
    try:
        lines = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in lines:
        parts = line.split()
        if "=>" in parts and "blas" in parts[0] and len(parts) > 2 and parts[2].startswith("/"):
            return parts[2]
    return None


def caffe_blas() -> BlasInfo:
    """The BLAS and kernel that pycaffe's arithmetic runs on in this process's environment."""
    libcaffe = libcaffe_path()
    if libcaffe is None:
        return BlasInfo(None)
    library = linked_blas(libcaffe)
    return BlasInfo(None) if library is None else describe(library)


def describe(library: str) -> BlasInfo:
    """Load ``library`` (a path) and ask threadpoolctl what it is and which kernel it runs."""
    from threadpoolctl import threadpool_info

    ctypes.CDLL(library)  # loaded as libcaffe would load it
    real = os.path.realpath(library)
    for entry in threadpool_info():
        if os.path.realpath(entry.get("filepath", "")) == real:
            kernel = entry.get("architecture") if entry.get("internal_api") == "openblas" else None
            return BlasInfo(library, api=entry.get("internal_api"), version=entry.get("version"), kernel=kernel,
                            threads=entry.get("num_threads"))
    return BlasInfo(library)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo and whether it has AVX-512 (e.g. "Intel(R) Xeon(R) Processor, AVX-512")."""
    try:
        lines = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()  # the first CPU
        info = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    name = info.get("model name", "unknown CPU")
    flags = info.get("flags", "").split()
    return f"{name}, {'AVX-512' if 'avx512f' in flags else 'AVX2' if 'avx2' in flags else 'no AVX2'}"


def machine_summary() -> str:
    """One line for a benchmark's figures: the CPU, its CPU count and the BLAS kernel Caffe runs on."""
    return f"CPU {cpu_name()} ({os.cpu_count()} CPUs); BLAS {caffe_blas()}"


if __name__ == "__main__":
    print(caffe_blas())
