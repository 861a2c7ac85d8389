"""Build and run tests/pooling_harness.cpp on the pooling loops of the patch series.

Unpacks the pinned Caffe sdist (from the set-up's cache) into a temporary folder,
applies docker/patches/series (CPU), cuts the static pooling helpers out of the
patched src/caffe/layers/pooling_layer.cpp, compiles the harness with g++ -O3 and
runs it: every case compared with Caffe's stock loop, bit for bit (exit 1 if one
differs); with --time, also ms per GoogLeNet pooling layer, stock loop against
patched.

    .venv/bin/python scripts/pooling_harness.py [--time] [--no-clones]

--no-clones compiles the plain SSE2 path (-DBREAKING_NN_NO_CLONES) instead of the
AVX-512F / AVX2 / SSE2 clones picked at load time.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from caffe_sdist import REPO, pinned_sdist, unpack


def patched_pooling_loops(src: Path) -> str:
    """The patched pooling_layer.cpp's static helpers: from 0005's loop to PoolingLayer's Forward_cpu."""
    text = (src / "src/caffe/layers/pooling_layer.cpp").read_text()
    start = text.index("// breaking-nn: row-at-a-time CPU pooling.")
    end = text.index("template <typename Dtype>\nvoid PoolingLayer<Dtype>::Forward_cpu")
    return text[start:end]


def build(work: Path, sdist: Path, *, clones: bool) -> Path:
    """Patch a fresh copy of ``sdist`` in ``work`` and compile the harness there; returns the binary."""
    src = unpack(sdist, work / "src")
    subprocess.run(["bash", str(REPO / "docker" / "apply-patches.sh"), "--src", str(src), "--device", "cpu"],
                   check=True, stdout=subprocess.DEVNULL)
    (work / "pooling_patched.inc").write_text(patched_pooling_loops(src))
    binary = work / "pooling_harness"
    flags = [] if clones else ["-DBREAKING_NN_NO_CLONES"]
    subprocess.run(["g++", "-O3", "-std=c++11", "-Wall", "-Werror", *flags, "-I", str(work),
                    str(REPO / "tests" / "pooling_harness.cpp"), "-o", str(binary)], check=True)
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time", action="store_true", help="also time GoogLeNet's pooling layers")
    parser.add_argument("--no-clones", action="store_true", help="the plain SSE2 path only")
    args = parser.parse_args()
    sdist, sha256 = pinned_sdist()
    if not sdist.is_file():
        print(f"pooling_harness: the pinned Caffe sdist is not at {sdist}: run `make setup` first", file=sys.stderr)
        return 2
    if hashlib.sha256(sdist.read_bytes()).hexdigest() != sha256:
        print(f"pooling_harness: {sdist} is not the pinned sdist (SHA-256 differs): delete it and run `make setup`",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        binary = build(Path(tmp), sdist, clones=not args.no_clones)
        return subprocess.run([str(binary), *(["--time"] if args.time else [])]).returncode


if __name__ == "__main__":
    sys.exit(main())
