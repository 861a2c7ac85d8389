"""docker/memfd-retry.sh: `buildah_run` and `podman_build` try again only when buildah failed to seal
its memfd copy (the kernel's transient EBUSY, seen once in CI) and so never started the command.

The functions run for real in bash, against a stand-in `buildah` (or `podman`) first on PATH: it
fails the way buildah does for its first ``races`` calls, then runs the command after ``--``.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELPER = REPO / "docker" / "memfd-retry.sh"
RACE = "Close_Fd sealing memfd copy: Device or resource busy"


def stand_in_buildah(tmp_path: Path, *, races: int, other_failure: int = 0, tool: str = "buildah") -> Path:
    """A bin/ whose `buildah` counts its calls in calls.log, prints buildah's race message and exits 1
    for the first ``races`` calls, exits ``other_failure`` (if not 0) with another message, and
    otherwise runs the command after ``--``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    (bin_dir / tool).write_text(f"""#!/bin/bash
echo "$*" >> {calls}
n=$(wc -l < {calls})
if [ "$n" -le {races} ]; then
  echo "{RACE}" >&2; echo "subprocess exited with status 1" >&2; exit 1
fi
if [ {other_failure} != 0 ]; then echo "Error: no such container" >&2; exit {other_failure}; fi
while [ "$1" != -- ]; do shift; done; shift
exec "$@"
""")
    (bin_dir / tool).chmod(0o755)
    return bin_dir


def call_helper(bin_dir: Path, *args: str, prelude: str = "", function: str = "buildah_run"
                ) -> subprocess.CompletedProcess:
    """Source the helper in a fresh bash (after ``prelude``) and call ``function`` with ``args``."""
    script = f'{prelude}\n. "{HELPER}"; {function} "$@"'
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", script, "buildah_run", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.log").read_text().splitlines()


def test_the_memfd_race_is_tried_again_and_the_command_runs_once(tmp_path):
    bin_dir = stand_in_buildah(tmp_path, races=2)
    result = call_helper(bin_dir, "--env", "A=1", "ctr", "--", "bash", "-c", "echo ran; echo note >&2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran\n"
    assert calls(tmp_path) == ["run --isolation chroot --env A=1 ctr -- bash -c echo ran; echo note >&2"] * 3
    assert result.stderr.count("Trying again") == 2
    assert result.stderr.count(RACE) == 2  # buildah's own lines are passed through
    assert result.stderr.endswith("note\n")


def test_three_races_in_a_row_fail_with_buildahs_status(tmp_path):
    bin_dir = stand_in_buildah(tmp_path, races=3)
    result = call_helper(bin_dir, "ctr", "--", "true")
    assert result.returncode == 1
    assert len(calls(tmp_path)) == 3
    assert result.stderr.count("Trying again") == 2


def test_any_other_failure_returns_at_once_with_its_status(tmp_path):
    bin_dir = stand_in_buildah(tmp_path, races=0, other_failure=125)
    result = call_helper(bin_dir, "ctr", "--", "true")
    assert result.returncode == 125
    assert len(calls(tmp_path)) == 1
    assert "Trying again" not in result.stderr
    assert "no such container" in result.stderr


def test_a_failing_command_is_not_run_twice(tmp_path):
    bin_dir = stand_in_buildah(tmp_path, races=0)
    marker = tmp_path / "runs"
    result = call_helper(bin_dir, "ctr", "--", "bash", "-c", f"echo x >> {marker}; exit 3")
    assert result.returncode == 3
    assert marker.read_text() == "x\n"


def test_a_background_job_of_the_caller_does_not_hold_it_up(tmp_path):
    """The image checks start a server in the background, then call buildah_run: it must return
    when buildah does (a first version waited on `$!`, the server, for ever)."""
    bin_dir = stand_in_buildah(tmp_path, races=1)
    result = call_helper(bin_dir, "ctr", "--", "bash", "-c", "echo done", prelude="set -euo pipefail; sleep 300 >/dev/null 2>&1 & bg=$!; trap 'kill $bg' EXIT")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert len(calls(tmp_path)) == 2


def test_under_errexit_a_failure_stops_the_calling_script(tmp_path):
    bin_dir = stand_in_buildah(tmp_path, races=0)
    result = call_helper(bin_dir, "ctr", "--", "false", prelude="set -euo pipefail; trap 'echo exited $? >&2' EXIT")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("exited 1")


def test_podman_build_is_tried_again_on_the_race_of_a_run_step(tmp_path):
    """A RUN step's stderr is podman build's: the race shows there, and the build runs again."""
    bin_dir = stand_in_buildah(tmp_path, races=1, tool="podman")
    result = call_helper(bin_dir, "--isolation=chroot", "-t", "img", "--", "echo", "built",
                         function="podman_build")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "built\n"
    assert calls(tmp_path) == ["build --isolation=chroot -t img -- echo built"] * 2
