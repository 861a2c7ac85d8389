"""Write files so that readers see the old file or the whole new one, never a part."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union


@contextlib.contextmanager
def atomic_path(dest: Union[str, Path]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; it replaces ``dest`` only if the block succeeds.

    The temporary file (``.NAME.XXXX.part`` in the same folder, so the rename is
    atomic) is removed whatever happens. The file gets the permissions a plain
    ``open()`` would give it (0666 less the umask), not ``mkstemp``'s private 0600.

    >>> with atomic_path("out.txt") as part:   # doctest: +SKIP
    ...     part.write_text("complete")
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    part = Path(name)
    try:
        yield part
        os.chmod(part, 0o666 & ~_umask())
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
