"""Seconds per step and peak memory of `breaking-nn attack` on 1, 12 and 48 MP photos, and the batch's cost.

For each size, a photo is made from scikit-image's Chelsea (Pillow bicubic
upscale, +-3 grey levels of noise, JPEG 90) and attacked by the command line,
in the default robust mode, on Yahoo's open_nsfw (fetched as the tests do):

* peak RSS of the CLI process, from GNU time (``/usr/bin/time -f %M``);
* seconds per step: two runs, ``--max-steps 1`` and ``--max-steps 3`` with an
  unreachable ``--until``, so (t3 - t1) / 2 is the cost of two steps alone.

Then, on open_nsfw's (3, 224, 224) data: one batched forward and backward pass
of k images against k single passes (k = the default samples), interleaved,
medians; the ratio says what batching buys on this machine.

    .venv/bin/python scripts/benchmark_photo.py [--sizes 1,12,48] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = {1: (1152, 864), 12: (4032, 3024), 48: (8064, 6048)}  # megapixels: (width, height)
TIME = "/usr/bin/time"


def make_photo(folder: Path, megapixels: int) -> Path:
    from skimage import data

    width, height = SIZES[megapixels]
    path = folder / f"chelsea-{megapixels}mp.jpg"
    big = np.asarray(Image.fromarray(data.chelsea()).resize((width, height), Image.BICUBIC)).astype(np.int16)
    big += np.random.default_rng(megapixels).integers(-3, 4, size=big.shape, dtype=np.int16)
    Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def run_cli(photo: Path, model_file: Path, out: Path, steps: int) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of one `breaking-nn attack` run of ``steps`` steps."""
    command = [TIME, "-f", "@peak %M", sys.executable, "-m", "breaking_nn", "attack", str(photo), "--target", "1",
               "--model", str(model_file), "--out", str(out), "--force", "--max-steps", str(steps),
               "--until", "0.999999"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = re.search(r"@peak (\d+)", result.stderr)
    if result.returncode not in (0, 3) or peak is None:
        raise SystemExit(f"breaking-nn attack failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds, int(peak.group(1)) // 1024


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,12,48", help="megapixels to try, of 1, 12, 48 (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the batch comparison (default: 5)")
    args = parser.parse_args(argv)
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} (GNU time) is missing: sudo apt-get install time")

    import breaking_nn as bnn
    from breaking_nn.blas_info import machine_summary
    from breaking_nn.eot import DEFAULT_SAMPLES
    from breaking_nn.open_nsfw import fetch_open_nsfw

    cache = Path(os.environ.get("BREAKING_NN_CACHE") or Path.home() / ".cache" / "breaking-nn")
    model_file = fetch_open_nsfw(cache / "models" / "open_nsfw")
    print(f"breaking-nn attack, robust ({DEFAULT_SAMPLES} pipelines a step), open_nsfw; {machine_summary()}")
    print(f"{'photo':>8} {'pixels':>12} {'s/step':>8} {'peak RSS':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for megapixels in [int(s) for s in args.sizes.split(",")]:
            photo = make_photo(folder, megapixels)
            one, peak_one = run_cli(photo, model_file, folder / "out.png", 1)
            three, peak_three = run_cli(photo, model_file, folder / "out.png", 3)
            width, height = SIZES[megapixels]
            print(f"{megapixels:>6}MP {width:>5}x{height:<6} {(three - one) / 2:>8.2f} "
                  f"{max(peak_one, peak_three):>6} MB", flush=True)
    model = bnn.load_model(model_file)
    batched, single = batch_ratio(model, DEFAULT_SAMPLES, args.repeats)
    print(f"one batch of {DEFAULT_SAMPLES} forward+backward passes: {batched * 1e3:.0f} ms; "
          f"{DEFAULT_SAMPLES} single passes: {single * 1e3:.0f} ms; batch / single = {batched / single:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
