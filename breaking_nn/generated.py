"""Generated (random, deterministic) weights, to exercise a model without its real ones.

Predictions from generated weights mean nothing. They let the tests, the
notebook and the figures run end to end on the real GoogLeNet architecture
where the 53.5 MB trained weights cannot be downloaded.

Command line::

    python -m breaking_nn.generated OUT.caffemodel [--prototxt P] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Union

import numpy as np

from . import paths
from .atomic import atomic_path
from .caffe_runtime import import_caffe

WARNING = ("These are GENERATED weights, not BVLC's trained ones: every prediction, "
           "probability and figure below is meaningless, only the code path is real.")


def generate_weights(prototxt: Union[str, Path], out: Union[str, Path], *, seed: int = 0) -> Path:
    """Write a caffemodel for ``prototxt`` with seeded random weights; return its path.

    Each weight blob is drawn from N(0, 1/fan_in) (fan_in = product of the
    blob's dimensions after the first), each bias is zero. Same seed, same file.
    The file is written to a temporary name and renamed into place.
    """
    caffe = import_caffe()
    caffe.set_mode_cpu()
    net = caffe.Net(str(prototxt), caffe.TEST)
    rng = np.random.default_rng(seed)
    for layer_name in net.params:
        for blob in net.params[layer_name]:
            shape = blob.data.shape
            if len(shape) == 1:
                blob.data[...] = 0.0
            else:
                fan_in = int(np.prod(shape[1:]))
                blob.data[...] = rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)
    out = Path(out)
    with atomic_path(out) as part:
        net.save(str(part))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point: write generated weights for a prototxt."""
    parser = argparse.ArgumentParser(prog="python -m breaking_nn.generated", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="caffemodel file to write")
    parser.add_argument("--prototxt", type=Path, default=None, help="network definition (default: GoogLeNet's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = generate_weights(args.prototxt or paths.googlenet_prototxt(), args.out, seed=args.seed)
    print(f"{path}: generated weights (seed {args.seed}). {WARNING}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
