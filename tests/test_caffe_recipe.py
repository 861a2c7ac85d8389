"""The Caffe recipe's patch series (docker/patches/): every patch applies to the pinned
source in order and reverse-applies back to it; a patch that does not apply is named;
the cache key follows the patches and the .venv's own NumPy, whatever PYTHONPATH says.

Runs on the host, where scripts/setup.sh keeps the pinned sdist (in its cache's work/).
"""
from __future__ import annotations

import filecmp
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, skip_unless_ci

sys.path.insert(0, str(REPO / "scripts"))  # scripts/ is not a package; the image does not carry it
try:
    from caffe_sdist import pinned_sdist, unpack
except ImportError:
    pinned_sdist = unpack = None

PATCHES = REPO / "docker" / "patches"
APPLY = REPO / "docker" / "apply-patches.sh"


def series() -> list[tuple[str, str]]:
    """(patch file name, the only device it is for or '') per line of docker/patches/series."""
    rows = []
    for line in (PATCHES / "series").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, *only = line.split()
            rows.append((name, only[0] if only else ""))
    return rows


@pytest.fixture(scope="module")
def sdist() -> Path:
    if pinned_sdist is None:
        pytest.skip("the checkout's scripts/ folder is not here (inside the image: these tests run on the host)")
    path, sha256 = pinned_sdist()
    if not path.is_file():
        skip_unless_ci(f"the pinned Caffe sdist is not in {path.parent} (scripts/setup.sh puts it there)")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    return path


def same_tree(a: Path, b: Path) -> list[str]:
    """Paths that differ between two trees (by content), or exist in one only."""
    cmp = filecmp.dircmp(a, b)
    out = [str(Path(a, n)) for n in cmp.left_only + cmp.right_only + cmp.funny_files]
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    out += [str(Path(a, n)) for n in mismatch + errors]
    for sub in cmp.common_dirs:
        out += same_tree(a / sub, b / sub)
    return out


def apply(src: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(APPLY), "--src", str(src), *args], capture_output=True, text=True)


def test_the_series_lists_every_patch_once_and_each_has_a_header():
    names = [name for name, _ in series()]
    assert sorted(names) == names == sorted(p.name for p in PATCHES.glob("*.patch"))
    assert {only for _, only in series()} <= {"", "cpu", "cuda"}
    for name in names:
        header = (PATCHES / name).read_text().split("\n--- a/", 1)[0]
        for field in ("Description:", " What:", " Why:", " Same numbers:", " Gain:"):
            assert field in header, f"{name}: its header has no '{field.strip()}'"


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_series_applies_to_the_pinned_source_and_reverse_applies_to_it(sdist, tmp_path, device):
    pristine = unpack(sdist, tmp_path / "pristine")
    src = unpack(sdist, tmp_path / "patched")
    done = apply(src, "--device", device)
    assert done.returncode == 0, done.stderr
    n = sum(1 for _, only in series() if only in ("", device))
    assert f"applied {n} patches ({device})" in done.stdout
    changed = same_tree(pristine, src)
    assert str(pristine / "src/caffe/layers/pooling_layer.cpp") in changed
    assert (str(pristine / "include/caffe/layers/relu6_layer.hpp") in changed) == (device == "cuda")
    assert not list(src.rglob("*.orig")) and not list(src.rglob("*.rej"))
    undone = apply(src, "--device", device, "--reverse")
    assert undone.returncode == 0, undone.stderr
    assert same_tree(pristine, src) == []


def test_a_patch_that_does_not_apply_stops_the_series_and_is_named(sdist, tmp_path):
    src = unpack(sdist, tmp_path / "src")
    assert apply(src).returncode == 0
    again = apply(src)  # every patch is now already in: the first one cannot apply
    assert again.returncode == 1
    first = series()[0][0]
    assert f"docker/patches/{first} does not apply to {src}" in again.stderr
    assert again.stderr.count("does not apply") == 1


def key_tree(tmp_path: Path) -> Path:
    """A copy of what scripts/caffe-key.sh reads."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "caffe-key.sh", root / "scripts")
    shutil.copytree(REPO / "docker", root / "docker")
    return root


def caffe_key(root: Path, **env: str) -> str:
    out = subprocess.run(["bash", str(root / "scripts" / "caffe-key.sh"), sys.executable],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True)
    assert re.fullmatch(r"[0-9a-f]{16}\n", out.stdout)
    return out.stdout


def test_the_caffe_cache_key_follows_the_patches(tmp_path):
    root = key_tree(tmp_path)
    before = caffe_key(root)
    patch = root / "docker" / "patches" / series()[-1][0]
    patch.write_text(patch.read_text() + "\n")
    assert caffe_key(root) != before
    (root / "docker" / "patches" / "series").write_text("".join(
        f"{name}\n" for name, _ in series()[:-1]))
    assert len({before, caffe_key(root)}) == 2


def test_the_caffe_cache_key_reads_the_venvs_own_numpy_whatever_pythonpath_says(tmp_path):
    fake = tmp_path / "other-venv" / "numpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = '2.0.0'\n")
    seen = subprocess.run([sys.executable, "-c", "import numpy; print(numpy.__version__)"],
                          env={**os.environ, "PYTHONPATH": str(fake.parent)}, capture_output=True, text=True)
    assert seen.stdout.strip() == "2.0.0"  # the shape of the README's PyTorch hint
    root = key_tree(tmp_path)
    assert caffe_key(root, PYTHONPATH=str(fake.parent)) == caffe_key(root)




@pytest.mark.parametrize("clones", [True, False], ids=["best-clone", "sse2"])
def test_patched_pooling_matches_the_stock_loop_on_every_shape(sdist, clones):
    """Patches 0005 and 0011's CPU pooling loops, cut out of the patched source and compiled into
    tests/pooling_harness.cpp (scripts/pooling_harness.py), give the stock loop's bits for 5,172 cases:
    kernel 1-5, stride 1-3, pad 0-2, float and double, uniform and special inputs (NaN, +-inf, -FLT_MAX,
    -0.0, ties); once with the load-time clones (AVX-512F / AVX2 where the CPU has them), once plain SSE2."""
    if shutil.which("g++") is None:
        skip_unless_ci("g++ is missing (docker/install-build-deps.sh installs it)")
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "pooling_harness.py"),
                          *([] if clones else ["--no-clones"])], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert "0 of 5172 cases differ from the stock loop" in run.stdout
