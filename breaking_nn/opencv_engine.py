"""OpenCV's dnn engine: a second engine for a Caffe classifier's very files, forward only.

Deployed services often run a Caffe model with ``cv2.dnn.readNetFromCaffe``
rather than with Caffe. :class:`OpenCVNet` runs the prototxt and caffemodel a
:class:`~breaking_nn.model.Classifier` was loaded from (both passed
:func:`~breaking_nn.model_check.check_model_files` then) on OpenCV:

* **data in**: (N, 3, h, w) float32, exactly what Caffe's net eats
  (the model's channel order, its scale, mean subtracted: ``model.preprocess``);
* **probabilities out**: (N, K) float32, the Softmax's output.

Before OpenCV opens the files in this process, a child process reads them and
runs one forward, so a file OpenCV rejects (or would abort on) is a
:class:`ModelError` naming OpenCV, and this process lives on. One net is cached
per model. OpenCV runs on the CPU only (the headless wheel has no CUDA), with
as many threads as Caffe's OpenBLAS (:func:`blas_threads`).

>>> net = OpenCVNet.for_model(model)                  # doctest: +SKIP
>>> net.probabilities(model.preprocess(image)[None])  # doctest: +SKIP
"""
from __future__ import annotations

import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .blas_info import caffe_blas
from .errors import ModelError

#: The engines a prediction can run on.
ENGINES = ("caffe", "opencv")
_CHILD = """
import re, sys, numpy as np, cv2
prototxt, weights, n, c, h, w = sys.argv[1], sys.argv[2] or None, *map(int, sys.argv[3:7])
try:
    net = cv2.dnn.readNetFromCaffe(prototxt, weights) if weights else cv2.dnn.readNetFromCaffe(prototxt)
    net.setInput(np.zeros((n, c, h, w), np.float32))
    out = net.forward()
except cv2.error as exc:  # one line: "Can't create layer ..." without OpenCV's source-file prefix
    text = " ".join(line.strip(" >") for line in str(exc).splitlines() if line.strip(" >"))
    text = re.sub(r"^OpenCV\\(.*?\\) \\S+: error: \\(-?\\d+:[^)]*\\) ", "", text)
    print(re.sub(r" in function '[^']*'$", "", text)[:400], file=sys.stderr)
    sys.exit(3)
print(out.shape[1] if out.ndim >= 2 else -1)
"""
_cache: "weakref.WeakKeyDictionary[object, OpenCVNet]" = weakref.WeakKeyDictionary()


def check_engine(engine: str, *, device: str = "cpu") -> None:
    """Raise :class:`ModelError` unless ``engine`` is one of :data:`ENGINES` and runs on ``device``."""
    if engine not in ENGINES:
        raise ModelError(f"the engine must be one of {', '.join(map(repr, ENGINES))}, not {engine!r}")
    if engine == "opencv" and device != "cpu":
        raise ModelError("OpenCV's dnn engine runs on the CPU here (opencv-python-headless has no CUDA): "
                         "drop --device gpu with --engine opencv, or use --engine caffe on the GPU")


def blas_threads() -> int:
    """The threads of the BLAS Caffe runs on (:func:`~breaking_nn.blas_info.caffe_blas`); else OpenCV's own count.

    That is the system's OpenBLAS that libcaffe links, not a NumPy, SciPy or
    OpenCV wheel's bundled copy.
    """
    threads = caffe_blas().threads
    return int(threads) if threads else cv2.getNumThreads()


class OpenCVNet:
    """A Caffe classifier's prototxt and weights on ``cv2.dnn``: (N, 3, h, w) data -> (N, K) probabilities."""

    def __init__(self, prototxt: Path, weights: Optional[Path], *, input_shape: tuple[int, int, int],
                 n_classes: int, name: str = "model"):
        self.prototxt, self.weights, self.name = Path(prototxt), weights and Path(weights), name
        self.input_shape, self.n_classes = tuple(input_shape), n_classes
        self._check_in_child()
        self.threads = blas_threads()
        cv2.setNumThreads(self.threads)
        try:
            self.net = (cv2.dnn.readNetFromCaffe(str(self.prototxt), str(self.weights)) if self.weights
                        else cv2.dnn.readNetFromCaffe(str(self.prototxt)))
        except cv2.error as exc:  # the child read them; only a changed file gets here
            raise self._rejected(" ".join(str(exc).split())[:400]) from None
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def __str__(self) -> str:
        return f"OpenCV's dnn engine (cv2 {cv2.__version__}, CPU, {self.threads} threads)"

    @classmethod
    def for_model(cls, model) -> "OpenCVNet":
        """The OpenCV net of ``model`` (a Classifier from ``load_model``), read once and cached with the model.

        Uses ``model.model_files`` (the prototxt and weights model_check passed;
        generated weights stay on disk while the model lives).
        """
        cached = _cache.get(model)
        if cached is None:
            files = getattr(model, "model_files", None)
            if files is None:
                raise ModelError(f"{model.name} was not loaded from files (load_model or load_googlenet): "
                                 "OpenCV's dnn engine reads the prototxt and caffemodel themselves")
            cached = cls(files[0], files[1], input_shape=model.input_shape, n_classes=model.n_classes,
                         name=model.name)
            _cache[model] = cached
        return cached

    def probabilities(self, data: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 data (as ``model.preprocess`` makes, stacked) -> (N, K) float32 probabilities."""
        data = np.asarray(data)
        if data.ndim != 4 or data.shape[1:] != self.input_shape or not len(data):
            raise ModelError(f"OpenCV's net takes (N, {', '.join(map(str, self.input_shape))}) data "
                             f"(model.preprocess outputs stacked), not {data.shape}")
        if not np.isfinite(data).all():
            raise ModelError("image data contains NaN or infinite values")
        if cv2.getNumThreads() != self.threads:  # another caller changed OpenCV's global setting
            cv2.setNumThreads(self.threads)
        self.net.setInput(np.ascontiguousarray(data, np.float32))
        out = self.net.forward()
        return out.reshape(len(data), -1).astype(np.float32, copy=True)

    def _check_in_child(self) -> None:
        """Read the files and run one forward in a child process: OpenCV's complaint as a ModelError."""
        args = [sys.executable, "-c", _CHILD, str(self.prototxt), str(self.weights or ""), "1",
                *map(str, self.input_shape)]
        child = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OPENCV_LOG_LEVEL": "SILENT"})
        if child.returncode != 0:
            lines = child.stderr.strip().splitlines()
            reason = lines[-1] if child.returncode == 3 and lines else f"OpenCV died (exit code {child.returncode})"
            raise self._rejected(reason)
        classes = int(child.stdout.strip().splitlines()[-1])
        if classes != self.n_classes:
            raise self._rejected(f"it gives {classes} outputs where Caffe gives {self.n_classes} classes")

    def _rejected(self, reason: str) -> ModelError:
        weights = f" with {self.weights}" if self.weights else ""
        return ModelError(f"{self.name}: OpenCV's dnn engine (cv2 {cv2.__version__}) cannot run {self.prototxt}"
                          f"{weights}: {reason}. Caffe loads these files; predict with --engine caffe, "
                          "or replace the layer OpenCV names")
