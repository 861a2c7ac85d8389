"""docker/podman-tools.sh: each image check (`make docker-test-cpu`, `make docker-test-gpu`) installs
podman, buildah and debootstrap by itself, so either target works alone on a fresh machine.

The script runs for real, with a PATH of its own: stand-ins for `id` and `apt-get` that record how
they were called, and the tools it looks for present or absent.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docker" / "podman-tools.sh"
TOOLS = ("podman", "buildah", "debootstrap", "curl")


def fake_bin(tmp_path: Path, *, present: tuple[str, ...], uid: int, apt: bool = True) -> Path:
    """A bin/ with `bash`'s basics linked in, the ``present`` tools, an `id -u` printing ``uid`` and,
    if ``apt``, an `apt-get` that appends its arguments to apt.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "sed", "cat"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(real)
    scripts = {"id": f"#!/bin/bash\necho {uid}\n"}
    for tool in present:
        scripts[tool] = "#!/bin/bash\nexit 0\n"
    if apt:
        scripts["apt-get"] = f'#!/bin/bash\necho "$*" >> {tmp_path / "apt.log"}\n'
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run(bin_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "bash"), str(SCRIPT)], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")})


def test_nothing_is_installed_when_every_tool_is_there(tmp_path):
    done = run(fake_bin(tmp_path, present=TOOLS, uid=0))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "apt.log").exists()


@pytest.mark.parametrize("missing", ["podman", "debootstrap"])
def test_a_missing_tool_is_installed_with_apt(tmp_path, missing):
    done = run(fake_bin(tmp_path, present=tuple(t for t in TOOLS if t != missing), uid=0))
    assert done.returncode == 0, done.stderr
    assert f"installing {missing}" in done.stdout
    calls = (tmp_path / "apt.log").read_text()
    assert calls.startswith("install -y") and all(t in calls for t in ("podman", "buildah", "debootstrap"))


def test_without_root_it_says_to_run_as_root_and_installs_nothing(tmp_path):
    done = run(fake_bin(tmp_path, present=("curl",), uid=1000))
    assert done.returncode == 1
    assert "missing podman buildah debootstrap: run as root (sudo make docker-test)" in done.stderr
    assert not (tmp_path / "apt.log").exists()


def test_without_apt_it_says_so(tmp_path):
    done = run(fake_bin(tmp_path, present=("podman", "buildah", "curl"), uid=0, apt=False))
    assert done.returncode == 1
    assert "missing debootstrap, and no apt-get to install them" in done.stderr


@pytest.mark.parametrize("check", ["check-image.sh", "check-gpu-image.sh"])
def test_each_image_check_installs_its_tools_before_using_podman(check):
    """Both `make docker-test-*` targets run it (through image-tests.sh's image_check_start) before
    their first podman or buildah command."""
    starter = code_lines((REPO / "docker" / "image-tests.sh").read_text())
    start = starter.index("image_check_start() {")
    assert any("docker/podman-tools.sh" in line for line in starter[start:starter.index("}", start)])
    code = code_lines((REPO / "docker" / check).read_text())
    first_tools = next(i for i, line in enumerate(code) if line.startswith("image_check_start "))
    # podman_build, buildah_run: docker/memfd-retry.sh; build_image, enter_image: docker/image-tests.sh
    tools = ("podman ", "buildah ", "podman_build ", "buildah_run ", "build_image ", "enter_image ")
    first_podman = next(i for i, line in enumerate(code) if
                        line.startswith(tools) or any(f" {tool}" in line or f"({tool}" in line for tool in tools))
    assert first_tools < first_podman


def code_lines(text: str) -> list[str]:
    """The lines of a shell script that are not blank or comments, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
