"""Milliseconds per attack step: the blog's loop, breaking_nn.attack.trick and PyTorch, in one run.

Per step, on GoogLeNet's real architecture (generated weights: speed does not
depend on the weight values), batch 1, CPU:

  (a) the blog's loop: 2 forward passes + 1 stock backward (weight gradients too);
  (b) breaking_nn.attack.trick: 1 forward + 1 data-only backward;
  (c) where PyTorch is importable: the same architecture in PyTorch
      (scripts/torch_googlenet.py) carrying the very same weights, its
      probabilities checked equal (<= 1e-4) first, forward + backward to the
      input, with the same thread count.

Rounds are interleaved (drift in machine load hits all three); each figure is
the median over rounds. Then the per-layer-type forward / backward table.

    .venv/bin/python scripts/benchmark.py [--steps 10] [--repeats 5]
"""
from __future__ import annotations

import argparse
import collections
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import breaking_nn as bnn
from breaking_nn import attack, paths
from breaking_nn.blas_info import machine_summary
from breaking_nn.blog_reference import blog_trick
from breaking_nn.generated import generate_weights

TORCH_HINT = ("PyTorch is not importable, so (c) is skipped. For a CPU build in a separate environment:\n"
              "  python3 -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch "
              "--index-url https://download.pytorch.org/whl/cpu\n"
              "  PYTHONPATH=/tmp/torch-venv/lib/python3.X/site-packages make benchmark")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def torch_trick(torch, net, data: np.ndarray, target: int, n_steps: int) -> np.ndarray:
    """The same loop as trick() in PyTorch: forward, backward to the input, sign step."""
    image = data
    for _ in range(n_steps - 1):
        x = torch.from_numpy(image[None].astype(np.float32)).requires_grad_(True)
        probs = net(x)
        probs[0, target].backward()
        image = image + np.sign(x.grad[0].numpy()) * 0.9 / n_steps
    return image


def load_torch(model):
    """(torch module, PyTorch GoogLeNet with model's weights) or None (hint printed)."""
    try:
        import torch
    except ImportError:
        print(TORCH_HINT)
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from torch_googlenet import from_caffe_params

    torch.set_num_threads(os.cpu_count() or 1)  # OpenBLAS's default for Caffe: every core
    return torch, from_caffe_params(model.net.params)


def check_same_probabilities(torch, tnet, model, data: np.ndarray) -> float:
    """Largest |P_torch - P_caffe| over the 1000 classes; exits if above 1e-4."""
    with torch.no_grad():
        ours = tnet(torch.from_numpy(data[None].astype(np.float32)))[0].numpy()
    diff = float(np.abs(ours - model.forward(data)).max())
    if diff > 1e-4:
        sys.exit(f"benchmark: PyTorch's GoogLeNet disagrees with Caffe's (max |dP| = {diff:.2e} > 1e-4)")
    return diff


def layer_table(fast, stock, data: np.ndarray, target: int, repeats: int) -> str:
    """Per layer type: forward, data-only backward (b), stock backward (a); ms, summed over layers."""
    rows = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for (_, kind, f, b), (_, _, _, b_stock) in zip(fast.time_layers(data, target, repeats),
                                                    stock.time_layers(data, target, repeats)):
        rows[kind][0] += f * 1e3
        rows[kind][1] += b * 1e3
        rows[kind][2] += b_stock * 1e3
    lines = [f"  {'layer type':14s} {'forward':>8s} {'backward':>9s} {'stock bwd':>10s}   (ms)"]
    for kind, (f, b, bs) in sorted(rows.items(), key=lambda kv: -(kv[1][0] + kv[1][1])):
        lines.append(f"  {kind:14s} {f:8.1f} {b:9.1f} {bs:10.1f}")
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    lines.append(f"  {'total':14s} {total[0]:8.1f} {total[1]:9.1f} {total[2]:10.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = generate_weights(paths.googlenet_prototxt(), Path(tmp) / "g.caffemodel")
        model = bnn.load_googlenet(weights)  # data-only backward (breaking_nn's default)
        stock = bnn.load_googlenet(weights, weight_gradients=True)  # Caffe's stock backward
    data = model.preprocess(bnn.default_image())
    target = bnn.KING_PENGUIN
    torch_side = load_torch(model)
    if torch_side:
        torch, tnet = torch_side
        diff = check_same_probabilities(torch, tnet, model, data)
    runs = {"a": [], "b": [], "c": []}
    for _ in range(args.repeats):  # interleaved rounds
        runs["a"].append(timed(lambda: blog_trick(stock.net, data[None], target, args.steps)))
        runs["b"].append(timed(lambda: attack.trick(model, data, target, n_steps=args.steps)))
        if torch_side:
            runs["c"].append(timed(lambda: torch_trick(torch, tnet, data, target, args.steps)))
    ms = {k: statistics.median(v) * 1e3 / (args.steps - 1) for k, v in runs.items() if v}
    print(f"GoogLeNet, batch 1, CPU ({os.cpu_count()} cores, {platform.platform()}), {datetime.date.today()}; "
          f"{args.steps - 1} steps a round, median of {args.repeats} interleaved rounds; "
          f"load average {os.getloadavg()[0]:.1f}:")
    print(f"  {machine_summary()}")
    print(f"  (a) blog's loop (2 forward + 1 stock backward): {ms['a']:7.1f} ms/step")
    print(f"  (b) breaking_nn.attack.trick (1 forward + 1 data-only backward): {ms['b']:7.1f} ms/step")
    if torch_side:
        print(f"  (c) PyTorch {torch.__version__}, {torch.get_num_threads()} threads, same weights "
              f"(max |dP| {diff:.1e}): {ms['c']:7.1f} ms/step")
    print(f"  (b)/(a) = {ms['b'] / ms['a']:.2f}" + (f"   (b)/(c) = {ms['b'] / ms['c']:.2f}" if torch_side else ""))
    print("Per layer type, one forward / backward pass, median of 5 (Caffe):")
    print(layer_table(model, stock, data, target, 5))


if __name__ == "__main__":
    main()
