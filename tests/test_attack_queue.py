"""The attack queue shared by a server's kernels (breaking_nn/attack_queue.py), with real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from breaking_nn.attack_queue import AttackQueue, LeftTheQueue, usable_cpus

HOLDER = """
import sys, time
from breaking_nn.attack_queue import AttackQueue
with AttackQueue(sys.argv[1], slots=1).place(on_wait=lambda k: print('waiting', k, flush=True)):
    print('holding', flush=True)
    time.sleep(600)
"""


def _holder(folder) -> subprocess.Popen:
    """Another process (a stand-in for a kernel) that takes the one slot and keeps it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _wait_until(condition, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit_s} s: {what}")
        time.sleep(0.05)


def test_usable_cpus_follows_the_affinity_mask():
    assert usable_cpus() == len(os.sched_getaffinity(0)) >= 1


def test_a_killed_kernel_gives_its_slot_back(tmp_path):
    holder = _holder(tmp_path)
    seen: list[int] = []
    got = threading.Event()

    def wait_for_slot():
        with AttackQueue(tmp_path, slots=1, poll_s=0.02).place(on_wait=seen.append):
            got.set()

    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    _wait_until(lambda: seen == [0], "the waiter is told it is next")
    assert not got.is_set()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    waiter.join(60)
    assert got.is_set()


def test_first_come_first_served_and_the_count_ahead(tmp_path):
    holder = _holder(tmp_path)
    order: list[str] = []
    counts: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    threads = []
    for name in "abc":
        def wait(name=name):
            with AttackQueue(tmp_path, slots=1, poll_s=0.02).place(on_wait=counts[name].append):
                order.append(name)
        threads.append(threading.Thread(target=wait))
        threads[-1].start()
        _wait_until(lambda: counts[name], f"{name} queued")
    assert [counts[n][0] for n in "abc"] == [0, 1, 2]
    assert AttackQueue(tmp_path, slots=1).waiting() == 3
    holder.kill()
    holder.wait()
    for thread in threads:
        thread.join(60)
    assert order == ["a", "b", "c"]
    assert counts["c"] == sorted(set(counts["c"]), reverse=True)  # told again each time its line moves


def test_stop_leaves_the_queue(tmp_path):
    holder = _holder(tmp_path)
    stop = threading.Event()
    queue = AttackQueue(tmp_path, slots=1, poll_s=0.02)
    errors: list[BaseException] = []

    def wait():
        try:
            with queue.place(stop=stop):
                pass
        except LeftTheQueue as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    _wait_until(lambda: queue.waiting() == 1, "queued")
    stop.set()
    thread.join(60)
    assert len(errors) == 1 and queue.waiting() == 0
    holder.kill()
    holder.wait()


def test_two_slots_run_two_at_once(tmp_path):
    queue = AttackQueue(tmp_path, slots=2)
    with queue.place() as first, queue.place() as second:
        assert {first, second} == {0, 1}


def test_no_slots_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1 slot"):
        AttackQueue(tmp_path, slots=0)
