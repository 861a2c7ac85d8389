"""The blog's preprocessing: caffe.io.Transformer, 2017-style resize, no mean."""
import numpy as np
import pytest
from skimage.transform import resize

import breaking_nn as bnn
from breaking_nn.caffe_runtime import import_caffe


def blog_transformer(shape=(1, 3, 224, 224)):
    caffe = import_caffe()
    t = caffe.io.Transformer({"data": shape})
    t.set_transpose("data", (2, 0, 1))
    t.set_raw_scale("data", 255)
    t.set_channel_swap("data", (2, 1, 0))
    return t


@pytest.mark.slow
def test_liz_preprocessing_equals_the_blogs_transformer(googlenet, liz_path):
    caffe = import_caffe()
    ours = googlenet.preprocess(bnn.load_image(liz_path))
    blog = blog_transformer().preprocess("data", caffe.io.load_image(str(liz_path)))
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, blog, atol=1e-4)


@pytest.mark.slow
def test_resize_is_2017s_bilinear_without_anti_aliasing(googlenet, liz_path):
    img = bnn.load_image(liz_path)
    data = googlenet.preprocess(img)
    lo, hi = img.min(), img.max()
    for anti_aliasing, should_match in ((False, True), (True, False)):
        ref = resize((img - lo) / (hi - lo), (224, 224), order=1, mode="constant", anti_aliasing=anti_aliasing)
        ref = (ref * (hi - lo) + lo)[:, :, ::-1].transpose(2, 0, 1) * 255
        diff = np.abs(data - ref).max()
        assert (diff < 1e-3) == should_match, (anti_aliasing, diff)


def test_layouts_round_trip(googlenet):
    img = np.random.default_rng(0).random((224, 224, 3)).astype(np.float32)
    data = googlenet.preprocess(img)
    np.testing.assert_allclose(data[0], img[:, :, 2] * 255, rtol=1e-5)  # channel 0 is blue
    np.testing.assert_allclose(googlenet.deprocess(data), img, atol=1e-5)


def test_preprocess_rejects_chw(googlenet):
    with pytest.raises(bnn.ModelError, match=r"\(H, W, 3\)"):
        googlenet.preprocess(np.zeros((3, 224, 224), np.float32))
