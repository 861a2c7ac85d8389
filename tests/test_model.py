"""GoogLeNet's real architecture (generated weights) and the trained tiny classifier."""
import ctypes.util

import numpy as np
import pytest

import breaking_nn as bnn
from breaking_nn import paths
from breaking_nn.errors import CaffeNotAvailableError, LabelError, ModelError, WeightsError

pytestmark = pytest.mark.slow


@pytest.mark.image
def test_googlenet_shapes(googlenet, cat_data):
    assert googlenet.input_shape == (3, 224, 224)
    assert googlenet.net.blobs["data"].data.shape == (1, 3, 224, 224)
    probs = googlenet.predict(cat_data, display_output=False)
    assert probs.shape == (1000,) and probs.dtype == np.float32
    assert abs(float(probs.sum()) - 1.0) < 1e-4 and probs.min() >= 0


def test_predict_prints_the_blogs_lines(googlenet, cat_data, capsys):
    probs = googlenet.predict(cat_data, n_preds=3)
    lines = capsys.readouterr().out.splitlines()
    top = np.argsort(probs)[::-1][:3]
    assert lines == [f"label: {i:03d} ({bnn.get_label_name(int(i))}), certainty: {round(float(probs[i]) * 100, 2)}%"
                     for i in top]
    googlenet.predict(cat_data, n_preds=1)
    assert capsys.readouterr().out.startswith(f"label: {top[0]:03d} (")


def test_gradient_needs_force_backward(googlenet, cat_data, generated_googlenet_weights, tmp_path):
    grad = googlenet.compute_gradient(cat_data, bnn.MOUSE)
    assert grad.shape == (3, 224, 224) and np.count_nonzero(grad) > 0.5 * grad.size
    without = tmp_path / "deploy-without-force-backward.prototxt"
    without.write_text(paths.googlenet_prototxt().read_text().replace("force_backward: true", ""))
    plain = bnn.load_model(without, generated_googlenet_weights, bnn.imagenet_labels(), force_backward=False)
    assert not np.any(plain.compute_gradient(cat_data, bnn.MOUSE))  # Caffe's trap: all zeros
    fixed = bnn.load_model(without, generated_googlenet_weights, bnn.imagenet_labels())
    np.testing.assert_array_equal(fixed.compute_gradient(cat_data, bnn.MOUSE), grad)


@pytest.mark.image
def test_gradient_matches_finite_differences(tiny_model):
    rng = np.random.default_rng(5)
    data = rng.uniform(0, 255, tiny_model.input_shape).astype(np.float32)
    grad = tiny_model.compute_gradient(data, 1)
    for _ in range(5):
        idx = tuple(rng.integers(0, n) for n in data.shape)
        h = 2.0
        up, down = data.copy(), data.copy()
        up[idx] += h
        down[idx] -= h
        numeric = (tiny_model.forward(up)[1] - tiny_model.forward(down)[1]) / (2 * h)
        assert numeric == pytest.approx(grad[idx], rel=0.05, abs=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((224, 224, 3), np.float32), np.zeros((1, 3, 224, 224), np.float32),
                                 [[0.0]], np.full((3, 224, 224), np.nan, np.float32)])
def test_wrong_input_is_a_clear_error(googlenet, bad):
    with pytest.raises(ModelError, match=r"\(3, 224, 224\)|NaN"):
        googlenet.predict(bad)


@pytest.mark.parametrize("label", [-1, 1000, "no such animal"])
def test_bad_labels(googlenet, cat_data, label):
    with pytest.raises(LabelError):
        googlenet.compute_gradient(cat_data, label)


def test_gpu_request_without_a_gpu(generated_googlenet_weights):
    """A CPU-only build, or (the GPU image here) a CUDA build with no driver: a clear error."""
    if bnn.caffe_runtime.build_info().get("device") == "cuda":
        if ctypes.util.find_library("cuda") is not None:
            pytest.skip("this machine has a CUDA driver")
        expected = "no CUDA driver or GPU found: no CUDA driver.*device='cpu'"
    else:
        expected = "CPU-only.*device='cpu'"
    with pytest.raises(CaffeNotAvailableError, match=expected):
        bnn.load_googlenet(generated_googlenet_weights, device="gpu")


def test_missing_files_are_clear_errors(tmp_path, generated_googlenet_weights, monkeypatch):
    with pytest.raises(ModelError, match="does not exist"):
        bnn.load_model(tmp_path / "x.prototxt", generated_googlenet_weights, bnn.imagenet_labels())
    with pytest.raises(WeightsError, match=r"does not exist.*make weights"):
        bnn.load_googlenet(tmp_path / "missing.caffemodel")
    monkeypatch.setenv("BREAKING_NN_WEIGHTS", str(tmp_path / "absent.caffemodel"))
    with pytest.raises(WeightsError, match=r"not at .*absent.caffemodel.*BREAKING_NN_WEIGHTS"):
        bnn.load_googlenet(download=False)


def test_label_count_must_match(generated_googlenet_weights):
    with pytest.raises(ModelError, match="1000 classes but the label list has 2"):
        bnn.load_model(paths.googlenet_prototxt(), generated_googlenet_weights, bnn.Labels(["a", "b"]))


def test_not_a_softmax_classifier(tmp_path):
    proto = tmp_path / "no-softmax.prototxt"
    proto.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }\n'
                     'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }\n')
    with pytest.raises(ModelError, match="not 'Softmax'"):
        bnn.load_model(proto, None, bnn.Labels(["a", "b"]))


def test_trained_tiny_classifier_is_accurate(tiny_model):
    from tiny_classifier import make_images

    images, labels = make_images(300, np.random.default_rng(99))
    predicted = [int(tiny_model.forward(tiny_model.preprocess(im)).argmax()) for im in images]
    assert np.mean(np.array(predicted) == labels) >= 0.95
