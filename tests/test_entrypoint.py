"""The image's entrypoint and the app's start script, run as they are (no container needed)."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

if not (REPO / "docker" / "entrypoint.sh").is_file():  # inside the image: the scripts are in /usr/local/bin
    pytest.skip("the checkout's docker/ folder is not here (inside the image, docker/check-app.sh checks them)",
                allow_module_level=True)


def entrypoint(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """docker/entrypoint.sh with start-app and start-jupyter on PATH, as the Dockerfile installs them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, script in [("start-app", "start-app.sh"), ("start-jupyter", "start-jupyter.sh")]:
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(REPO / "docker" / script)
    return subprocess.run([str(REPO / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env})


def test_any_other_command_runs_as_given(tmp_path):
    result = entrypoint(tmp_path, "echo", "hello", "app")
    assert result.returncode == 0 and result.stdout == "hello app\n"


def test_app_and_lab_refuse_an_empty_token(tmp_path):
    for command in ("app", "lab"):
        result = entrypoint(tmp_path, command, JUPYTER_TOKEN="")
        assert result.returncode == 2 and "JUPYTER_TOKEN is empty" in result.stderr, (command, result.stderr)


def test_start_app_names_a_missing_notebook(tmp_path):
    result = entrypoint(tmp_path, "app", APP_NOTEBOOK=str(tmp_path / "nope.ipynb"), JUPYTER_TOKEN="t")
    assert result.returncode == 2 and "nope.ipynb is missing" in result.stderr
