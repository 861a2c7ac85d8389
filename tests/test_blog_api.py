"""The blog's own calls on the current model (pyplot-style), against the model object's numbers."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import pyplot as plt

import breaking_nn as bnn
from breaking_nn import ModelError, attack, current, paths
from breaking_nn import compute_gradient, get_label_name, plot_steps, predict, trick

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def keep_current_model(monkeypatch):
    """Whatever a test makes current is undone after it; open figures are closed."""
    monkeypatch.setattr(current, "_current", current.get_current())
    yield
    plt.close("all")


def test_the_blogs_calls_give_the_model_objects_numbers(googlenet, cat_data, capsys):
    bnn.use_model(googlenet)
    img_data = cat_data.copy()

    probs = predict(img_data, n_preds=1)
    reference = googlenet.predict(img_data, display_output=False)
    np.testing.assert_allclose(probs, reference, atol=1e-6, rtol=0)
    top = int(reference.argmax())
    assert capsys.readouterr().out == (
        f"label: {top:03d} ({get_label_name(top)})\ncertainty: {round(float(reference[top]) * 100, 2)}%\n"
    )

    mouse = 673
    grad = compute_gradient(img_data, mouse)
    reference_grad = googlenet.compute_gradient(img_data, "mouse")
    assert grad.shape == (3, 224, 224) and np.count_nonzero(grad) > 0.5 * grad.size
    np.testing.assert_allclose(grad / np.abs(reference_grad).max(), reference_grad / np.abs(reference_grad).max(),
                               atol=1e-6, rtol=0)

    delta = np.sign(grad)
    multiplicator = 0.9
    new_predictions = predict(np.round(img_data + multiplicator*delta), n_preds=5)
    one_step = np.round(cat_data + 0.9 * np.sign(reference_grad))
    np.testing.assert_allclose(new_predictions, googlenet.predict(one_step, display_output=False), atol=1e-6, rtol=0)
    assert not np.allclose(new_predictions, probs, atol=1e-6, rtol=0)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5 and all(re.fullmatch(r"label: \d{3} \(.+\), certainty: [\d.]+%", line) for line in printed)

    penguin_label = 145
    new_image, steps = trick(img_data, penguin_label, n_steps=30)
    reference_image, reference_steps = attack.trick(googlenet, cat_data, "king penguin", n_steps=30)
    assert len(steps) == len(reference_steps) == 29
    np.testing.assert_allclose(new_image, reference_image, atol=1e-6, rtol=0)
    for ours, theirs in zip(steps, reference_steps):
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    assert 0 < np.abs(new_image - img_data).max() <= 0.9 * 29 / 30 + 1e-4
    np.testing.assert_array_equal(img_data, cat_data)  # the blog's calls do not touch their input

    mouse_label = 673
    keyboard_label = 508
    persian_cat_label = 283
    penguin_label = 145

    label_list = [mouse_label, keyboard_label, persian_cat_label, penguin_label]
    ax = plot_steps(steps, label_list, figsize=(10, 5))
    assert [line.get_label() for line in ax.get_lines()] == [get_label_name(label) for label in label_list]
    for line, label in zip(ax.get_lines(), label_list):
        np.testing.assert_allclose(line.get_ydata(), [s[label] for s in reference_steps], atol=1e-6, rtol=0)
    assert tuple(ax.figure.get_size_inches()) == (10, 5)
    assert ax.get_xlabel() == "Step number" and ax.get_ylabel() == "Probability of label"


def test_predict_draws_the_image_as_the_blogs_did(googlenet, cat_data, capsys):
    bnn.use_model(googlenet)
    pred = predict(cat_data, n_preds=5)
    plt.title("Original predictions")
    ax = plt.gca()
    assert ax.get_title() == "Original predictions"
    np.testing.assert_allclose(ax.images[0].get_array(), googlenet.deprocess(cat_data), atol=1e-6)
    assert len(capsys.readouterr().out.splitlines()) == 5
    figures = plt.get_fignums()
    np.testing.assert_allclose(predict(cat_data, display_output=False), pred, atol=1e-6, rtol=0)
    assert plt.get_fignums() == figures and capsys.readouterr().out == ""


def test_loading_a_model_makes_it_the_current_one(googlenet, tiny_model, generated_googlenet_weights, cat_data):
    bnn.use_model(googlenet)
    assert bnn.current_model() is googlenet
    second = bnn.load_googlenet(generated_googlenet_weights)
    assert second is not googlenet and bnn.current_model() is second
    third = bnn.load_model(paths.googlenet_prototxt(), generated_googlenet_weights, bnn.imagenet_labels())
    assert bnn.current_model() is third

    bnn.use_model(tiny_model)
    assert bnn.current_model() is tiny_model
    tiny_data = tiny_model.preprocess(np.full((16, 16, 3), 0.5, np.float32))
    np.testing.assert_allclose(predict(tiny_data, display_output=False), tiny_model.forward(tiny_data),
                               atol=1e-6, rtol=0)
    with pytest.raises(ModelError, match=r"\(3, 16, 16\)"):
        compute_gradient(cat_data, 1)
    _, steps = trick(tiny_data, "pattern c", n_steps=3)
    ax = plot_steps(steps, ["pattern c", 0])  # names from the current model's labels
    assert [line.get_label() for line in ax.get_lines()] == ["pattern C", "pattern A"]


@pytest.mark.parametrize("bad", ["a caffe.Net", None, "googlenet", 42])
def test_use_model_wants_a_classifier(googlenet, bad):
    bnn.use_model(googlenet)
    if bad == "a caffe.Net":
        bad = googlenet.net
    with pytest.raises(TypeError, match=rf"use_model takes a breaking_nn.Classifier.*load_googlenet\(\).*"
                                        rf"not .*{type(bad).__qualname__}"):
        bnn.use_model(bad)
    assert bnn.current_model() is googlenet


def test_with_nothing_loaded_the_first_call_loads_googlenet(monkeypatch, googlenet, generated_googlenet_weights,
                                                            cat_data):
    monkeypatch.setattr(current, "_current", None)
    monkeypatch.setenv("BREAKING_NN_WEIGHTS", str(generated_googlenet_weights))
    grad = compute_gradient(cat_data, 673)
    loaded = current.get_current()
    assert isinstance(loaded, bnn.Classifier) and loaded is not googlenet and loaded.n_classes == 1000
    assert bnn.current_model() is loaded  # loaded once, then reused
    reference = googlenet.compute_gradient(cat_data, 673)
    np.testing.assert_allclose(grad / np.abs(reference).max(), reference / np.abs(reference).max(), atol=1e-6, rtol=0)


OFFLINE_SESSION = """
import json
import numpy as np
import breaking_nn as bnn
from breaking_nn import current

