"""At most N attacks at once across every kernel of one server: a FIFO queue of file locks.

Each page of the served app is its own kernel (process), so a semaphore in one
kernel bounds nothing. The queue lives in a folder shared by the server's
kernels (``APP_QUEUE_DIR``, set by docker/start-app.sh):

* ``slot-0`` .. ``slot-{N-1}``: a running attack holds an exclusive ``flock``
  on one; the kernel's death releases it (the OS drops a dead process's locks),
  so a killed kernel never holds a slot.
* ``ticket-<ns>-<pid>-<n>``: a waiter's place in line, locked by its owner; a
  ticket nobody locks any more (its kernel died) is removed by the next reader.
  Only the first in line takes a free slot, so the order is first come, first served.

>>> queue = AttackQueue("/tmp/q", slots=1)                     # doctest: +SKIP
>>> with queue.place(on_wait=lambda ahead: print(ahead, "ahead")) as slot:   # doctest: +SKIP
...     attack()
"""
from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

_tickets = itertools.count()


class LeftTheQueue(Exception):
    """Raised by :meth:`AttackQueue.place` when ``stop`` was set while waiting (Stop pressed)."""


def usable_cpus() -> int:
    """The CPUs this process may run on (container and taskset limits respected; not os.cpu_count)."""
    return len(os.sched_getaffinity(0))


class AttackQueue:
    """``slots`` attacks at once among all processes using ``folder``; the rest wait in order."""

    def __init__(self, folder: Union[str, Path], *, slots: int, poll_s: float = 0.2):
        if slots < 1:
            raise ValueError(f"an attack queue needs at least 1 slot, not {slots}")
        self.folder, self.slots, self.poll_s = Path(folder), slots, poll_s
        self.folder.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def place(self, *, on_wait: Callable[[int], None] = lambda ahead: None,
              stop: Optional[threading.Event] = None) -> Iterator[int]:
        """Wait for a slot (FIFO), hold it inside the ``with`` block, and give it back after.

        ``on_wait(k)`` is called whenever the number of attacks waiting ahead changes (first with
        the initial count, also 0 when all slots are taken); :class:`LeftTheQueue` once ``stop`` is set."""
        ticket_fd, ticket = self._take_ticket()
        slot_fd = None
        try:
            shown = None
            while True:
                if stop is not None and stop.is_set():
                    raise LeftTheQueue("left the queue")
                ahead = self._ahead_of(ticket)
                if ahead == 0:
                    slot_fd = self._try_slot()
                    if slot_fd is not None:
                        break
                if ahead != shown:
                    on_wait(ahead)
                    shown = ahead
                time.sleep(self.poll_s)
            self._drop(ticket_fd, ticket)
            ticket_fd = None
            yield slot_fd[1]
        finally:
            if ticket_fd is not None:
                self._drop(ticket_fd, ticket)
            if slot_fd is not None:
                os.close(slot_fd[0])  # closing the last descriptor releases the lock

    def waiting(self) -> int:
        """How many attacks wait now (live tickets)."""
        return len(self._live_tickets())

    # -- inside --------------------------------------------------------------------------
    def _take_ticket(self) -> tuple[int, Path]:
        """A locked ticket file; made under a temporary name and renamed, so nobody sees it unlocked."""
        name = f"ticket-{time.time_ns():020d}-{os.getpid()}-{next(_tickets):06d}"
        temporary = self.folder / f".{name}"
        fd = os.open(temporary, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temporary, self.folder / name)
        return fd, self.folder / name

    def _drop(self, fd: int, ticket: Path) -> None:
        ticket.unlink(missing_ok=True)
        os.close(fd)

    def _live_tickets(self) -> list[str]:
        """The tickets whose owner lives, oldest first; dead owners' tickets are removed."""
        live = []
        for path in sorted(self.folder.glob("ticket-*")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                live.append(path.name)  # its owner holds it
            else:
                path.unlink(missing_ok=True)  # nobody holds it: its kernel died
            finally:
                os.close(fd)
        return live

    def _ahead_of(self, ticket: Path) -> int:
        return sum(name < ticket.name for name in self._live_tickets())

    def _try_slot(self) -> Optional[tuple[int, int]]:
        """(descriptor, slot number) of a free slot, locked; None when all are taken."""
        for number in range(self.slots):
            fd = os.open(self.folder / f"slot-{number}", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd, number
        return None
