"""trick(): the blog's loop, one forward and one backward per step, and it works."""
import numpy as np
import pytest

import breaking_nn as bnn
from breaking_nn import ModelError, attack
from breaking_nn.blog_reference import blog_trick

pytestmark = pytest.mark.slow


class Counter:
    def __init__(self, net):
        self.forward = self.backward = 0
        original_forward, original_backward = net.forward, net.backward

        def forward(*a, **k):
            self.forward += 1
            return original_forward(*a, **k)

        def backward(*a, **k):
            self.backward += 1
            return original_backward(*a, **k)

        net.forward, net.backward = forward, backward
        self.restore = lambda: (delattr(net, "forward"), delattr(net, "backward"))


def test_same_results_as_the_blogs_loop_on_googlenet(googlenet, cat_data):
    ours_image, ours_steps = attack.trick(googlenet, cat_data, bnn.KING_PENGUIN, n_steps=4)
    blog_image, blog_steps = blog_trick(googlenet.net, cat_data[None], bnn.KING_PENGUIN, 4)
    assert len(ours_steps) == len(blog_steps) == 3
    for ours, blog in zip(ours_steps, blog_steps):
        np.testing.assert_allclose(ours, blog[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours_image, blog_image[0], atol=1e-5, rtol=0)
    assert not np.array_equal(ours_image, cat_data)


def test_one_forward_and_one_backward_per_step(tiny_model):
    data = tiny_model.preprocess(np.full((16, 16, 3), 0.5, np.float32))
    counter = Counter(tiny_model.net)
    try:
        _, steps = attack.trick(tiny_model, data, 2, n_steps=7)
    finally:
        counter.restore()
    assert len(steps) == 6
    assert (counter.forward, counter.backward) == (6, 6)


@pytest.mark.image
def test_trick_fools_a_trained_classifier_within_its_budget(tiny_model):
    from tiny_classifier import make_images

    images, labels = make_images(10, np.random.default_rng(7))
    epsilon, n_steps = 16.0, 10  # grey levels (0-255) in all, over 9 updates
    for image, label in zip(images, labels):
        data = tiny_model.preprocess(image)
        before = tiny_model.forward(data)
        if before.argmax() != label:
            continue
        target = (label + 1) % 3
        assert before[target] < 0.5
        new_data, steps = attack.trick(tiny_model, data, int(target), n_steps=n_steps, epsilon=epsilon)
        after = tiny_model.forward(new_data)
        assert after[target] > 0.9, (label, target, after)
        assert np.abs(new_data - data).max() <= epsilon * (n_steps - 1) / n_steps + 1e-3
        assert steps[-1][target] > steps[0][target]


@pytest.mark.parametrize("n_steps", [1, 0, -3, 2.5, True])
def test_bad_step_counts(tiny_model, n_steps):
    data = tiny_model.preprocess(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="n_steps must be a whole number >= 2"):
        attack.trick(tiny_model, data, 1, n_steps=n_steps)


def test_bad_epsilon_shape_and_label(tiny_model):
    data = tiny_model.preprocess(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="epsilon"):
        attack.trick(tiny_model, data, 1, epsilon=0)
    with pytest.raises(ModelError, match=r"\(3, 16, 16\)"):
        attack.trick(tiny_model, np.zeros((16, 16, 3), np.float32), 1)
    with pytest.raises(bnn.LabelError, match="out of range"):
        attack.trick(tiny_model, data, 3)
    with pytest.raises(bnn.LabelError, match="did you mean 'pattern b'"):
        attack.trick(tiny_model, data, "pattern bb")
