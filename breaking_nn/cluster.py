"""Shard :func:`breaking_nn.evaluate.evaluate` over a Dask cluster (``--scheduler tcp://host:8786``).

Imported only when a scheduler is given; needs ``dask[distributed]``
(``pip install breaking-nn[cluster]``).

* The model's files are checked here, by
  :func:`~breaking_nn.model_check.check_model_files`, before any worker
  touches Caffe; then their bytes travel in a :class:`ModelPlugin`, which
  Dask also installs on workers that join (or restart) later.
* Each worker process loads the model once, on its first task, from a
  temporary copy of those bytes: no shared file system is needed.
* Workers receive the photos' bytes, not paths, a few tasks at a time.
* Caffe nets are not thread-safe: run workers with ``--nthreads 1``. A worker
  with more threads still gives right answers (its tasks take turns on its
  one model, under a lock), just no faster.
* A task whose worker dies is rerun elsewhere by the scheduler; the rows
  stream back to the caller (``accept``) as tasks finish.
"""
from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .errors import EvaluateError
from .evaluate import EvaluateSettings, evaluate_photos
from .labels import Labels
from .model_check import check_model_files
from .model_file import ModelSpec
from .weights import download_weights

try:
    import distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the optional extra is missing
    raise EvaluateError("--scheduler needs Dask: pip install 'breaking-nn[cluster]' (dask[distributed]), "
                        "or run without --scheduler") from None

#: Seconds to wait for the scheduler before giving up.
CONNECT_TIMEOUT_S = 5
PLUGIN_NAME = "breaking-nn-model"


@dataclass(frozen=True)
class ModelPackage:
    """A model's files as bytes, for workers without the client's file system.

    ``digest``: SHA-1 over everything, naming this model on the workers.
    """

    name: str
    prototxt: bytes = field(repr=False)
    weights: bytes = field(repr=False)
    labels: tuple[str, ...] = field(repr=False)
    preprocess: dict = field(repr=False)
    digest: str = ""

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "ModelPackage":
        """Read (downloading when the model file says how) and check ``spec``'s files."""
        weights = spec.weights
        if weights is None:
            raise EvaluateError(f"{spec.where()} names no weights: give its caffemodel")
        if not weights.is_file() and spec.download is not None:
            weights = download_weights(weights, spec=spec.download)
        if not weights.is_file():
            raise EvaluateError(f"weights file {weights} does not exist: pass the path of a .caffemodel")
        check_model_files(spec.prototxt, weights)  # before any worker touches Caffe
        prototxt, caffemodel = spec.prototxt.read_bytes(), weights.read_bytes()
        labels = tuple(spec.labels.name(i) for i in range(len(spec.labels)))
        digest = hashlib.sha1()
        for part in (spec.name.encode(), prototxt, caffemodel, "\n".join(labels).encode(), repr(spec.preprocess).encode()):
            digest.update(part)
        return cls(name=spec.name, prototxt=prototxt, weights=caffemodel, labels=labels,
                   preprocess=dict(spec.preprocess), digest=digest.hexdigest())


class ModelPlugin(WorkerPlugin):
    """Holds a :class:`ModelPackage` on each worker and loads it, once per process, on first use."""

    name = PLUGIN_NAME

    def __init__(self, package: ModelPackage):
        self.package = package
        self._model = None
        self._lock: Optional[threading.Lock] = None
        self._folder: Optional[tempfile.TemporaryDirectory] = None

    def setup(self, worker) -> None:
        self._lock = threading.Lock()

    def teardown(self, worker) -> None:
        if self._folder is not None:
            self._folder.cleanup()

    def __getstate__(self) -> dict:
        return {"package": self.package}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["package"])

    @property
    def lock(self) -> threading.Lock:
        if self._lock is None:
            self._lock = threading.Lock()
        return self._lock

    def model(self):
        """The loaded :class:`~breaking_nn.model.Classifier` (call with :attr:`lock` held)."""
        if self._model is None:
            from .model import load_model

            self._folder = tempfile.TemporaryDirectory(prefix="breaking-nn-model-")
            folder = Path(self._folder.name)
            (folder / "deploy.prototxt").write_bytes(self.package.prototxt)
            (folder / "weights.caffemodel").write_bytes(self.package.weights)
            spec = ModelSpec(name=self.package.name, prototxt=folder / "deploy.prototxt",
                             weights=folder / "weights.caffemodel", labels=Labels(self.package.labels),
                             preprocess=dict(self.package.preprocess))
            self._model = load_model(spec)
        return self._model


