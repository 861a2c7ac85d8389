"""BandTiles (the attack's full-resolution products as BLAS tiles) against scipy's own sparse products."""
import numpy as np
import pytest
from scipy import sparse

from breaking_nn.banded import BAND, BandTiles
from breaking_nn.workspace import Workspace, reusing, scratch
from breaking_nn.preprocessing import pillow_matrix, resize_matrix


def stacked_resizes(n_in: int) -> sparse.csr_matrix:
    """Three real banded maps of n_in rows stacked: Pillow Lanczos, scikit-image anti-aliased, a window's rows."""
    window = sparse.identity(n_in, np.float32, format="csr")[17:n_in - 40]
    return sparse.vstack([pillow_matrix(n_in, 61, "lanczos"), resize_matrix(n_in, 45, True),
                          resize_matrix(n_in - 57, 33, False) @ window], format="csr")


@pytest.mark.parametrize("band", [BAND, 7])
def test_tiles_times_a_uint8_or_float_array_equal_scipys_product(band):
    matrix = stacked_resizes(301)
    rng = np.random.default_rng(band)
    photo = rng.integers(0, 256, (301, 40 * 3), dtype=np.uint8)  # an HWC photo's rows, (H, 3 W)
    tiles = BandTiles(matrix, band=band)
    expected = matrix @ photo.astype(np.float32)
    np.testing.assert_allclose(tiles.times(photo), expected, rtol=0, atol=2e-5 * np.abs(expected).max())
    noise = rng.standard_normal((301, 5)).astype(np.float32)
    np.testing.assert_allclose(tiles.times(noise), matrix @ noise, rtol=0, atol=1e-5)


@pytest.mark.parametrize("band", [BAND, 7])
def test_transposed_bands_cover_every_row_once_and_equal_scipys_transpose(band):
    """Rows no map reads (here the first 17 of the window's, for one map of three) still come, as zeros."""
    matrix = stacked_resizes(301)
    m = np.random.default_rng(3).standard_normal((matrix.shape[0], 12)).astype(np.float32)
    pieces = list(BandTiles(matrix, band=band).transposed_bands(m))
    assert [rows.start for rows, _ in pieces] == list(range(0, 301, band))
    together = np.concatenate([piece for _, piece in pieces])
    assert together.shape == (301, 12)
    np.testing.assert_allclose(together, matrix.T @ m, rtol=0, atol=1e-5)


def test_a_matrix_with_empty_bands_and_repeated_entries():
    """All-zero column bands give zero rows; entries given twice (COO) are summed, as scipy sums them."""
    coo = sparse.coo_matrix((np.float32([1, 2, 3, 0.5]), ([0, 1, 1, 1], [2, 150, 150, 149])), shape=(3, 200))
    tiles = BandTiles(coo, band=16)
    x = np.arange(200 * 2, dtype=np.float32).reshape(200, 2)
    np.testing.assert_array_equal(tiles.times(x), coo.tocsr() @ x)
    transposed = np.concatenate([piece for _, piece in tiles.transposed_bands(np.ones((3, 2), np.float32))])
    np.testing.assert_array_equal(transposed, coo.T.tocsr() @ np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="times"):
        tiles.times(np.zeros((199, 2), np.float32))


def test_a_result_never_reads_what_the_reused_buffer_held_before():
    """times assigns each row where it first meets it and zeroes rows no tile has: no clearing, no leftovers."""
    matrix = sparse.vstack([stacked_resizes(301), sparse.csr_matrix((2, 301), dtype=np.float32)], format="csr")
    x = np.random.default_rng(4).integers(0, 256, (301, 9), dtype=np.uint8)
    with reusing(Workspace()):
        scratch((matrix.shape[0], 9)).fill(np.nan)
        result = BandTiles(matrix, band=16).times(x)
        np.testing.assert_allclose(result, matrix @ x.astype(np.float32), rtol=1e-5, atol=1e-3)
        assert not result[-2:].any()


def test_channel_tiles_are_the_matrix_on_each_channel_of_interleaved_rows():
    """channels=3: kron(matrix, I3), the (w', W) column map acting on an HWC photo's (3 W) rows."""
    cols = pillow_matrix(90, 31, "bicubic")
    tiles = BandTiles(cols, band=8, channels=3)
    kron = sparse.kron(cols, sparse.identity(3, np.float32), format="csr")
    assert tiles.shape == kron.shape == (93, 270)
    y = np.random.default_rng(6).standard_normal((5, 93)).astype(np.float32)
    np.testing.assert_allclose(tiles.rmatmul(y), y @ kron, rtol=0, atol=1e-5)
    z = np.random.default_rng(7).standard_normal((5, 270)).astype(np.float32)
    np.testing.assert_allclose(tiles.rmatmul_transpose(z), z @ kron.T, rtol=0, atol=1e-5)


def test_the_products_hand_back_their_own_arrays_not_views_of_the_reused_buffer():
    """linear_data and summed_adjoint inside an attack's workspace give what they give without one, and
    their results survive the next use of the buffer."""
    import cv2
    from skimage import data as skdata

    from breaking_nn.pipelines import linear_data, random_pipeline, summed_adjoint
    from breaking_nn.preprocessing import Preprocessing

    pre = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224), resizer="pillow",
                        mean_bgr=(104.0, 117.0, 123.0))
    size = (900, 1200)
    photo = cv2.resize(skdata.chelsea(), (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(5)
    pipelines = [random_pipeline(pre, rng, photo_size=size) for _ in range(4)]
    grads = [rng.standard_normal((3, 224, 224)).astype(np.float32) for _ in pipelines]
    expected_data = linear_data(photo, pipelines)
    expected_adjoint = summed_adjoint([p.adjoint_factors(g, size) for p, g in zip(pipelines, grads)], size)
    ws = Workspace()
    with reusing(ws):
        data = linear_data(photo, pipelines)
        adjoint = summed_adjoint([p.adjoint_factors(g, size) for p, g in zip(pipelines, grads)], size)
        scratch((2000, 2000)).fill(np.nan)  # the next user of the buffer
    np.testing.assert_array_equal(data, expected_data)
    np.testing.assert_array_equal(adjoint, expected_adjoint)
