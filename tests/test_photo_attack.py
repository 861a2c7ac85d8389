"""Attacking a photo in its own pixels: the adjoint, the attack, saving that proves itself, metrics, report."""
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage.transform import resize

import breaking_nn as bnn
from breaking_nn import paths
from breaking_nn.metrics import grey_levels, perturbation_metrics, top_k
from breaking_nn.model_file import read_model_file
from breaking_nn.photo_attack import attack_photo, budget_bounds, output_format, sign_step_bands
from breaking_nn.pipelines import with_resizer
from breaking_nn.preprocessing import Preprocessing
from breaking_nn.suite import check_suite

RESIZE_CROP_MEAN = dict(input_size=(224, 224), resize=(256, 256), crop=(224, 224), mean_bgr=(104.0, 117.0, 123.0))
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]  # scikit-image's CC0 photos


def googlenet_preprocessing() -> Preprocessing:
    return Preprocessing(input_size=(224, 224), **read_model_file(paths.googlenet_model_file()).preprocess)


def unit_range_image(shape, seed):
    """Random (H, W, 3) in 0-1 with min exactly 0 and max exactly 1: caffe.io's stretch is then the identity."""
    x = np.random.default_rng(seed).random(shape).astype(np.float32)
    x[0, 0, 0], x[-1, -1, -1] = 0.0, 1.0
    return x


@pytest.mark.parametrize("name, make", [
    ("googlenet", googlenet_preprocessing),
    ("resize+crop+mean", lambda: Preprocessing(**RESIZE_CROP_MEAN)),
    ("resize+crop+mean, anti-aliased, RGB", lambda: Preprocessing(**RESIZE_CROP_MEAN, antialias=True,
                                                                   channel_order="RGB")),
])
@pytest.mark.parametrize("size", [(300, 451), (100, 150)], ids=["larger", "smaller"])
def test_adjoint_passes_the_dot_product_test(name, make, size):
    pre = make()
    x = unit_range_image((*size, 3), 1)
    y = np.random.default_rng(2).random((3, *pre.output_size))
    linear = pre.forward(x).astype(np.float64) - pre.forward(np.zeros_like(x))  # A x: the affine offset removed
    lhs = float(np.sum(linear * y))
    rhs = float(np.sum(x.astype(np.float64) * pre.adjoint(y, size)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs), (name, size, lhs, rhs)


def photo_of_class(label_seed=7, size=(52, 68)):
    """A tiny-classifier image (16x16) resized up to ``size``, uint8: the resize matters."""
    from tiny_classifier import make_images

    images, labels = make_images(1, np.random.default_rng(label_seed))
    return np.rint(resize(images[0], size, order=1) * 255).astype(np.uint8), int(labels[0])


def interior_pixels(photo, grad, n):
    """The ``n`` pixels with the largest |grad| whose value is neither the photo's min nor its max."""
    ok = (photo > photo.min()) & (photo < photo.max())
    order = np.argsort(np.where(ok, np.abs(grad), -1).ravel())[::-1][:n]
    return [np.unravel_index(i, photo.shape) for i in order]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "open_nsfw"])
def test_adjoint_gradient_matches_central_differences_of_the_full_forward(which, request):
    if which == "tiny":
        model = request.getfixturevalue("tiny_model")
        photo = photo_of_class()[0].astype(np.float32) / 255
        label, h = 0, 1e-3
    else:
        model = request.getfixturevalue("open_nsfw")
        # where p(1) is not ~1e-4 (its gradient there is lost in float32): Chelsea after the attack
        photo = bnn.load_image(attack_photo(model, skdata.chelsea(), 1, epsilon=4, robust=False).adversarial)
        label, h = 1, 3e-4
    # Yahoo's pipeline rounds to 8 bits and re-encodes JPEG (no derivative there): the
    # differentiable member of the family with the same crop and mean stands in for it.
    pre = with_resizer(model.preprocessing, "skimage anti-aliased")
    _, grad = model.forward_backward(pre.forward(photo), label)
    photo_grad = pre.adjoint(grad, photo.shape[:2])
    for pixel in interior_pixels(photo, photo_grad, 3):
        plus, minus = photo.copy(), photo.copy()
        plus[pixel] += h
        minus[pixel] -= h
        fd = (model.forward(pre.forward(plus))[label] - model.forward(pre.forward(minus))[label]) / (2 * h)
        assert fd == pytest.approx(photo_grad[pixel], rel=0.03), (which, pixel, fd, photo_grad[pixel])


