"""The blog's own numbers, with BVLC's trained GoogLeNet weights.

These need ``bvlc_googlenet.caffemodel`` (``make weights``); each test skips,
saying so, where the file is absent.
"""
import numpy as np
import pytest

import breaking_nn as bnn
from breaking_nn import attack, paths, weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_googlenet():
    path = paths.googlenet_weights()
    if not path.is_file():
        pytest.skip(f"BVLC GoogLeNet weights not at {path}: run `make weights` (53.5 MB download) to run this test")
    if not weights.is_verified(path):
        pytest.fail(f"{path} is not BVLC's file (size or SHA-1 differ): delete it and run `make weights`")
    return bnn.load_googlenet(path, download=False)


@pytest.fixture(scope="module")
def liz(real_googlenet, liz_path):
    return real_googlenet.preprocess(bnn.load_image(liz_path))


def test_liz_is_a_persian_cat_at_13_94(real_googlenet, liz):
    probs = real_googlenet.predict(liz, display_output=False)
    assert probs.argmax() == bnn.PERSIAN_CAT
    assert round(float(probs[bnn.PERSIAN_CAT]) * 100, 2) == pytest.approx(13.94, abs=0.02)


def test_one_step_toward_mouse_gives_52_87(real_googlenet, liz):
    grad = real_googlenet.compute_gradient(liz, bnn.MOUSE)
    probs = real_googlenet.predict(np.round(liz + 0.9 * np.sign(grad)), display_output=False)
    assert round(float(probs[bnn.MOUSE]) * 100, 2) == pytest.approx(52.87, abs=0.05)


def test_thirty_steps_make_a_king_penguin_at_51_84(real_googlenet, liz):
    new, steps = attack.trick(real_googlenet, liz, bnn.KING_PENGUIN, n_steps=30)
    probs = real_googlenet.predict(new, display_output=False)
    assert len(steps) == 29
    assert round(float(probs[bnn.KING_PENGUIN]) * 100, 2) == pytest.approx(51.84, abs=0.05)
