"""Download and verify BVLC GoogLeNet's weights (``bvlc_googlenet.caffemodel``).

A download (pooch, the hash-checked download library of scikit-image and SciPy)
goes to a temporary file beside the destination, is checked against its SHA-1,
and only then moved into place: the destination never holds a partial or
unverified file.

Command line::

    python -m breaking_nn.weights [--dest PATH] [--url URL]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import requests

from . import paths
from .errors import WeightsError
from .network import request_problem


@dataclass(frozen=True)
class WeightsFile:
    """Where a weights file comes from and what it must be: size in bytes, SHA-1 hex.

    ``url`` is tried first, then each of ``mirrors`` in order; every source must
    serve the very same file (same size and SHA-1).
    """

    url: str
    size: int
    sha1: str
    mirrors: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Every source, in the order they are tried: ``url``, then the mirrors."""
        return (self.url, *self.mirrors)


GOOGLENET = WeightsFile(
    url="http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel",
    size=53_533_754,
    sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204",
    # BVLC's old host is often down; these two serve the same file (same SHA-1).
    mirrors=(
        "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/caffe/models/bvlc_googlenet/bvlc_googlenet.caffemodel",
        "https://www.deepdetect.com/downloads/platform/pretrained/caffe/googlenet/bvlc_googlenet.caffemodel",
    ),
)


def how_to_get(dest: Path, spec: WeightsFile = GOOGLENET) -> str:
    """The instructions printed wherever the weights are missing: shell and Python both."""
    return (
        f"Get them with `make weights` (or `python -m breaking_nn.weights --dest {dest}`), "
        f"or download {spec.url} by hand ({spec.size:,} bytes, SHA-1 {spec.sha1}) "
        f"and save it as {dest}, or set BREAKING_NN_WEIGHTS to the path of your copy. "
        "To try the code without them (meaningless predictions): load_googlenet(\"generated\") in Python, "
        "--weights generated on the command line."
    )


def sha1_of(path: Union[str, Path]) -> str:
    """SHA-1 hex digest of a file's contents."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_verified(path: Union[str, Path], spec: WeightsFile = GOOGLENET) -> bool:
    """True if ``path`` exists with the expected size and SHA-1."""
    path = Path(path)
    return path.is_file() and path.stat().st_size == spec.size and sha1_of(path) == spec.sha1


def download_weights(
    dest: Optional[Union[str, Path]] = None,
    *,
    spec: WeightsFile = GOOGLENET,
    url: Optional[str] = None,
    progress: bool = True,
    timeout: float = 30.0,
    hint: Optional[str] = None,
) -> Path:
    """Download ``spec`` (GoogLeNet by default) to ``dest`` and return its path.

    ``dest`` defaults to :func:`breaking_nn.paths.googlenet_weights`. The
    sources are tried in order (``spec.urls``: its URL, then its mirrors) until
    one serves the right file; ``url`` replaces them all with that one. An
    already verified file is kept as it is. Each download (pooch) goes to a
    temporary file beside ``dest``, is checked against ``spec.sha1`` and only
    then moved into place. Raises :class:`WeightsError` when no source gives
    the file, naming every URL tried and why it failed, and leaving nothing at
    ``dest`` that was not there before; its message ends with ``hint``
    (default: how to get GoogLeNet's weights).
    """
    dest = Path(dest) if dest is not None else paths.googlenet_weights()
    urls = (url,) if url else spec.urls
    hint = hint or how_to_get(dest, spec)
    if is_verified(dest, spec):
        return dest
    failures = []
    for source in urls:
        failure = _fetch(source, dest, spec, progress=progress, timeout=timeout)
        if failure is None:
            return dest
        failures.append(f"{source}: {failure}")
    if len(failures) == 1:
        raise WeightsError(f"could not download {failures[0]}. Nothing was saved. {hint}")
    tried = "; ".join(f"({i}) {f}" for i, f in enumerate(failures, 1))
    raise WeightsError(f"could not download {dest.name} from any of its {len(failures)} sources, tried in order: "
                       f"{tried}. Nothing was saved. {hint}")


def _fetch(url: str, dest: Path, spec: WeightsFile, *, progress: bool, timeout: float) -> Optional[str]:
    """Download ``url`` to ``dest`` through pooch, verified: None, or why it failed (one phrase)."""
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    try:
        pooch.retrieve(url, known_hash=f"sha1:{spec.sha1}", fname=dest.name, path=dest.parent, downloader=downloader)
    except requests.HTTPError as exc:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    except requests.RequestException as exc:
        # the URL leads the line; the caller ends the sentence
        return network_failure(url, exc).removeprefix(f"could not download {url}: ").rstrip(".")
    except ValueError as exc:  # pooch: the hash does not match
        return (f"failed its SHA-1 check ({exc}); expected {spec.sha1}: the file is corrupt or not the one "
                "expected")
    return None


def network_failure(url: str, exc: requests.RequestException) -> str:
    """What went wrong with a download, in words (breaking_nn.network), and what to do."""
    problem = request_problem(url, exc)
    again = "" if problem.startswith("no connection") else " Try again."
    return f"could not download {url}: {problem}.{again}"


def resolve_weights(weights: Optional[Union[str, Path]] = None, *, download: bool = True) -> Path:
    """The GoogLeNet weights file to load, downloading it if allowed and missing.

    An explicit ``weights`` path must exist. Otherwise the default location
    (``BREAKING_NN_WEIGHTS``, else ``models/bvlc_googlenet/``) is used, and
    the file is downloaded there when ``download`` is true.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist. {how_to_get(path)}")
        return path
    path = paths.googlenet_weights()
    if path.is_file():
        return path
    if not download:
        raise WeightsError(f"GoogLeNet's weights are not at {path}. {how_to_get(path)}")
    return download_weights(path)


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point: download and verify the GoogLeNet weights."""
    parser = argparse.ArgumentParser(prog="python -m breaking_nn.weights", description=__doc__.split("\n")[0])
    parser.add_argument("--dest", type=Path, default=None,
                        help="where to save the file (default: %(default)s -> BREAKING_NN_WEIGHTS or models/bvlc_googlenet/)")
    parser.add_argument("--url", default=None, help=f"download from this URL instead of {GOOGLENET.url}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        path = download_weights(args.dest, url=args.url, progress=not args.quiet)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: verified (SHA-1 {GOOGLENET.sha1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