errors = {}
for name, call in [("predict", lambda: bnn.predict(np.zeros((3, 224, 224), np.float32), n_preds=1)),
                   ("load_googlenet", bnn.load_googlenet)]:
    try:
        call()
    except bnn.WeightsError as exc:
        errors[name] = str(exc)
    errors[name + " left a current model"] = current.get_current() is not None
print(json.dumps(errors))
"""


def test_offline_without_weights_the_first_call_gives_the_weights_error(tmp_path, refused_url):
    """A fresh session, no weights file, no network: the blog's first call says how to get the weights."""
    missing = tmp_path / "weights" / "bvlc_googlenet.caffemodel"
    no_proxy_here = refused_url.rsplit("/", 1)[0]  # a loopback port where nothing listens
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(BREAKING_NN_WEIGHTS=str(missing), HTTP_PROXY=no_proxy_here, http_proxy=no_proxy_here,
               HTTPS_PROXY=no_proxy_here, https_proxy=no_proxy_here, MPLBACKEND="Agg")  # the mirrors are https
    result = subprocess.run([sys.executable, "-c", OFFLINE_SESSION], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    errors = json.loads(result.stdout.splitlines()[-1])
    message = errors["predict"]
    assert message.startswith("could not download bvlc_googlenet.caffemodel from any of its 3 sources")
    assert "(1) http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel" in message  # BVLC's, then the mirrors
    # it went to the loopback proxy, never to the network, and says the proxy refused
    assert f"through the proxy {no_proxy_here}: the proxy refused the connection (ProxyError)" in message
    assert "make weights" in message and "BREAKING_NN_WEIGHTS" in message and str(missing) in message

    def without_addresses(text):
        return re.sub(r"0x[0-9a-f]+", "0x", text)

    assert without_addresses(message) == without_addresses(errors["load_googlenet"])
    assert errors["predict left a current model"] is False
    assert errors["load_googlenet left a current model"] is False
    assert not missing.parent.exists() or list(missing.parent.iterdir()) == []
