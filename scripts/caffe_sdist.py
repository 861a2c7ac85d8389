"""The pinned Caffe sdist (docker/caffe-source.env) as scripts/setup.sh keeps it, for the tools that
patch a fresh copy of it: scripts/pooling_harness.py and tests/test_caffe_recipe.py.

    pinned_sdist()      its path in the set-up's cache (work/) and its pinned SHA-256 (hex)
    unpack(sdist, dest) the sdist's tree in dest, as docker/build-caffe.sh unpacks it
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from breaking_nn import paths

REPO = Path(__file__).resolve().parents[1]


def pinned_sdist() -> tuple[Path, str]:
    """(where the set-up keeps the pinned sdist, its pinned SHA-256); the file may be absent."""
    lines = (REPO / "docker" / "caffe-source.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z0-9_]+=", line))
    env = {key: value.strip('"') for key, value in env.items()}
    path = paths.cache_dir() / "work" / f"{env['CAFFE_SDIST_NAME']}-{env['CAFFE_SDIST_VERSION']}.tar.gz"
    return path, env["CAFFE_SDIST_SHA256"]


def unpack(sdist: Path, dest: Path) -> Path:
    """Unpack ``sdist`` into the new folder ``dest`` without its top folder; returns ``dest``."""
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(sdist), "-C", str(dest), "--strip-components=1"], check=True)
    return dest
