"""The CSV that ``breaking-nn evaluate`` fills one photo at a time, and its arguments sidecar.

Layout on disk, for ``--out results.csv``:

* ``results.csv``: one row per photo, sorted by its ``path`` column;
* ``results.csv.args.json``: the arguments the rows were computed with
  (``{"written_by": "breaking-nn evaluate", "arguments": {...}}``).

**Why the whole CSV is rewritten for every row.** Each finished photo
rewrites the full CSV through :func:`breaking_nn.atomic.atomic_path` (a
temporary file beside it, then one ``os.replace``). A reader, a crash or
Ctrl-C therefore sees either the previous complete table or the new
complete one, never a torn last line, and the file stays sorted by path.
Appending with ``fsync`` would be cheaper per row, but a crash mid-append
leaves half a row that the next run would have to detect and cut away. The
cost of rewriting is negligible here: a row is ~0.5 kB and a photo takes
seconds to attack, so even 10,000 photos rewrite ~5 MB per second of attack
at worst.

Resume: a table opened with the same arguments reports the paths already
done (:attr:`ResultTable.done`); other arguments are refused with
:class:`~breaking_nn.errors.EvaluateError` unless ``force``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import pandas as pd

from .atomic import atomic_path
from .errors import EvaluateError

SIDECAR_SUFFIX = ".args.json"
WRITTEN_BY = "breaking-nn evaluate"


def sidecar_path(csv_path: Union[str, Path]) -> Path:
    """``results.csv`` -> ``results.csv.args.json``."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.name + SIDECAR_SUFFIX)


def check_csv_path(path: Union[str, Path]) -> Path:
    """``path`` as a Path if a CSV can be written there, else :class:`EvaluateError`."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".csv":
        raise EvaluateError(f"--out must name a .csv file, not {str(path)!r}")
    if not path.parent.is_dir():
        raise EvaluateError(f"the folder of {path} does not exist: create {path.parent} first")
    if path.is_dir():
        raise EvaluateError(f"{path} is a folder: give a file name such as {path / 'results.csv'}")
    return path


class ResultTable:
    """The rows of one evaluation, kept in memory and written to ``path`` after each :meth:`add`.

    ``columns`` fixes the CSV's column order; ``arguments`` (JSON-ready) are
    stored in the sidecar. Opening does not write anything: the sidecar and
    the CSV are first written by the first :meth:`add`.
    """

    def __init__(self, path: Union[str, Path, None], *, columns: list[str], arguments: dict[str, Any],
                 force: bool = False):
        self.path = None if path is None else check_csv_path(path)
        self.sidecar = None if path is None else sidecar_path(self.path)
        self.columns = list(columns)
        self.arguments = json.loads(json.dumps(arguments))  # as it will read back
        self.rows: dict[str, dict] = {}
        self._sidecar_written = False
        if self.path is not None and self.path.exists() and not force:
            self._resume()

    def _resume(self) -> None:
        """Load the rows of an earlier run with the same arguments, or refuse."""
        if not self.sidecar.is_file():
            raise EvaluateError(f"{self.path} exists but was not written by {WRITTEN_BY} (no {self.sidecar.name} "
                                f"beside it): choose another --out, or overwrite it with --force")
        try:
            stored = json.loads(self.sidecar.read_text(encoding="utf-8"))["arguments"]
        except (ValueError, KeyError, TypeError) as exc:
            raise EvaluateError(f"{self.sidecar} is not a readable arguments file ({exc}): "
                                "start over with --force") from None
        if stored != self.arguments:
            changed = sorted(k for k in set(stored) | set(self.arguments) if stored.get(k) != self.arguments.get(k))
            detail = "; ".join(f"{k}: was {stored.get(k)!r}, now {self.arguments.get(k)!r}" for k in changed)
            raise EvaluateError(f"{self.path} holds results computed with other arguments ({detail}): "
                                "rerun with the same ones to resume, choose another --out, or start over with --force")
        try:
            frame = pd.read_csv(self.path, dtype={"path": str}, keep_default_na=True)
        except (ValueError, pd.errors.ParserError) as exc:
            raise EvaluateError(f"{self.path} cannot be read back as a CSV ({exc}): start over with --force") from None
        if list(frame.columns) != self.columns:
            raise EvaluateError(f"{self.path} has other columns than this version writes: start over with --force")
        for record in frame.to_dict("records"):
            self.rows[record["path"]] = {k: (None if _is_missing(v) else v) for k, v in record.items()}
        self._sidecar_written = True

    @property
    def done(self) -> set[str]:
        """The paths that already have a row."""
        return set(self.rows)

    def add(self, row: dict) -> None:
        """Add (or replace) ``row``, keyed by ``row["path"]``, and rewrite the CSV atomically."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"row has columns the table does not: {sorted(unknown)}")
        self.rows[row["path"]] = dict(row)
        if self.path is None:
            return
        if not self._sidecar_written:
            with atomic_path(self.sidecar) as part:
                part.write_text(json.dumps({"written_by": WRITTEN_BY, "arguments": self.arguments}, indent=2) + "\n",
                                encoding="utf-8")
            self._sidecar_written = True
        frame = self.frame()
        with atomic_path(self.path) as part:
            frame.to_csv(part, index=False)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame in :attr:`columns` order, sorted by path."""
        return rows_frame(self.rows.values(), self.columns)


def rows_frame(rows: Iterable[dict], columns: list[str]) -> pd.DataFrame:
    """DataFrame of ``rows`` (dicts) with ``columns``, sorted by ``path``, index 0..n-1."""
    frame = pd.DataFrame(list(rows), columns=columns)
    if len(frame):
        frame = frame.sort_values("path", kind="stable").reset_index(drop=True)
    return frame


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def read_results(path: Union[str, Path]) -> tuple[pd.DataFrame, Optional[dict]]:
    """(the CSV as a DataFrame, its sidecar's arguments or None): for metrics from saved results."""
    path = Path(path)
    arguments = None
    if sidecar_path(path).is_file():
        arguments = json.loads(sidecar_path(path).read_text(encoding="utf-8")).get("arguments")
    return pd.read_csv(path, dtype={"path": str}), arguments
