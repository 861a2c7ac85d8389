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
from urllib.parse import urlparse

import requests

from . import paths
from .errors import WeightsError


@dataclass(frozen=True)
class WeightsFile:
    """Where a weights file comes from and what it must be: size in bytes, SHA-1 hex."""

    url: str
    size: int
    sha1: str


GOOGLENET = WeightsFile(
    url="http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel",
    size=53_533_754,
    sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204",
)


def how_to_get(dest: Path, spec: WeightsFile = GOOGLENET) -> str:
    """The instructions printed wherever the weights are missing."""
    return (
        f"Get them with `make weights` (or `python -m breaking_nn.weights --dest {dest}`), "
        f"or download {spec.url} by hand ({spec.size:,} bytes, SHA-1 {spec.sha1}) "
        f"and save it as {dest}, or set BREAKING_NN_WEIGHTS to the path of your copy."
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

    ``dest`` defaults to :func:`breaking_nn.paths.googlenet_weights`; ``url``
    overrides ``spec.url`` (a mirror). An already verified file is kept as it
    is. The download (pooch) goes to a temporary file beside ``dest``, is
    checked against ``spec.sha1`` and only then moved into place. Raises
    :class:`WeightsError` on any failure, leaving nothing at ``dest`` that was
    not there before; its message ends with ``hint`` (default: how to get
    GoogLeNet's weights).
    """
    import pooch

    dest = Path(dest) if dest is not None else paths.googlenet_weights()
    url = url or spec.url
    hint = hint or how_to_get(dest, spec)
    if is_verified(dest, spec):
        return dest
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    try:
        pooch.retrieve(url, known_hash=f"sha1:{spec.sha1}", fname=dest.name, path=dest.parent, downloader=downloader)
    except requests.HTTPError as exc:
        response = exc.response
        raise WeightsError(f"could not download {url}: HTTP {response.status_code} {response.reason}. "
                           f"Nothing was saved. {hint}") from None
    except requests.RequestException as exc:
        raise WeightsError(f"{network_failure(url, exc)} Nothing was saved. {hint}") from None
    except ValueError as exc:  # pooch: the hash does not match
        raise WeightsError(f"download of {url} failed its SHA-1 check ({exc}); expected {spec.sha1}: the file is "
                           f"corrupt or not the one expected. Nothing was saved. {hint}") from None
    return dest


def network_failure(url: str, exc: requests.RequestException) -> str:
    """What went wrong with a download, in words: no connection (DNS, refused), a time-out, or a cut-off body."""
    host = urlparse(url).netloc or url
    if isinstance(exc, requests.Timeout):
        return f"could not download {url}: {host} did not answer in time ({type(exc).__name__}). Try again."
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return (f"could not download {url}: no connection to {host} (no network, the name does not resolve, or "
                f"the server refused): {type(exc).__name__}: {exc}.")
    return f"could not download {url}: the download broke off and is incomplete ({type(exc).__name__}: {exc}). Try again."


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
