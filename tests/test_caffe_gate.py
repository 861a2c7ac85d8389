"""The set-up's gate (docker/caffe-gtests.sh), the BLAS kernel it names, and a set-up that fails well.

These run the real gate against the cached Caffe build, ask the real OpenBLAS for its
kernel, and make the real scripts/setup.sh fail at a step (pip, against a refused port).
They never set OPENBLAS_CORETYPE: whatever this machine's environment says applies alike
to the gate, to breaking_nn.blas_info and to the library's own answer.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from breaking_nn import paths
from breaking_nn.blas_info import caffe_blas, libcaffe_path, linked_blas
from breaking_nn.caffe_runtime import build_info

REPO = Path(__file__).resolve().parents[1]
GATE = REPO / "docker" / "caffe-gtests.sh"
CACHE = paths.cache_dir()
recipe_only = pytest.mark.skipif(not GATE.is_file(), reason="the build recipe is not shipped here (Docker image)")


def corename_asked_in_a_fresh_process(library: str) -> str:
    """openblas_get_corename() of ``library``, asked by a separate process with this environment."""
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); f = lib.openblas_get_corename; "
            "f.restype = ctypes.c_char_p; print(f().decode().strip())")
    return subprocess.run([sys.executable, "-c", code, library], capture_output=True, text=True,
                          check=True).stdout.strip()


def cached_build() -> Path:
    """The cache folder of the build this venv's pycaffe came from (its .build-key names it)."""
    key = (libcaffe_path().parent / ".build-key").read_text().strip()
    return CACHE / f"caffe-{key}"


@pytest.mark.image
def test_the_named_kernel_is_the_one_caffes_openblas_reports():
    info = caffe_blas()
    library = linked_blas(libcaffe_path())
    assert info.library == library and library is not None
    if info.api != "openblas":
        pytest.skip(f"Caffe links {library}, which is not OpenBLAS: no kernel to compare")
    assert info.kernel == corename_asked_in_a_fresh_process(library)
    printed = subprocess.run([sys.executable, "-m", "breaking_nn.blas_info"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert printed == str(info) and f"kernel {info.kernel} ({library})" in printed


@pytest.mark.slow
def test_a_benchmark_prints_the_cpu_and_the_kernel_its_figures_ran_on():
    library = linked_blas(libcaffe_path())
    kernel = corename_asked_in_a_fresh_process(library)
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark_gemm.py"), "--repeats", "1"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    header = out.splitlines()[0]
    assert f"kernel {kernel} ({library})" in header and f"({os.cpu_count()} CPUs)" in header
    assert "GFLOP/s" in out


@pytest.mark.skipif(build_info().get("device") != "cpu", reason="the gate runs in CPU builds only")
@pytest.mark.image
def test_the_build_records_the_gate_and_the_kernel_it_ran_under():
    info = build_info()
    assert set(info["gtests"]) == {"pooling_layer", "lrn_layer", "im2col_layer", "convolution_layer",
                                   "inner_product_layer", "neuron_layer"}
    assert info["gtest_repeat"] == 1
    assert info["gtest_blas_kernel"] and info["gtest_blas_kernel"] in info["gtest_blas"]


@recipe_only
@pytest.mark.slow
def test_the_gate_passes_on_the_cached_build_and_names_its_kernel(tmp_path):
    build = cached_build()
    if not (build / "gtests").is_dir():
        pytest.skip(f"{build} has no gtests/ (a build of an older recipe)")
    out = subprocess.run(["bash", str(GATE), "--build", str(build), "--repeat", "2", "--python", sys.executable,
                          "--logs", str(tmp_path), "--json", str(tmp_path / "gate.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert gate["gtest_repeat"] == 2 and set(gate["gtests"]) == set(build_info()["gtests"])
    kernel = caffe_blas().kernel
    assert gate["gtest_blas_kernel"] == kernel and f"kernel {kernel}" in out.stdout
    assert "inner_product_layer: 18 tests. x 2 repeats" in out.stdout
    assert sorted(p.name for p in tmp_path.glob("gtest-*.log")) == sorted(f"gtest-{n}.log" for n in gate["gtests"])


@recipe_only
def test_a_failing_gtest_names_the_test_the_kernel_the_log_and_what_to_do(tmp_path):
    """A build whose inner_product gtest binary fails: here a copy of the real build where that
    binary is a script printing gtest's failure lines (the real binary cannot be made to fail)."""
    build = cached_build()
    if not (build / "gtests").is_dir():
        pytest.skip(f"{build} has no gtests/ (a build of an older recipe)")
    copy = tmp_path / "build"
    shutil.copytree(build, copy, symlinks=True)
    failing = copy / "gtests" / "test_inner_product_layer.testbin"
    failing.write_text("#!/bin/sh\necho '[ RUN      ] InnerProductLayerTest/0.TestForwardTranspose'\n"
                       "echo 'Expected: data[i]'\n"
                       "echo '[  FAILED  ] InnerProductLayerTest/0.TestForwardTranspose, where TypeParam = x (0 ms)'\n"
                       "exit 1\n")
    out = subprocess.run(["bash", str(GATE), "--build", str(copy), "--python", sys.executable, "--logs",
                          str(tmp_path / "logs")], capture_output=True, text=True)
    assert out.returncode == 1
    err = out.stderr
    assert "Caffe's inner_product_layer gtest failed: InnerProductLayerTest/0.TestForwardTranspose (1 of 1 repeats)" in err
    assert "Expected: data[i]" in err
    assert f"full log: {tmp_path / 'logs' / 'gtest-inner_product_layer.log'}" in err
    info = caffe_blas()
    assert f"ran under BLAS {info.api and 'OpenBLAS'}" in err and (info.kernel is None or f"kernel {info.kernel}" in err)
    assert "make caffe-gtests REPEAT=20" in err and "OPENBLAS_CORETYPE=" in err


@recipe_only
def test_the_gate_refuses_a_bad_repeat_count(tmp_path):
    out = subprocess.run(["bash", str(GATE), "--build", str(tmp_path), "--repeat", "0"], capture_output=True, text=True)
    assert out.returncode == 1 and "must be a whole number >= 1, not '0'" in out.stderr


@pytest.mark.skipif(not (REPO / "scripts" / "setup.sh").is_file(), reason="scripts/setup.sh is not shipped here")
def test_a_failed_setup_step_names_the_step_its_log_and_the_command_to_rerun(tmp_path):
    with socket.socket() as s:  # a loopback port that refuses: pip's index is unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(VENV=str(tmp_path / "venv"), BREAKING_NN_CACHE=str(tmp_path / "cache"), PIP_CONFIG_FILE=os.devnull,
               PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple", PIP_RETRIES="0", PIP_TIMEOUT="2")
    out = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=300)
    assert out.returncode == 1
    log = tmp_path / "cache" / "logs" / "pip.log"
    lines = out.stderr.strip().splitlines()
    assert lines[-3:] == ["setup: error: step 'Python packages (pip, requirements.txt)' failed",
                          f"setup:   full log: {log}", "setup:   run again with: make setup"], out.stderr
    assert log.is_file() and "127.0.0.1" in log.read_text()
