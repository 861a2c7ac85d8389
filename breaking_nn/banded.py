"""A stacked banded matrix cut into dense tiles, so that the attack's full-resolution products run on BLAS.

The attack's linear maps (:meth:`~breaking_nn.pipelines.Pipeline.linear_matrices`)
are banded: each row of a pipeline's (h', H) matrix reads a run of
neighbouring photo rows, and the run moves down the photo with the row.
Stacked for k pipelines the matrix R is (S, H), S the sum of the h'. scipy
multiplies it one non-zero at a time, reading a whole photo row for each
(memory-bound: about 2 GFLOP/s on this project's machine). Cut R's columns
(the photo's rows) into bands of :data:`BAND`: in one band only a few rows of
R have non-zeros (per pipeline about ``BAND * h' / H`` plus a filter's
reach), so the band is one small dense tile, and both products become
OpenBLAS GEMMs over contiguous rows:

* ``R @ X`` (a pipeline's data; X (H, N) float32 or uint8, N = 3 W for an
  HWC photo): the sum over bands of ``tile @ X[band]``, each band converted
  to float32 as it is used (no full-size float copy);
* ``R.T @ M`` (the adjoint; M (S, N)): band by band, ``tile.T @ M[rows]``,
  so that whoever takes the bands (the sign step) never needs the whole result.

The tiles' zeros cost flops (about 3x as many as the non-zeros at 64 rows),
but a GEMM does them several times faster than scipy does the non-zeros alone
(``scripts/benchmark_photo.py``). Sums are float32 in BLAS's order, so results
equal scipy's within float32 rounding.

>>> from scipy import sparse

from .workspace import scratch
>>> R = sparse.random(20, 300, density=0.05, format="csr", dtype=np.float32, random_state=0)
>>> X = np.arange(300 * 6, dtype=np.float32).reshape(300, 6)
>>> bool(np.allclose(BandTiles(R).times(X), R @ X, rtol=1e-5))
True
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
from scipy import sparse

from .workspace import scratch

#: Photo rows a tile covers: small enough that tiles stay dense (their zeros cost flops), large enough for a GEMM.
BAND = 64


class BandTiles:
    """An (S, H) sparse matrix as dense tiles over bands of :data:`BAND` of its H columns (photo rows).

    ``tiles`` holds, for each band ``[top, end)`` with a non-zero, (top, end,
    rows (n,) int64: the rows of the matrix with non-zeros there, dense
    (n, end - top) float32). With ``channels`` c > 1 the tiles are those of
    ``kron(matrix, I_c)``, (c S, c H): the matrix acting on each channel of
    interleaved (HWC) rows, ``band`` still counted in the matrix's own columns.
    """

    def __init__(self, matrix: sparse.spmatrix, *, band: int = BAND, channels: int = 1):
        coo = sparse.coo_matrix(matrix, dtype=np.float32)
        coo.sum_duplicates()  # one entry per place, so the tiles are filled by assignment
        c = int(channels)
        self.shape, self.band = (coo.shape[0] * c, coo.shape[1] * c), int(band) * c
        order = np.argsort(coo.col, kind="stable")
        rows, cols, values = coo.row[order], coo.col[order], coo.data[order]
        edges = np.searchsorted(cols, np.arange(0, coo.shape[1] + band, band))
        self.tiles = []
        for i, top in enumerate(range(0, coo.shape[1], band)):
            lo, hi = edges[i], edges[i + 1]
            if lo == hi:
                continue
            end = min(top + band, coo.shape[1])
            used = np.unique(rows[lo:hi])
            dense = np.zeros((used.size, end - top), np.float32)
            dense[np.searchsorted(used, rows[lo:hi]), cols[lo:hi] - top] = values[lo:hi]
            if c > 1:  # kron(dense, I_c)
                used, spread = (used[:, None] * c + np.arange(c)).ravel(), np.zeros((used.size * c, dense.shape[1] * c),
                                                                                    np.float32)
                for channel in range(c):
                    spread[channel::c, channel::c] = dense
                dense = spread
            self.tiles.append((top * c, end * c, used.astype(np.int64), dense))
        self._plan = None  # times' writes, made on its first call

    def times(self, x: np.ndarray) -> np.ndarray:
        """``matrix @ x``: (S, N) float32 for x (H, N) float32 or uint8 (0-255 stays 0-255).

        The result is a :func:`scratch` array: valid until the next one is asked for.
        """
        if x.shape[0] != self.shape[1]:
            raise ValueError(f"a ({self.shape[0]}, {self.shape[1]}) matrix times {x.shape}")
        if self._plan is None:
            self._plan = _writes([rows for _, _, rows, _ in self.tiles], self.shape[0])
        tile_writes, empty = self._plan
        out = scratch((self.shape[0], x.shape[1]))
        for first, last in empty:
            out[first:last] = 0
        for (top, end, _, dense), writes in zip(self.tiles, tile_writes):
            product = dense @ np.asarray(x[top:end], np.float32)
            for first, last, at, new in writes:  # slices, not a fancy index: no gathered copy of the rows
                if new:
                    out[first:last] = product[at:at + last - first]
                else:
                    out[first:last] += product[at:at + last - first]
        return out

    def transposed_bands(self, m: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """``matrix.T @ m`` for m (S, N) float32, a band at a time: (rows slice of H, (rows, N) float32).

        Every band of H is yielded, in order (all-zero ones too).
        """
        if m.shape[0] != self.shape[0]:
            raise ValueError(f"the transpose of a ({self.shape[0]}, {self.shape[1]}) matrix times {m.shape}")
        m = np.asarray(m, np.float32)
        tiles = {top: (rows, dense) for top, _, rows, dense in self.tiles}
        for top in range(0, self.shape[1], self.band):
            end = min(top + self.band, self.shape[1])
            if top in tiles:
                rows, dense = tiles[top]
                yield slice(top, end), dense.T @ m[rows]
            else:
                yield slice(top, end), np.zeros((end - top, m.shape[1]), np.float32)

    def rmatmul(self, y: np.ndarray, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``y @ matrix``: (N, H) float32 for y (N, S); written into ``out`` (N, H) when given."""
        if y.shape[1] != self.shape[0]:
            raise ValueError(f"{y.shape} times a ({self.shape[0]}, {self.shape[1]}) matrix")
        if out is None:
            out = np.empty((y.shape[0], self.shape[1]), np.float32)
        done = 0
        for top, end, rows, dense in self.tiles:
            out[:, done:top] = 0  # the bands no tile covers
            out[:, top:end] = y[:, rows] @ dense
            done = end
        out[:, done:] = 0
        return out

    def rmatmul_transpose(self, y: np.ndarray) -> np.ndarray:
        """``y @ matrix.T``: (N, S) float32 for y (N, H) float32."""
        if y.shape[1] != self.shape[1]:
            raise ValueError(f"{y.shape} times the transpose of a ({self.shape[0]}, {self.shape[1]}) matrix")
        out = np.zeros((y.shape[0], self.shape[0]), np.float32)
        for top, end, rows, dense in self.tiles:
            out[:, rows] += y[:, top:end] @ dense.T
        return out


def _writes(tile_rows: list[np.ndarray], n_rows: int):
    """How each tile's product goes into the result: ([[(first, end, at, new), ...] a tile], empty).

    Each tile's rows as runs of consecutive ones, cut where a row is met for
    the first time (``new``: assigned, not added, so the result needs no
    clearing first); ``at``: the run's first row in the tile. ``empty``:
    [(first, end), ...], the rows no tile has, which are zeros.
    """
    seen = np.zeros(n_rows, bool)
    writes = []
    for rows in tile_rows:
        fresh = ~seen[rows]
        breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(fresh) != 0)) + 1
        starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [rows.size]])
        writes.append([(int(rows[a]), int(rows[b - 1]) + 1, int(a), bool(fresh[a])) for a, b in zip(starts, ends)])
        seen[rows] = True
    empty = np.flatnonzero(~seen)
    breaks = np.flatnonzero(np.diff(empty) != 1) + 1
    return writes, [(int(run[0]), int(run[-1]) + 1) for run in np.split(empty, breaks) if run.size]
