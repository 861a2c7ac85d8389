"""The attack's reused memory: scratch arrays and the Pillow image, shared inside reusing and new outside."""
import numpy as np
from PIL import Image

from breaking_nn.preprocessing import pillow_resize
from breaking_nn.workspace import Workspace, pillow_rgb, reusing, scratch


def test_scratch_arrays_share_the_workspace_inside_reusing_and_are_new_outside():
    ws = Workspace()
    with reusing(ws):
        first = scratch((300, 7))
        second = scratch((7, 300))  # same size: same memory
        bigger = scratch((600, 7))  # grown: new memory, the old buffer let go
        assert np.shares_memory(first, second) and not np.shares_memory(first, bigger)
        inner = Workspace()
        with reusing(inner):
            assert not np.shares_memory(scratch((600, 7)), bigger)
        assert np.shares_memory(scratch((600, 7)), bigger)  # the outer workspace again
    assert not np.shares_memory(scratch((600, 7)), bigger)
    ws.release()
    with reusing(ws):
        assert not np.shares_memory(scratch((600, 7)), bigger)


def test_pillow_images_reuse_the_workspaces_one_and_resize_exactly_as_fromarray():
    rng = np.random.default_rng(8)
    first, second = (rng.integers(0, 256, (301, 457, 3), dtype=np.uint8) for _ in range(2))
    other_size = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    expected = [np.asarray(Image.fromarray(p, "RGB").resize((64, 48), Image.BICUBIC)) for p in (first, second)]
    ws = Workspace()
    with reusing(ws):
        kept = pillow_rgb(first)
        assert pillow_rgb(second) is kept  # the same size: copied into the same image
        np.testing.assert_array_equal(np.asarray(kept), second)
        assert pillow_rgb(other_size) is not kept and pillow_rgb(other_size).size == (90, 120)
        for photo, want in zip((first, second), expected):
            np.testing.assert_array_equal(pillow_resize(photo, (48, 64), "bicubic"), want)
        transposed = np.ascontiguousarray(first.transpose(1, 0, 2))[:, ::-1].transpose(1, 0, 2)  # not C-contiguous
        np.testing.assert_array_equal(np.asarray(pillow_rgb(transposed)), transposed)
    assert pillow_rgb(first) is not kept  # outside: a new image each time
    ws.release()
    with reusing(ws):
        assert pillow_rgb(first) is not kept
