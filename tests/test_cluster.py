"""breaking-nn evaluate on a real Dask cluster: a LocalCluster of 2 worker processes on loopback."""
from __future__ import annotations

import logging
import os
import signal

import pandas as pd
import pytest

from conftest import skip_unless_ci
from test_evaluate import assert_same_results, write_pattern_photos

from breaking_nn.evaluate import evaluate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        skip_unless_ci(f"Dask is not installed (pip install 'breaking-nn[cluster]'): {exc}")
    # one thread per worker: Caffe nets are not thread-safe
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.ERROR) as local, Client(local) as client:
        yield local, client


def test_same_seed_gives_the_local_csv(cluster, tiny_model_file, tmp_path):
    local_cluster, _ = cluster
    folder = tmp_path / "photos"
    write_pattern_photos(folder, 3, seed=5)
    (folder / "readme.txt").write_text("not a photo")
    options = dict(epsilons=(2, 8), max_steps=20, robust=True, seed=7)
    here = evaluate(tiny_model_file, folder, "pattern A", out=tmp_path / "local.csv", **options)
    there = evaluate(tiny_model_file, folder, "pattern A", out=tmp_path / "dask.csv",
                     scheduler=local_cluster.scheduler_address, **options)
    assert len(here) == 4 and here["suite_eps8"].notna().sum() == 3
    assert_same_results(pd.read_csv(tmp_path / "dask.csv"), pd.read_csv(tmp_path / "local.csv"))
    assert_same_results(there, here)


def test_a_killed_worker_costs_only_its_task(cluster, tiny_model_file, tmp_path):
    local_cluster, client = cluster
    folder = tmp_path / "photos"
    write_pattern_photos(folder, 6, seed=11, size=(96, 128))
    options = dict(epsilons=(1,), max_steps=150, robust=False)  # epsilon 1 rarely fools: ~1 s a photo
    killed = []

    def kill_a_busy_worker(row):
        if killed:
            return
        busy = [address for address, keys in client.processing().items() if keys]
        assert busy, "no task was running when the first row came back"
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    there = evaluate(tiny_model_file, folder, "pattern A", out=tmp_path / "dask.csv",
                     scheduler=local_cluster.scheduler_address, on_row=kill_a_busy_worker, **options)
    assert killed
    here = evaluate(tiny_model_file, folder, "pattern A", **options)
    assert len(there) == 6
    assert_same_results(there, here)
    assert_same_results(pd.read_csv(tmp_path / "dask.csv"), here)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed one
