"""The blog's pictures: images, the gradient picture, the evolution plot."""
import numpy as np
import pytest
from matplotlib import pyplot as plt

import breaking_nn as bnn
from breaking_nn import plotting


def test_plot_steps_draws_one_line_per_label_with_its_probabilities():
    rng = np.random.default_rng(0)
    steps = [rng.dirichlet(np.ones(1000)).astype(np.float32) for _ in range(5)]
    ax = plotting.plot_steps(steps, [bnn.MOUSE, "king penguin"], figsize=(10, 5))
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["mouse, computer mouse", "king penguin, Aptenodytes patagonica"]
    np.testing.assert_allclose(lines[1].get_ydata(), [s[145] for s in steps], rtol=1e-6)
    assert ax.get_xlabel() == "Step number" and ax.get_ylabel() == "Probability of label"
    # The blog's (1, K) arrays work too.
    ax2 = plotting.plot_steps([s[None] for s in steps], [673])
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), [s[673] for s in steps], rtol=1e-6)
    plt.close("all")


def test_plot_steps_rejects_empty_and_bad_labels():
    with pytest.raises(ValueError, match="steps is empty"):
        plotting.plot_steps([], [1])
    with pytest.raises(bnn.LabelError):
        plotting.plot_steps([np.ones(1000) / 1000], [1000])


def test_plot_steps_wants_the_labels_of_the_model_that_made_the_steps():
    steps = [np.array([0.2, 0.5, 0.3], np.float32), np.array([0.1, 0.7, 0.2], np.float32)]
    with pytest.raises(ValueError, match="steps hold 3 probabilities each but the labels name 1000 classes.*labels="):
        plotting.plot_steps(steps, [1])
    ax = plotting.plot_steps(steps, ["b"], labels=bnn.Labels(["a", "b", "c"]))
    assert [line.get_label() for line in ax.get_lines()] == ["b"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.5, 0.7], rtol=1e-6)
    plt.close("all")


@pytest.mark.slow
def test_gradient_picture_is_an_rgb_image(googlenet, cat_data):
    grad = googlenet.compute_gradient(cat_data, bnn.MOUSE)
    pic = bnn.gradient_picture(googlenet, grad)
    assert pic.shape == (224, 224, 3) and pic.min() >= 0 and pic.max() <= 1
    expected = np.clip((grad / np.percentile(grad, 98))[::-1].transpose(1, 2, 0) / 255, 0, 1)
    np.testing.assert_allclose(pic, expected, atol=1e-6)
    ax = bnn.show_gradient(googlenet, grad, title="Gradient for mouse prediction")
    assert ax.get_title() == "Gradient for mouse prediction"
    plt.close("all")