@pytest.mark.slow
def test_tiny_classifier_fooled_through_a_larger_photo_and_the_png_round_trips(tiny_model, tmp_path):
    photo, label = photo_of_class()
    assert photo.shape == (52, 68, 3) and tiny_model.input_shape == (3, 16, 16)
    assert tiny_model.forward(tiny_model.preprocess(bnn.load_image(photo))).argmax() == label
    epsilon = 8
    for target in sorted({0, 1, 2} - {label}):
        result = attack_photo(tiny_model, photo, target, epsilon=epsilon, max_steps=50)
        adv = result.adversarial
        assert result.reached and result.probabilities_after[target] >= 0.9, result.summary()
        assert adv.dtype == np.uint8 and adv.shape == photo.shape
        assert np.abs(adv.astype(int) - photo.astype(int)).max() <= epsilon == result.epsilon
        # robust: it goes on past the goal until the suite holds too, then stops
        assert result.fooled and result.suite.passes and result.suite.complete, result.suite.table()
        assert result.goal_holds(result.steps[-1])
        assert len(result.steps) == result.n_updates + 1 and result.n_updates >= 1
        check = result.save(tmp_path / f"to-{target}.png")
        assert check.ok and check.pixels_equal and check.max_abs_diff <= 1e-6, check.message
        assert check.metrics == result.metrics  # lossless: the file is the attacked photo
        reloaded = tiny_model.forward(tiny_model.preprocess(bnn.load_image(tmp_path / f"to-{target}.png")))
        np.testing.assert_allclose(reloaded, result.probabilities_after, atol=1e-6)
        assert reloaded.argmax() == target


@pytest.mark.slow
def test_untargeted_changes_the_prediction(tiny_model):
    photo, label = photo_of_class()
    result = attack_photo(tiny_model, photo, untargeted=True, epsilon=8, until=0.5)
    after = result.probabilities_after
    assert result.reached and result.original_class == label and result.target is None
    assert after.argmax() != label
    assert np.delete(after, label).max() - after[label] >= 0.5  # "leads by" 0.5, as documented
    assert result.goal_holds(after) and not result.goal_holds(result.probabilities_before)


@pytest.mark.slow
def test_budget_running_out_is_reported(tiny_model):
    photo, _ = photo_of_class()
    result = attack_photo(tiny_model, photo, 0, epsilon=2, max_steps=3)
    assert not result.reached and result.n_updates == 3 and len(result.steps) == 4
    assert np.abs(result.adversarial.astype(int) - photo.astype(int)).max() <= 2
    assert "NOT reached (budget ran out) after 3 steps" in result.summary()
    assert f"p(target) {result.probabilities_after[0]:.4f}" in result.summary()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".png", ".webp", ".bmp", ".tif", ".tiff"])
