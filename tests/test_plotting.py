"""The blog's pictures: images, the gradient picture, the evolution plot."""
import numpy as np
import pytest
from matplotlib import pyplot as plt

import breaking_nn as bnn


def test_plot_steps_draws_one_line_per_label_with_its_probabilities():
    rng = np.random.default_rng(0)
    steps = [rng.dirichlet(np.ones(1000)).astype(np.float32) for _ in range(5)]
    ax = bnn.plot_steps(steps, [bnn.MOUSE, "king penguin"], figsize=(10, 5))
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["mouse, computer mouse", "king penguin, Aptenodytes patagonica"]
    np.testing.assert_allclose(lines[1].get_ydata(), [s[145] for s in steps], rtol=1e-6)
    assert ax.get_xlabel() == "Step number" and ax.get_ylabel() == "Probability of label"
    # The blog's (1, K) arrays work too.
    ax2 = bnn.plot_steps([s[None] for s in steps], [673])
    np.testing.assert_allclose(ax2.get_lines()[0].get_ydata(), [s[673] for s in steps], rtol=1e-6)
    plt.close("all")


def test_plot_steps_rejects_empty_and_bad_labels():
    with pytest.raises(ValueError, match="steps is empty"):
        bnn.plot_steps([], [1])
    with pytest.raises(bnn.LabelError):
        bnn.plot_steps([np.ones(1000) / 1000], [1000])


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
