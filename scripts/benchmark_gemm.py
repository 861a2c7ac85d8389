"""How far GoogLeNet's convolutions are from the GEMM's peak on this machine, in one run.

Caffe's CPU convolution is im2col (skipped for 1x1 kernels) plus one SGEMM per
image: forward C[M, N] = W[M, K] . col[K, N] and, for the data-only backward,
col_diff[K, N] = W^T[K, M] . top_diff[M, N], with M = output channels, K =
input channels x kernel area and N = output pixels. This script calls the very
OpenBLAS that libcaffe links (Debian's libopenblas.so.0, through ctypes), with
its default threads, for:

  peak   a large square SGEMM (2048^3), the most this BLAS does on these cores;
  shapes every convolution's two GEMMs at GoogLeNet's real sizes (batch 1),
  caffe  Caffe's own Convolution layers, forward and data-only backward
         (Classifier.time_layers: GEMM plus im2col / col2im and the bias).

Each figure is the median of --repeats; GFLOP/s counts 2 flops per multiply-add.

    .venv/bin/python scripts/benchmark_gemm.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import breaking_nn as bnn
from breaking_nn import paths
from breaking_nn.blas_info import machine_summary
from breaking_nn.generated import generate_weights

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def load_openblas() -> ctypes.CDLL:
    """The OpenBLAS that libcaffe links: Debian's libopenblas.so.0 (the alternatives' choice)."""
    blas = ctypes.CDLL("libopenblas.so.0")
    f = ctypes.c_float
    p = ctypes.POINTER(ctypes.c_float)
    i = ctypes.c_int
    blas.cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    blas.cblas_sgemm.restype = None
    return blas


def sgemm_call(blas, m: int, n: int, k: int, *, trans_a: bool = False, beta: float = 0.0):
    """A call of C[m, n] = op(A) . B[k, n] + beta C, op(A) = A[m, k] or A[k, m]^T, on its own random matrices."""
    rng = np.random.default_rng(m * 7 + n * 3 + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.zeros((m, n), np.float32)
    ptr = lambda x: x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))  # noqa: E731
    args = (ROW_MAJOR, TRANS if trans_a else NO_TRANS, NO_TRANS, m, n, k, 1.0,
            ptr(a), m if trans_a else k, ptr(b), n, beta, ptr(c), n)
    return lambda: blas.cblas_sgemm(*args), (a, b, c)


def median_seconds(calls, repeats: int) -> float:
    """Median over ``repeats`` of the time to make every call in turn (after one warm-up round)."""
    calls = [call for call, _ in calls]  # the matrices stay alive in the caller's list
    for call in calls:
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for call in calls:
            call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_shapes(model) -> list[tuple[str, int, int, int, int]]:
    """(name, groups, M, N, K) per Convolution layer of the loaded net (batch 1)."""
    net = model.net
    shapes = []
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type != "Convolution":
            continue
        weights = net.params[name][0].data  # (out channels, in channels / group, kh, kw)
        top = net.blobs[net.top_names[name][0]].data  # (1, out channels, H, W)
        bottom_channels = net.blobs[net.bottom_names[name][0]].data.shape[1]
        groups = bottom_channels // weights.shape[1]
        m = weights.shape[0] // groups
        k = weights.shape[1] * weights.shape[2] * weights.shape[3]
        shapes.append((name, groups, m, top.shape[2] * top.shape[3], k))
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    blas = load_openblas()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", f"default ({os.cpu_count()} CPUs)")
    print(f"OpenBLAS: libopenblas.so.0, threads {threads}; {machine_summary()}")

    peak_s = median_seconds([sgemm_call(blas, 2048, 2048, 2048)], args.repeats)
    peak = 2 * 2048 ** 3 / peak_s / 1e9
    print(f"peak: SGEMM 2048^3 in {peak_s * 1e3:.1f} ms = {peak:.1f} GFLOP/s")

    with tempfile.TemporaryDirectory() as tmp:
        weights = generate_weights(paths.googlenet_prototxt(), Path(tmp) / "generated.caffemodel")
        model = bnn.load_googlenet(weights)
        data = model.preprocess(bnn.default_image())
        layers = model.time_layers(data, bnn.KING_PENGUIN, args.repeats)
        shapes = conv_shapes(model)
    caffe_fwd = sum(f for _, kind, f, _ in layers if kind == "Convolution")
    caffe_bwd = sum(b for _, kind, _, b in layers if kind == "Convolution")

    # Each convolution's GEMMs on matrices of their own, all in turn (as a pass runs them):
    # groups x (forward, data-only backward), and the bias, which Caffe adds as a GEMM with K = 1.
    flops = sum(groups * 2 * m * n * k for _, groups, m, n, k in shapes)
    fwd_s = median_seconds([sgemm_call(blas, m, n, k) for _, groups, m, n, k in shapes
                            for _ in range(groups)], args.repeats)
    bwd_s = median_seconds([sgemm_call(blas, k, n, m, trans_a=True) for _, groups, m, n, k in shapes
                            for _ in range(groups)], args.repeats)
    bias_s = median_seconds([sgemm_call(blas, m * groups, n, 1, beta=1.0) for _, groups, m, n, k in shapes],
                            args.repeats)
    print(f"GoogLeNet's {len(shapes)} convolutions: {flops / 1e9:.2f} GFLOP forward, "
          f"{flops / 1e9:.2f} GFLOP data-only backward (batch 1)")
    at_peak = flops / (peak * 1e9)
    rows = [("at the 2048^3 peak rate", at_peak, at_peak),
            ("their GEMMs alone, at their shapes", fwd_s, bwd_s),
            ("Caffe's Convolution layers", caffe_fwd, caffe_bwd)]
    print(f"  {'':36s} {'forward':>9s} {'backward':>9s}   (ms; GFLOP/s)")
    for label, f, b in rows:
        print(f"  {label:36s} {f * 1e3:8.1f}  {b * 1e3:8.1f}   "
              f"({flops / f / 1e9:.1f}; {flops / b / 1e9:.1f})")
    print(f"  the bias, as Caffe adds it (GEMM, K = 1, beta = 1): {bias_s * 1e3:.1f} ms forward")
    print(f"Caffe's convolutions run at {flops * 2 / (caffe_fwd + caffe_bwd) / 1e9:.1f} GFLOP/s, "
          f"{(flops * 2 / (caffe_fwd + caffe_bwd)) / (peak * 1e9):.0%} of the peak; their GEMMs alone at "
          f"{flops * 2 / (fwd_s + bwd_s) / 1e9:.1f} GFLOP/s ({(flops * 2 / (fwd_s + bwd_s)) / (peak * 1e9):.0%}).")


if __name__ == "__main__":
    main()
