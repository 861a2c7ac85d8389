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
