"""How much faster breaking_nn.attack.trick is than the blog's loop, measured in one run.

The blog's trick() runs two forward passes and one backward pass per step
(predict, then compute_gradient's own predict); breaking_nn.attack.trick reuses the
forward pass that feeds the gradient. Both run here on GoogLeNet's real
architecture (generated weights: speed does not depend on the weight values),
interleaved, and the script prints their ratio.

    .venv/bin/python scripts/benchmark.py [--steps 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import breaking_nn as bnn
from breaking_nn import attack, paths
from breaking_nn.blog_reference import blog_trick
from breaking_nn.generated import generate_weights


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = generate_weights(paths.googlenet_prototxt(), Path(tmp) / "g.caffemodel")
        model = bnn.load_googlenet(weights)
    data = model.preprocess(bnn.default_image())
    ours, blog = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
        blog.append(timed(lambda: blog_trick(model.net, data[None], bnn.KING_PENGUIN, args.steps)))
        ours.append(timed(lambda: attack.trick(model, data, bnn.KING_PENGUIN, n_steps=args.steps)))
    b, o = statistics.median(blog), statistics.median(ours)
    print(f"GoogLeNet, CPU, {args.steps} steps ({args.steps - 1} updates), median of {args.repeats}:")
    print(f"  blog's loop  (2 forward + 1 backward a step): {b:.2f} s")
    print(f"  attack.trick (1 forward + 1 backward a step): {o:.2f} s")
    print(f"  speed-up: {b / o:.2f}x")


if __name__ == "__main__":
    main()
