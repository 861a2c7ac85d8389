"""The GPU device check (breaking_nn.caffe_runtime.cuda_devices / check_gpu).

It asks the NVIDIA driver through ctypes, so that a missing driver or GPU is a
clear error instead of Caffe aborting the process. Where there is no driver (this
project's CI) the real library lookup is checked; the other answers a driver can
give come from tests/fake_cuda_driver.c, compiled here (skipped without a C compiler).
"""
from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from breaking_nn.caffe_runtime import check_gpu, cuda_devices
from breaking_nn.errors import CaffeNotAvailableError

HERE = Path(__file__).resolve().parent


def test_no_driver_library_is_a_clear_error():
    with pytest.raises(CaffeNotAvailableError, match=r"no CUDA driver or GPU found: no CUDA driver: .*--gpus all"):
        cuda_devices("/nonexistent/libcuda.so.1")


@pytest.mark.skipif(ctypes.util.find_library("cuda") is not None, reason="this machine has a CUDA driver")
def test_this_machine_reports_no_driver_in_a_subprocess_that_survives():
    code = ("from breaking_nn.caffe_runtime import cuda_devices\n"
            "try:\n    cuda_devices()\nexcept Exception as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("no CUDA driver or GPU found: no CUDA driver: ")
    assert "libcuda.so.1" in out.stdout


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in driver (tests/fake_cuda_driver.c)")
    lib = tmp_path_factory.mktemp("fake-cuda") / "libcuda.so.1"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(HERE / "fake_cuda_driver.c")], check=True)
    return str(lib)


def test_driver_with_gpus(fake_driver, monkeypatch):
    monkeypatch.setenv("FAKE_CUDA_COUNT", "2")
    monkeypatch.setenv("FAKE_CUDA_VERSION", "13020")
    assert cuda_devices(fake_driver) == (2, 13020)
    check_gpu(1, "13.0", fake_driver)


@pytest.mark.parametrize("init, count", [("100", "1"), ("0", "0")])
def test_driver_without_gpu_says_no_gpu(fake_driver, monkeypatch, init, count):
    monkeypatch.setenv("FAKE_CUDA_INIT", init)
    monkeypatch.setenv("FAKE_CUDA_COUNT", count)
    with pytest.raises(CaffeNotAvailableError, match=r"no CUDA driver or GPU found: no GPU: .* installed but"):
        cuda_devices(fake_driver)


def test_driver_that_fails_to_start(fake_driver, monkeypatch):
    monkeypatch.setenv("FAKE_CUDA_INIT", "999")
    with pytest.raises(CaffeNotAvailableError, match=r"failed to start: cuInit returned CUDA_ERROR_UNKNOWN \(999\)"):
        cuda_devices(fake_driver)


@pytest.mark.parametrize("count, gpu_id, says", [("1", 1, r"CUDA sees 1 GPU \(gpu_id 0\)"),
                                                  ("2", 5, r"CUDA sees 2 GPUs \(gpu_id 0 to 1\)")])
def test_gpu_id_past_the_last_gpu(fake_driver, monkeypatch, count, gpu_id, says):
    monkeypatch.setenv("FAKE_CUDA_COUNT", count)
    with pytest.raises(CaffeNotAvailableError, match=rf"GPU {gpu_id} does not exist: {says}"):
        check_gpu(gpu_id, "13.0", fake_driver)


def test_driver_too_old_for_the_build(fake_driver, monkeypatch):
    monkeypatch.setenv("FAKE_CUDA_VERSION", "12080")
    with pytest.raises(CaffeNotAvailableError, match=r"supports CUDA 12\.8 at most.*built with CUDA 13\.0: update"):
        check_gpu(0, "13.0", fake_driver)