def test_lossless_formats_round_trip_exactly(tiny_model, tmp_path, suffix):
    photo, label = photo_of_class()
    result = attack_photo(tiny_model, photo, (label + 1) % 3, epsilon=8)
    check = result.save(tmp_path / f"adv{suffix}")
    with Image.open(tmp_path / f"adv{suffix}") as img:
        assert img.format == output_format(f"adv{suffix}")[0]
        assert np.array_equal(np.asarray(img.convert("RGB")), result.adversarial)
    assert check.lossless and check.pixels_equal and check.max_abs_diff <= 1e-6 and check.ok
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.slow
def test_open_nsfw_photos_become_unsafe_within_4_grey_levels_after_the_png_round_trip(open_nsfw, open_nsfw_attack,
                                                                                      tmp_path):
    for name in PHOTOS:
        photo = getattr(skdata, name)()
        result = open_nsfw_attack(name)  # the defaults: epsilon 4
        assert result.probabilities_before[0] >= 0.95, name  # it started safe
        assert result.reached and result.metrics.linf <= 4, (name, result.summary())
        check = result.save(tmp_path / f"{name}.png")
        reloaded = open_nsfw.forward(open_nsfw.preprocess(bnn.load_image(tmp_path / f"{name}.png")))
        assert reloaded[1] >= 0.9 and check.ok, (name, check.message)
        np.testing.assert_allclose(reloaded, result.probabilities_after, atol=1e-6)
        with Image.open(tmp_path / f"{name}.png") as img:
            assert img.size == (photo.shape[1], photo.shape[0])


def test_grey_levels_are_counted_in_words():
    assert grey_levels(1) == "1 grey level" and grey_levels(4) == "4 grey levels" and grey_levels(0) == "0 grey levels"
    metrics = perturbation_metrics(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8))
    assert str(metrics).startswith("L-inf 1 grey level, L2")


@pytest.mark.slow
@pytest.mark.parametrize("quality", [90, 5])
def test_jpeg_is_reported_honestly(open_nsfw, open_nsfw_attack, tmp_path, quality):
    result = open_nsfw_attack("chelsea")  # the defaults: epsilon 4
    check = result.save(tmp_path / "chelsea.jpg", quality=quality)
    reloaded = open_nsfw.forward(open_nsfw.preprocess(bnn.load_image(tmp_path / "chelsea.jpg")))
    assert check.format == "JPEG" and check.quality == quality and not check.lossless
    assert f"JPEG quality {quality}" in check.message
    np.testing.assert_array_equal(check.probabilities, reloaded)  # what it reports is what a reload gives
    assert check.max_abs_diff == pytest.approx(np.abs(reloaded - result.probabilities_after).max())
    file_pixels = np.asarray(Image.open(tmp_path / "chelsea.jpg").convert("RGB"))
    assert check.metrics == perturbation_metrics(result.original, file_pixels)  # compression error included
    assert f"L-inf {grey_levels(check.metrics.linf)} (attack budget 4)" in check.message
    holds = bool(reloaded.argmax() == 1 and reloaded[1] >= 0.9)
    suite = check_suite(open_nsfw, file_pixels, target=1, original_class=result.original_class)
    assert check.goal_holds == holds and check.suite.n_fooled == suite.n_fooled  # the suite of the file itself
    assert check.ok == (holds and suite.passes)  # robust: the goal plus 95 % of the suite, after compression
    assert check.message.startswith("verified" if check.ok else "NOT verified")
    if holds and not suite.passes:
        assert check.message.startswith("NOT verified as robust") and "fewer than 95 %" in check.message
    if quality == 5:
        assert not holds  # measured: p(1) falls to about 0.004 at quality 5
    if not holds:
        assert "no longer fools the model" in check.message


def test_bad_settings_are_clear_errors(tiny_model):
    photo = np.zeros((20, 20, 3), np.uint8)
    for kwargs, match in [
        (dict(epsilon=0), "epsilon"), (dict(epsilon=256), "epsilon"), (dict(epsilon=float("nan")), "epsilon"),
        (dict(max_steps=0), "max_steps"), (dict(until=0), "until"), (dict(until=1.0), "until"),
        (dict(untargeted=True), "not both"),
    ]:
        with pytest.raises(bnn.BreakingNNError, match=match):
            attack_photo(tiny_model, photo, 1, **kwargs)
    with pytest.raises(bnn.LabelError):
        attack_photo(tiny_model, photo, "pattern Z")
    with pytest.raises(bnn.BreakingNNError, match="target"):
        attack_photo(tiny_model, photo)