def evaluate_task(items: list[tuple[str, bytes]], settings: EvaluateSettings, keep: bool) -> list:
    """Run on a worker: :func:`~breaking_nn.evaluate.evaluate_photos` with the worker's model (a batch of ``items``)."""
    plugin = distributed.get_worker().plugins[PLUGIN_NAME]
    with plugin.lock:
        return evaluate_photos(plugin.model(), items, settings, keep=keep, batch=len(items))


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> "distributed.Client":
    """A Dask client of the scheduler at ``address``, or :class:`EvaluateError` within ``timeout`` seconds."""
    if not isinstance(address, str) or "://" not in address and ":" not in address:
        raise EvaluateError(f"--scheduler takes a Dask scheduler address such as tcp://host:8786, not {address!r}")
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address, ...
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise EvaluateError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({reason}): "
                            "start one with `dask scheduler` and give its tcp://host:8786 address") from None


def evaluate_on_cluster(scheduler: str, spec: ModelSpec, files: Sequence[Path], settings: EvaluateSettings, *,
                        keep: bool, batch: int, accept: Callable[[dict, dict], Any]) -> None:
    """Evaluate ``files`` on the cluster at ``scheduler``; ``accept(row, kept)`` each row as it arrives.

    ``batch`` photos go in each task. At most twice as many tasks as the
    cluster has worker threads (at least 4) are in flight, so the client
    holds only those photos' bytes at a time.
    """
    client = connect(scheduler)  # an unreachable scheduler fails first, within CONNECT_TIMEOUT_S
    futures: list = []
    try:
        package = ModelPackage.from_spec(spec)  # checked here, before any worker touches Caffe
        client.register_plugin(ModelPlugin(package), name=PLUGIN_NAME)
        threads = sum(client.nthreads().values())
        window = max(4, 2 * threads)
        groups = [list(files[i:i + batch]) for i in range(0, len(files), batch)]
        pending = iter(groups)

        def submit(group: list[Path]):
            items = [(str(p), _read(p)) for p in group]
            future = client.submit(evaluate_task, items, settings, keep, pure=False)
            futures.append(future)
            return future

        queue = distributed.as_completed([submit(g) for _, g in zip(range(window), pending)], loop=client.loop)
        for future in queue:
            for row, kept in future.result():
                accept(row, kept)
            following = next(pending, None)
            if following is not None:
                queue.add(submit(following))
    except KeyboardInterrupt:
        client.cancel(futures)
        raise
    except BaseException as exc:
        if isinstance(exc, EvaluateError) or not _is_cluster_failure(exc):
            raise  # breaking-nn's own errors (a worker's too) keep their message
        client.cancel(futures)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise EvaluateError(f"the Dask cluster at {scheduler} failed ({reason}); the finished rows are kept: "
                            "run the same command again to resume") from None
    finally:
        client.close()


def _is_cluster_failure(exc: BaseException) -> bool:
    """A lost scheduler or worker, a cancelled task, a closed connection: not an error of the evaluation."""
    from concurrent.futures import CancelledError  # distributed's FutureCancelledError is one

    return isinstance(exc, (CancelledError, OSError, TimeoutError, distributed.KilledWorker,
                            distributed.comm.CommClosedError))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
