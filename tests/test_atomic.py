"""atomic_path: the old file or the whole new one, never a part."""
import pytest

from breaking_nn.atomic import atomic_path


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    dest = tmp_path / "sub" / "out.txt"
    with atomic_path(dest) as part:
        part.write_text("first")
    assert dest.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as part:
            part.write_text("half of the sec")
            raise RuntimeError("interrupted")
    assert dest.read_text() == "first"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.txt"]


def test_the_file_gets_the_permissions_open_would_give(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "shared.png") as part:
            part.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.png").stat().st_mode & 0o777 == 0o640  # 0666 less the umask, not mkstemp's 0600