def test_save_refuses_bad_paths(tiny_model, tmp_path):
    photo, _ = photo_of_class()
    result = attack_photo(tiny_model, photo, 0, epsilon=1, max_steps=1)
    for path, match in [(tmp_path / "no" / "x.png", "does not exist"), (tmp_path / "x.xyz", "format"),
                        (tmp_path / "x", "format")]:
        with pytest.raises(bnn.BreakingNNError, match=match):
            result.save(path)
    (tmp_path / "there.png").write_bytes(b"keep")
    with pytest.raises(bnn.BreakingNNError, match="already exists"):
        result.save(tmp_path / "there.png", force=False)
    assert (tmp_path / "there.png").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there.png"]


def test_metrics_in_grey_levels():
    a = np.full((40, 30, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0] = [103, 100, 96]  # one pixel, two channels changed
    b[5, 5, 1] = 101
    m = perturbation_metrics(a, b)
    assert m.linf == 4 and m.l2 == pytest.approx(np.sqrt(9 + 16 + 1))
    assert m.changed_fraction == pytest.approx(2 / 1200)
    assert m.psnr == pytest.approx(10 * np.log10(255**2 / (26 / 3600)))
    assert 0.9 < m.ssim < 1.0
    same = perturbation_metrics(a, a)
    assert same.psnr == float("inf") and same.ssim == 1.0 and same.as_dict()["psnr"] is None
    assert top_k(np.array([0.2, 0.5, 0.3]), bnn.Labels(["x", "y", "z"]), 2) == [(1, "y", 0.5), (2, "z", 0.3)]


@pytest.mark.slow
def test_report_figure_is_written_atomically_as_a_png(tiny_model, tmp_path):
    from breaking_nn.report import amplification, save_report

    photo, label = photo_of_class()
    result = attack_photo(tiny_model, photo, (label + 1) % 3, epsilon=8)
    path = save_report(result, tmp_path / "report.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 600
        assert len(set(img.convert("L").getdata())) > 50
    assert amplification(result) * result.metrics.linf <= 127
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.png"]
    with pytest.raises(bnn.BreakingNNError, match=r"\.png"):
        save_report(result, tmp_path / "report.jpg")


@pytest.mark.slow
def test_report_title_fits_the_figure_and_counts_the_classes_shown(tiny_model):
    from breaking_nn.report import draw_report

    photo, label = photo_of_class()
    result = attack_photo(tiny_model, photo, (label + 1) % 3, epsilon=8)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw_report(result)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    title = fig._suptitle
    box = title.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and "\n" in title.get_text()  # wrapped, not cut off
    assert " ".join(title.get_text().split()).endswith(str(result.metrics))
    titles = [ax.get_title() for ax in fig.axes]
    assert "Top 3 before" in titles and "Top 3 after" in titles  # the tiny model has 3 classes


@pytest.mark.parametrize("budget", [1, 4, 255])
def test_the_banded_sign_step_equals_the_clipped_int16_step(budget):
    """sign_step_bands (8-bit moves where the budget allows, bounds made once) against the plain int16 clip,
    over steps up and down, zero gradients and pixels at 0 and 255."""
    rng = np.random.default_rng(budget)
    original = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    original[:10], original[10:20] = 255, 0
    pixels, expected = original.copy(), original.copy()
    bounds = budget_bounds(original, budget)
    for k, step in enumerate([1, 1, -1, 1, 1, 1, 1, -1, 1, 2, -3]):
        grad = rng.standard_normal((90, 70, 3)).astype(np.float32)
        grad[::4] = 0
        bands = [(slice(top, top + 25), grad[top:top + 25]) for top in range(0, 90, 25)]
        sign_step_bands(pixels, bands, step, bounds)
        moved = expected.astype(np.int16) + np.sign(grad).astype(np.int16) * step
        base = original.astype(np.int16)
        expected = np.clip(moved, np.maximum(base - budget, 0), np.minimum(base + budget, 255)).astype(np.uint8)
        np.testing.assert_array_equal(pixels, expected, err_msg=f"step {k}")
    assert 0 < np.abs(pixels.astype(int) - original).max() <= budget
