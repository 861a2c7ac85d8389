"""The memory an attack reuses from step to step: a float32 buffer for full-resolution arrays, a Pillow image.

An :class:`~breaking_nn.photo_attack.AttackRun` makes one :class:`Workspace`
and does each step's full-resolution work inside :func:`reusing` it; the
functions that make big temporary arrays ask :func:`scratch` (the banded
products, OpenCV's probes) or :func:`pillow_rgb` (Pillow's resizes) for
them, and get new ones outside.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Optional

import numpy as np
from PIL import Image


class Workspace:
    """The memory a run's full-resolution work reuses, step after step (see :func:`reusing`): one float32
    buffer and one Pillow RGB image.

    Freshly mapped memory is slow to touch: on this project's machines (VMs
    that hand freed pages back to the host) about 1.5 ms a MB, so a 12 MP
    step's (S, 3 W) product, 58 MB, would spend ~90 ms a step in page faults
    if it were a new array each time (arrays over 32 MB are always new
    mappings in glibc), and a 48 MP photo's OpenCV probe, 195 MB, ~0.3 s.
    Pillow's copy of a 12 MP photo (4 bytes a pixel, 48 MB) is the same.
    """

    def __init__(self):
        self.release()

    def release(self) -> None:
        """Give the memory back (before memory-hungry work in between steps, such as a suite check)."""
        self._buffer = np.empty(0, np.float32)
        self._image: Optional[Image.Image] = None

    def pillow_image(self, photo: np.ndarray) -> Image.Image:
        """``photo`` (H, W, 3) uint8 RGB as a Pillow "RGB" image, copied into the one this workspace keeps
        (made anew when the size changes). Valid until the next call."""
        size = (photo.shape[1], photo.shape[0])
        if self._image is None or self._image.size != size:
            self._image = None  # the old one goes first
            self._image = Image.new("RGB", size)
        self._image.frombytes(np.ascontiguousarray(photo).data)
        return self._image

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        """A C-contiguous float32 array of ``shape`` over the buffer (grown when too small), not cleared."""
        size = int(np.prod(shape))
        if self._buffer.size < size:
            self._buffer = np.empty(0, np.float32)  # the old one goes first: never both at once
            self._buffer = np.empty(size, np.float32)
        return self._buffer[:size].reshape(shape)


_REUSED: ContextVar[Optional[Workspace]] = ContextVar("breaking_nn_workspace", default=None)


@contextmanager
def reusing(workspace: Workspace) -> Iterator[Workspace]:
    """Within the block, :func:`scratch` arrays come from ``workspace`` (an attack's, for all its steps).

    >>> ws = Workspace()
    >>> with reusing(ws):
    ...     first = scratch((2, 3))
    ...     second = scratch((3, 2))
    >>> bool(np.shares_memory(first, second))
    True
    """
    token = _REUSED.set(workspace)
    try:
        yield workspace
    finally:
        _REUSED.reset(token)


def pillow_rgb(photo: np.ndarray) -> Image.Image:
    """``photo`` (H, W, 3) uint8 RGB as a Pillow "RGB" image: the :func:`reusing` workspace's (valid until the
    next call), else ``Image.fromarray``'s new one."""
    workspace = _REUSED.get()
    return Image.fromarray(photo, "RGB") if workspace is None else workspace.pillow_image(photo)


def scratch(shape: tuple[int, ...]) -> np.ndarray:
    """An uncleared float32 array of ``shape``: the :func:`reusing` workspace's (valid until the next
    ``scratch`` call: one use at a time), else a new one."""
    workspace = _REUSED.get()
    return np.empty(shape, np.float32) if workspace is None else workspace.empty(shape)
