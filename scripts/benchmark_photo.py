"""Where a robust attack step's time goes on 1, 12 and 48 MP photos: network passes against photo-side work.

For each size, a photo is made from scikit-image's Chelsea (Pillow bicubic
upscale, +-3 grey levels of noise, JPEG 90) and attacked in a fresh process,
as `breaking-nn attack` does it (``read_photo``, then
:class:`~breaking_nn.photo_attack.AttackRun` with the defaults: robust,
:data:`~breaking_nn.eot.DEFAULT_SAMPLES` pipelines a step, seed 0) on Yahoo's
open_nsfw (fetched as the tests do), with an unreachable goal so that every
step is a full one. Each step is split, in the same run:

* network: the forward and backward passes (:func:`~breaking_nn.eot.passes`);
* photo side: the pipelines' data (:meth:`~breaking_nn.photo_attack.AttackRun.data`),
  then the gradient sent back through their adjoints and the sign step
  (:meth:`~breaking_nn.photo_attack.AttackRun.feed`).

The first step is a warm-up (Caffe's allocations) and not counted; the figures
are sums over the ``--steps`` after it. Then one complete suite check
(:func:`~breaking_nn.suite.check_suite`) of the attacked pixels is timed, and
the process's peak RSS (``ru_maxrss``: the photo, the model, the attack and the
check) is read. Last, on open_nsfw's (3, 224, 224) data, one batched forward
and backward pass of k images against k single passes (k = the default
samples), interleaved, medians. Prints the CPU, the BLAS kernel and the
machine's load average before and after.

    .venv/bin/python scripts/benchmark_photo.py [--sizes 1,12,48] [--steps 3] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = {1: (1152, 864), 12: (4032, 3024), 48: (8064, 6048)}  # megapixels: (width, height)


def make_photo(folder: Path, megapixels: int) -> Path:
    """chelsea upscaled to SIZES[megapixels], +-3 grey levels of noise, saved as JPEG 90."""
    from skimage import data

    width, height = SIZES[megapixels]
    path = folder / f"chelsea-{megapixels}mp.jpg"
    big = np.asarray(Image.fromarray(data.chelsea()).resize((width, height), Image.BICUBIC)).astype(np.int16)
    big += np.random.default_rng(megapixels).integers(-3, 4, size=big.shape, dtype=np.int16)
    Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def model_file() -> Path:
    from breaking_nn import paths
    from breaking_nn.open_nsfw import fetch_open_nsfw

    return fetch_open_nsfw(paths.open_nsfw_dir())


def measure(photo_path: Path, steps: int) -> dict:
    """In this process: the split of ``steps`` attack steps (after one warm-up), one suite check, peak RSS."""
    import breaking_nn as bnn
    from breaking_nn.eot import passes
    from breaking_nn.images import read_photo
    from breaking_nn.photo_attack import AttackRun
    from breaking_nn.suite import check_suite

    model = bnn.load_model(model_file())
    pixels = read_photo(photo_path).pixels
    run = AttackRun(model, pixels, 1, until=0.999999, max_steps=steps + 2)
    split = {"data": 0.0, "network": 0.0, "adjoint": 0.0}
    for step in range(steps + 1):
        started = time.perf_counter()
        pipelines = run.pipelines()
        data = run.data(pipelines)
        made = time.perf_counter()
        probs, grads = passes(model, data, [run.label] * len(pipelines))
        passed = time.perf_counter()
        run.feed(probs, grads)
        fed = time.perf_counter()
        if step > 0:
            split["data"] += made - started
            split["network"] += passed - made
            split["adjoint"] += fed - passed
    run.workspace.release()  # as AttackRun does before each check
    started = time.perf_counter()
    suite = check_suite(model, run.current, target=1, original_class=run.original_class)
    check_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"steps": steps, **split, "check": check_s, "members": suite.n_total, "peak_mb": peak_mb,
            "samples": run.samples}


def measure_in_child(photo_path: Path, steps: int) -> dict:
    """:func:`measure` in a fresh Python process (its own peak RSS), as JSON on its last stdout line."""
    command = [sys.executable, __file__, "--child", str(photo_path), "--steps", str(steps)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the measurement of {photo_path.name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def batch_ratio(model, k: int, repeats: int) -> tuple[float, float]:
    """Median seconds of one batch of k forward+backward passes and of k single ones, interleaved."""
    rng = np.random.default_rng(0)
    data = (rng.random((k, *model.input_shape)) * 255 - 117).astype(np.float32)
    batched, single = [], []
    model.forward_backward_batch(data, [1] * k)  # warm-up (allocations)
    for _ in range(repeats):
        start = time.perf_counter()
        model.forward_backward_batch(data, [1] * k)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        for image in data:
            model.forward_backward(image, 1)
        single.append(time.perf_counter() - start)
    return statistics.median(batched), statistics.median(single)


def load_text() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,12,48", help="megapixels to try, of 1, 12, 48 (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=3, help="steps timed after the warm-up (default: 3)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the batch comparison (default: 5)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.steps)))
        return 0

    import breaking_nn as bnn
    from breaking_nn.blas_info import machine_summary
    from breaking_nn.eot import DEFAULT_SAMPLES

    print(f"robust attack steps ({DEFAULT_SAMPLES} pipelines a step), open_nsfw; {machine_summary()}")
    print(f"before: {load_text()}")
    print(f"{'photo':>6} {'pixels':>10} {'network':>8} {'data':>6} {'adjoint':>8} {'photo side':>10} "
          f"{'photo/network':>13} {'suite check':>14} {'peak RSS':>9}   (seconds a step)")
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in [int(s) for s in args.sizes.split(",")]:
            photo = make_photo(Path(tmp), megapixels)
            m = measure_in_child(photo, args.steps)
            n = m["steps"]
            network, data, adjoint = m["network"] / n, m["data"] / n, m["adjoint"] / n
            width, height = SIZES[megapixels]
            print(f"{megapixels:>4}MP {width:>4}x{height:<5} {network:>8.2f} {data:>6.2f} {adjoint:>8.2f} "
                  f"{data + adjoint:>10.2f} {(data + adjoint) / network:>12.2f}x "
                  f"{m['check']:>6.2f} s ({m['members']:>2}) {m['peak_mb'] / 1024:>6.2f} GB", flush=True)
    model = bnn.load_model(model_file())
    batched, single = batch_ratio(model, DEFAULT_SAMPLES, args.repeats)
    print(f"one batch of {DEFAULT_SAMPLES} forward+backward passes: {batched * 1e3:.0f} ms; "
          f"{DEFAULT_SAMPLES} single passes: {single * 1e3:.0f} ms; batch / single = {batched / single:.2f}")
    print(f"after: {load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
