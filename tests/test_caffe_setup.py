"""pycaffe as scripts/setup.sh installs it: importable by itself, forward and backward work."""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from breaking_nn.caffe_runtime import build_info, import_caffe, use_device
from breaking_nn.errors import CaffeNotAvailableError

REPO = Path(__file__).resolve().parents[1]
IN_PROJECT_VENV = Path(sys.prefix).resolve() == (REPO / ".venv").resolve()
CUDA_BUILD = build_info().get("device") == "cuda"
cpu_build_only = pytest.mark.skipif(CUDA_BUILD, reason="this Caffe is a CUDA build (the Docker image's GPU variant)")
cuda_build_only = pytest.mark.skipif(not CUDA_BUILD, reason="this Caffe is CPU-only (scripts/setup.sh's build)")


@pytest.mark.image
def test_caffe_imports_without_any_path_variables():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    out = subprocess.run([sys.executable, "-c", "import caffe, sys; print(caffe.__file__)"],
                         env=env, capture_output=True, text=True, check=True, cwd="/")
    assert Path(out.stdout.strip()).resolve().is_relative_to(Path(sys.prefix).resolve())


@cpu_build_only
@pytest.mark.image
def test_build_is_recorded_as_cpu_only():
    info = build_info()
    assert info["device"] == "cpu"
    assert info["source"] == "brocolli-caffe==9.0.2"


@cpu_build_only
@pytest.mark.image
def test_asking_a_cpu_build_for_a_gpu_is_a_clear_error_not_an_abort():
    with pytest.raises(CaffeNotAvailableError, match="CPU-only"):
        use_device("gpu", 0)
    use_device("cpu")


@cuda_build_only
@pytest.mark.image
def test_cuda_build_is_recorded():
    info = build_info()
    assert info["source"] == "brocolli-caffe==9.0.2"
    assert info["cuda"].split(".")[0].isdigit() and info["cuda_arch"].split()


@cuda_build_only
@pytest.mark.skipif(ctypes.util.find_library("cuda") is not None, reason="this machine has a CUDA driver")
@pytest.mark.image
def test_asking_a_cuda_build_for_a_gpu_without_a_driver_is_a_clear_error_not_an_abort():
    with pytest.raises(CaffeNotAvailableError, match="no CUDA driver or GPU found: no CUDA driver"):
        use_device("gpu", 0)
    use_device("cpu")


@pytest.mark.image
def test_tiny_net_forward_and_backward_on_cpu(tmp_path):
    """y = W x + b, and the data gradient W^T dy, computed by Caffe's InnerProduct."""
    caffe = import_caffe()
    caffe.set_mode_cpu()
    proto = tmp_path / "tiny.prototxt"
    proto.write_text(
        'force_backward: true\n'
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }\n'
    )
    net = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.default_rng(0)
    w, b, x, dy = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(1, 4)), rng.normal(size=(1, 3))
    net.params["ip"][0].data[...] = w
    net.params["ip"][1].data[...] = b
    net.blobs["data"].data[...] = x
    y = net.forward()["ip"]
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-5)
    dx = net.backward(ip=dy.astype(np.float32))["data"]
    np.testing.assert_allclose(dx, dy @ w, rtol=1e-5)


@pytest.mark.skipif(not IN_PROJECT_VENV, reason="runs scripts/setup.sh, which manages the checkout's .venv")
def test_second_setup_is_a_cache_hit(capsys):
    caffe_so = Path(import_caffe().__file__).parent / "_caffe.so"
    before = caffe_so.stat().st_mtime_ns
    start = time.monotonic()
    out = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True,
                         check=True, cwd=REPO)
    elapsed = time.monotonic() - start
    assert "found in the cache" in out.stdout
    assert "building BVLC Caffe" not in out.stdout
    assert "installing pycaffe" not in out.stdout
    assert caffe_so.stat().st_mtime_ns == before
    with capsys.disabled():
        print(f"\n[warm set-up took {elapsed:.1f} s]")


@pytest.mark.skipif(not (REPO / "scripts" / "setup.sh").is_file(), reason="scripts/setup.sh is not shipped here (Docker image)")
def test_setup_names_a_missing_python(tmp_path):
    out = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHON": str(tmp_path / "no-python3"), "VENV": str(tmp_path / "venv")})
    assert out.returncode != 0
    assert f"no Python at {tmp_path / 'no-python3'}" in out.stderr and "PYTHON=" in out.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.skipif(not IN_PROJECT_VENV, reason="runs scripts/setup.sh, which manages the checkout's .venv")
def test_setup_reinstalls_an_incomplete_pycaffe():
    """A copy without its completion marker (an interrupted install) is replaced."""
    marker = Path(import_caffe().__file__).parent / ".build-key"
    key = marker.read_text()
    marker.unlink()
    out = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "installing pycaffe" in out.stdout and "building BVLC Caffe" not in out.stdout
    assert marker.read_text() == key


@pytest.mark.skipif(not (REPO / "docker" / "build-caffe.sh").is_file(), reason="the build recipe is not shipped here")
def test_build_refuses_a_source_that_does_not_match_its_pinned_hash(tmp_path):
    fake = tmp_path / "brocolli-caffe-9.0.2.tar.gz"
    fake.write_bytes(b"not the real source")
    out = subprocess.run(["bash", str(REPO / "docker" / "build-caffe.sh"), "--python", sys.executable,
                          "--out", str(tmp_path / "out"), "--sdist", str(fake), "--work", str(tmp_path / "work")],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "expected c6410cc60bdd6db6" in out.stderr and "Delete it and run again" in out.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
