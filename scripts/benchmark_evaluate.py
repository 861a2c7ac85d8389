"""Does ``breaking-nn evaluate --batch N`` pay? Photos per minute and peak RSS for batch 1, 4 and 16, on open_nsfw.

Each (mode, batch) runs :func:`breaking_nn.evaluate.evaluate` in a fresh child
process (so its peak RSS, ``ru_maxrss``, is its own) on the same photos:
scikit-image's colour photos and their mirror images, one budget
(``--epsilon``, default 1 grey level, which rarely fools within the few
steps, so every photo takes the same ``--max-steps`` steps). The table gives
photos per minute, the ratio to batch 1 (> 1: batching pays) and the peak RSS.
The batches' rows are checked equal to batch 1's (batching must not change a
result).

    .venv/bin/python scripts/benchmark_evaluate.py [--batches 1,4,16] [--modes exact,robust] [--photos 16] [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from breaking_nn.blas_info import machine_summary


def write_photos(folder: Path, n: int) -> None:
    """``n`` PNGs: scikit-image's colour photos, then their mirror images, then upside down, ..."""
    from PIL import Image
    from skimage import data

    base = [np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB"))
            for name in ("astronaut", "chelsea", "coffee", "rocket", "camera")]
    for i in range(n):
        photo = base[i % len(base)]
        turn = i // len(base)
        photo = photo[:, ::-1] if turn % 2 else photo
        photo = photo[::-1] if turn % 4 >= 2 else photo
        Image.fromarray(np.ascontiguousarray(photo)).save(folder / f"photo{i:02d}.png")


def net_only(model_file: str, batches: list[int], rounds: int) -> None:
    """Seconds per image of one forward + backward pass at each batch size, rounds interleaved, in this process."""
    from breaking_nn.model import load_model

    model = load_model(model_file)
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 255, (max(batches), *model.input_shape)).astype(np.float32)
    times: dict[int, list[float]] = {b: [] for b in batches}
    for round_ in range(rounds):
        for batch in (batches if round_ % 2 == 0 else batches[::-1]):
            start = time.perf_counter()
            model.forward_backward_batch(data[:batch], [1] * batch)
            times[batch].append((time.perf_counter() - start) / batch)
    base = statistics.median(times[batches[0]])
    print("the net alone: one forward + backward pass (Classifier.forward_backward_batch), per image")
    for batch in batches:
        per = statistics.median(times[batch])
        print(f"  batch {batch:>3}: {1000 * per:8.1f} ms per image  ({base / per:.2f}x the images per second of batch "
              f"{batches[0]})")


def child(args: argparse.Namespace) -> None:
    """Run one evaluation and print one JSON line: seconds (the model's loading left out), photos, peak RSS."""
    from breaking_nn.evaluate import evaluate
    from breaking_nn.model import load_model

    model = load_model(args.model)  # loading is not timed
    start = time.perf_counter()
    table = evaluate(model, args.folder, 1, epsilons=(args.epsilon,), max_steps=args.max_steps,
                     robust=args.mode == "robust", seed=0 if args.mode == "robust" else None, batch=args.batch,
                     out=args.out)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "photos": len(table),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--modes", default="exact,robust")
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--epsilon", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the batches in turn (1, 4, 16, 16, 4, 1, ...): drift in machine load hits them alike; "
                             "each figure is the median")
    parser.add_argument("--model", default=None, help="model.toml (default: open_nsfw, fetched into the cache)")
    parser.add_argument("--net-only", action="store_true", help="time the net's batched pass alone, then stop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="exact", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import pandas as pd

    if args.model is None:
        from breaking_nn import paths
        from breaking_nn.open_nsfw import fetch_open_nsfw

        args.model = str(fetch_open_nsfw(paths.open_nsfw_dir()))
    batches = [int(b) for b in args.batches.split(",")]
    modes = args.modes.split(",")
    print(machine_summary())
    net_only(args.model, batches, max(3, args.rounds))
    if args.net_only:
        return
    print(f"evaluate --batch: "
          f"{args.photos} photos, epsilon {args.epsilon}, {args.max_steps} steps each; model {args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        write_photos(folder, args.photos)
        print(f"{'mode':<7} {'batch':>5} {'photos/min':>11} {'vs batch 1':>11} {'peak RSS':>10}")
        for mode in modes:
            rates: dict[int, list[float]] = {b: [] for b in batches}
            peaks: dict[int, float] = {b: 0.0 for b in batches}
            rows: dict[int, object] = {}
            for round_ in range(args.rounds):
                for batch in (batches if round_ % 2 == 0 else batches[::-1]):
                    out = Path(tmp) / f"{mode}-{batch}.csv"
                    out.unlink(missing_ok=True)
                    run = subprocess.run([sys.executable, __file__, "--child", "--mode", mode, "--batch", str(batch),
                                          "--folder", str(folder), "--out", str(out), "--model", args.model,
                                          "--epsilon", str(args.epsilon), "--max-steps", str(args.max_steps)],
                                         capture_output=True, text=True)
                    if run.returncode != 0:
                        print(f"{mode:<7} {batch:>5}  failed: {run.stderr.strip().splitlines()[-1:]}")
                        continue
                    result = json.loads(run.stdout.strip().splitlines()[-1])
                    rates[batch].append(60 * result["photos"] / result["seconds"])
                    peaks[batch] = max(peaks[batch], result["peak_rss_mb"] / 1024)
                    rows[batch] = pd.read_csv(out).drop(columns=["seconds"])
            base = statistics.median(rates[batches[0]]) if rates[batches[0]] else float("nan")
            for batch in batches:
                if not rates[batch]:
                    continue
                rate = statistics.median(rates[batch])
                same = "" if batches[0] not in rows or rows[batch].equals(rows[batches[0]]) else "  ROWS DIFFER"
                print(f"{mode:<7} {batch:>5} {rate:>11.2f} {rate / base:>10.2f}x {peaks[batch]:>8.2f} GB{same}",
                      flush=True)


if __name__ == "__main__":
    main()
