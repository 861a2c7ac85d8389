"""Photos that survive the real world: the model's own pipeline, Pillow and JPEG, the suite, EOT,
phone photos upright, tiny photos, and the settings' clear errors."""
import io
import warnings

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import breaking_nn as bnn
from breaking_nn.errors import AttackError, ImageLoadError, ModelError
from breaking_nn.images import read_photo
from breaking_nn.photo_attack import attack_photo
from breaking_nn.geometry import Rotate, Scale, Trim
from breaking_nn.pipelines import GROUPS, Pipeline, random_pipeline, verification_suite, with_resizer
from breaking_nn.preprocessing import RESAMPLES, Preprocessing
from breaking_nn.suite import check_suite, is_fooled

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]  # scikit-image's CC0 photos
YAHOO = dict(input_size=(224, 224), resize=(256, 256), crop=(224, 224), mean_bgr=(104.0, 117.0, 123.0),
             resizer="pillow", resample="bilinear", jpeg_roundtrip=75)


def yahoo_data(photo_bytes: bytes) -> np.ndarray:
    """Yahoo's classify_nsfw.py, written out here: Pillow RGB, BILINEAR to 256x256, JPEG at Pillow's
    default quality, caffe.io.load_image (skimage's img_as_float), centre crop 224, Transformer."""
    im = Image.open(io.BytesIO(photo_bytes))
    if im.mode != "RGB":
        im = im.convert("RGB")
    imr = im.resize((256, 256), resample=Image.BILINEAR)
    buffer = io.BytesIO()
    imr.save(buffer, format="JPEG")
    buffer.seek(0)
    from skimage import img_as_float, io as skio

    image = img_as_float(skio.imread(buffer)).astype(np.float32)
    h_off = w_off = (256 - 224) // 2
    crop = image[h_off:h_off + 224, w_off:w_off + 224, :]
    transformed = crop.transpose(2, 0, 1)[[2, 1, 0]] * 255.0
    return transformed - np.array([104.0, 117.0, 123.0]).reshape(3, 1, 1)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def pillow_float_resize(x: np.ndarray, size) -> np.ndarray:
    """Pillow's own linear resize ("F" mode), channel by channel: (H, W, 3) -> (size, 3)."""
    return np.stack([np.asarray(Image.fromarray(x[:, :, c], "F").resize((size[1], size[0]), RESAMPLES["bilinear"]))
                     for c in range(3)], axis=2)


# -- the model's own pipeline -------------------------------------------------------------

def test_yahoo_pipeline_written_out_equals_the_preprocessing():
    pre = Preprocessing(**YAHOO)
    for name in PHOTOS:
        pixels = getattr(skdata, name)()
        pixels = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
        np.testing.assert_allclose(pre.forward(pixels), yahoo_data(png(pixels)), atol=1e-4, err_msg=name)
        # float 0-1 input (load_image's) gives the very same data as the photo's own pixels
        np.testing.assert_array_equal(pre.forward(pixels.astype(np.float32) / 255.0), pre.forward(pixels))


@pytest.mark.slow
def test_open_nsfw_model_file_states_yahoos_pipeline(open_nsfw):
    assert open_nsfw.preprocessing == Preprocessing(**YAHOO)
    for name in PHOTOS:
        pixels = getattr(skdata, name)()
        probs = open_nsfw.predict(open_nsfw.preprocess(bnn.load_image(pixels)), display_output=False)
        np.testing.assert_allclose(probs, open_nsfw.forward(yahoo_data(png(pixels)).astype(np.float32)), atol=1e-4)


def test_googlenet_uint8_and_float_paths_are_bit_identical(liz_path):
    pre = Preprocessing(input_size=(224, 224))
    photo = read_photo(liz_path)
    assert photo.pixels.shape == (948, 533, 3) and photo.pixels.dtype == np.uint8
    np.testing.assert_array_equal(pre.forward(photo.pixels), pre.forward(bnn.load_image(liz_path)))


@pytest.mark.parametrize("size", [(5, 7), (100, 150), (948, 533)], ids=["tiny", "smaller", "larger"])
@pytest.mark.parametrize("antialias", [False, True])
def test_channel_by_channel_resize_is_caffe_io_bit_for_bit_and_the_fast_one_within_1e_6(size, antialias):
    from skimage.transform import resize

    photo = np.random.default_rng(0).integers(20, 230, (*size, 3), dtype=np.uint8)
    image = photo.astype(np.float32) / 255
    lo, hi = image.min(), image.max()  # caffe.io.resize_image, all three channels at once:
    expected = (resize((image - lo) / (hi - lo), (224, 224), order=1, mode="constant", anti_aliasing=antialias)
                * (hi - lo) + lo).astype(np.float32)
    pre = Preprocessing(input_size=(224, 224), antialias=antialias)
    np.testing.assert_array_equal(pre.resize_image(photo), expected)
    np.testing.assert_allclose(pre.resize_image(photo, fast=True), expected, atol=1e-6)


# -- adjoints of the linear parts -----------------------------------------------------------

@pytest.mark.parametrize("resample", list(RESAMPLES))
@pytest.mark.parametrize("size", [(300, 451), (100, 150)], ids=["larger", "smaller"])
def test_pillow_adjoint_passes_the_dot_product_test_against_pillows_float_resize(resample, size):
    pre = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224), resizer="pillow",
                        resample=resample, channel_order="RGB")
    x = np.random.default_rng(1).random((*size, 3)).astype(np.float32)
    resized = np.stack([np.asarray(Image.fromarray(x[:, :, c], "F").resize((256, 256), RESAMPLES[resample]))
                        for c in range(3)], axis=2)
    linear = resized[16:240, 16:240].transpose(2, 0, 1).astype(np.float64) * 255.0  # A x, by Pillow itself
    y = np.random.default_rng(2).random((3, 224, 224))
    lhs = float(np.sum(linear * y))
    rhs = float(np.sum(x.astype(np.float64) * pre.adjoint(y, size)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs), (resample, size, lhs, rhs)


def test_pipeline_adjoint_with_trim_and_downscale_passes_the_dot_product_test():
    base = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224), resizer="pillow")
    pipeline = Pipeline("x", base, steps=(Trim(3, 1, 2, 4), Scale(0.6)))
    size = (300, 451)
    x = np.random.default_rng(3).random((*size, 3)).astype(np.float32)
    trimmed = x[3:300 - 2, 1:451 - 4]
    small = pillow_float_resize(trimmed, pipeline.stage_sizes(size)[-1])
    linear = pillow_float_resize(small, (256, 256))[16:240, 16:240].transpose(2, 0, 1)[[2, 1, 0]] * 255.0
    y = np.random.default_rng(4).random((3, 224, 224))
    lhs = float(np.sum(linear.astype(np.float64) * y))
    rhs = float(np.sum(x.astype(np.float64) * pipeline.adjoint(y, size)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs), (lhs, rhs)


# -- the family and the suite -----------------------------------------------------------

def suite_data(suite, photo):
    """{(engine, data bytes): first name} of a suite's members on ``photo``, stages shared as check_suite shares them
    (which keeps only the first member of each: on astronaut, 512 px = 2 x 256, half size equals Yahoo's own resize)."""
    stages = {p.steps[:1]: None for p in suite}
    kept = {}
    for p in suite:
        kept.setdefault((p.engine, p.forward(photo, stages=stages).tobytes()), p.name)
    return kept


def test_the_suite_has_at_least_twenty_named_members_in_four_groups_each_different_on_each_photo():
    for pre in (Preprocessing(input_size=(224, 224)), Preprocessing(**YAHOO)):
        for name in PHOTOS:
            photo = getattr(skdata, name)()
            photo = photo if photo.ndim == 3 else np.repeat(photo[:, :, None], 3, axis=2)
            suite = verification_suite(pre, photo_size=photo.shape[:2], engines=True)
            names = [p.name for p in suite]
            assert len(set(names)) == len(names) and names[0] == "model" and suite[0].preprocessing == pre
            assert {p.group for p in suite} == set(GROUPS)
            assert {"file as JPEG 75", "file at half size", "pillow lanczos", "opencv area", "centre 4:5",
                    "zoom 10 %", "shift 12 px", "rotate +2", "rotate -5", "rotate +5", "opencv dnn squash"} <= set(names)
            assert not any("upload" in n for n in names)  # every photo here is smaller than 1080 px: no-ops
            assert ("centre 1:1" in names) == (photo.shape[0] != photo.shape[1])
            distinct = suite_data(suite, photo)
            assert len(distinct) >= 20, (name, len(distinct))  # what check_suite keeps: different data each
            separate = {(p.engine, p.forward(photo).tobytes()) for p in suite}
            assert separate == set(distinct)  # shared stages change nothing
    big = np.random.default_rng(0).integers(0, 256, (2400, 1600, 3), dtype=np.uint8)
    suite = verification_suite(Preprocessing(**YAHOO), photo_size=big.shape[:2])
    uploads = [p for p in suite if p.name.startswith("upload")]
    assert [p.name for p in uploads] == ["upload 1080", "upload 2048"] and all(p.group == "compression" for p in uploads)
    assert not any(p.engine == "opencv" for p in suite)  # engines=False: a model without files


def test_random_pipelines_are_seeded_and_varied_and_fit_the_photo():
    pre = Preprocessing(**YAHOO)

    def draw(seed, size=(300, 451)):
        rng = np.random.default_rng(seed)
        return [random_pipeline(pre, rng, photo_size=size) for _ in range(60)]

    first, again = draw(5), draw(5)
    assert first == again
    resizers = {(p.preprocessing.resizer, p.preprocessing.resample, p.preprocessing.interpolation,
                 p.preprocessing.antialias) for p in first}
    assert len(resizers) >= 7
    assert any(p.preprocessing.jpeg_roundtrip for p in first) and any(not p.preprocessing.jpeg_roundtrip for p in first)
    assert any(p.preprocessing.crop is None for p in first)  # the squash
    kinds = {type(step).__name__ for p in first for step in p.steps}
    assert kinds == {"Trim", "Crop", "AspectCrop", "Scale", "Rotate", "Upload"}, kinds
    shifts = [s for p in first for s in p.steps if isinstance(s, Trim) and max(s.top, s.left, s.bottom, s.right) > 4]
    rotations = [s for p in first for s in p.steps if isinstance(s, Rotate)]
    assert shifts and max(max(s.top, s.left, s.bottom, s.right) for s in shifts) <= 16
    assert {(r.library, r.interpolation) for r in rotations} == {(a, b) for a in ("pillow", "opencv")
                                                                  for b in ("bilinear", "bicubic")}
    assert all(abs(r.degrees) <= 5 for r in rotations)
    tiny = np.zeros((5, 6, 3), np.uint8)  # every draw fits even a 6x5 photo (steps that would not are left out)
    for p in draw(1, tiny.shape[:2]):
        assert p.forward(tiny).shape == (3, 224, 224) and p.adjoint(np.ones((3, 224, 224)), (5, 6)).shape == (5, 6, 3)


def test_one_definition_of_fooled():
    probs = np.array([0.5, 0.3, 0.2])
    assert is_fooled(probs, target=0, original_class=2) and not is_fooled(probs, target=1, original_class=2)
    assert is_fooled(probs, target=None, original_class=1) and not is_fooled(probs, target=None, original_class=0)


# -- the attack: batches, EOT, seeds, stopping --------------------------------------------

@pytest.mark.slow
def test_batched_passes_equal_single_ones(tiny_model):
    rng = np.random.default_rng(0)
    data = rng.random((4, *tiny_model.input_shape)).astype(np.float32) * 255
    probs, grads = tiny_model.forward_backward_batch(data, [0, 1, 2, 1])
    for i, label in enumerate([0, 1, 2, 1]):
        p, g = tiny_model.forward_backward(data[i], label)
        np.testing.assert_allclose(probs[i], p, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(grads[i], g, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(tiny_model.forward_batch(data), probs, rtol=1e-6)
    with pytest.raises(ModelError, match="one label per image"):
        tiny_model.forward_backward_batch(data, [0])


def pattern_photo(seed=7, size=(52, 68)):
    from tiny_classifier import make_images
    from skimage.transform import resize

    images, labels = make_images(1, np.random.default_rng(seed))
    return np.rint(resize(images[0], size, order=1) * 255).astype(np.uint8), int(labels[0])


@pytest.mark.slow
def test_robust_attack_is_repeatable_by_seed_and_stops_when_asked(tiny_model):
    photo, label = pattern_photo()
    target = (label + 1) % 3
    a = attack_photo(tiny_model, photo, target, epsilon=8, seed=3, samples=4)
    b = attack_photo(tiny_model, photo, target, epsilon=8, seed=3, samples=4)
    assert a.robust and a.samples == 4 and a.seed == 3
    np.testing.assert_array_equal(a.adversarial, b.adversarial)
    assert a.fooled == (a.reached and a.suite.passes)
    seen = []

    def stop_after_two(n, probs):
        seen.append((n, probs[target]))
        return n == 2

    c = attack_photo(tiny_model, photo, target, epsilon=8, until=0.999999, max_steps=20, on_step=stop_after_two)
    assert c.stopped and c.n_updates == 2 and [n for n, _ in seen] == [0, 1, 2]
    assert len(c.steps) == 3 and not c.fooled


@pytest.mark.slow
def test_exact_mode_attacks_the_model_pipeline_alone(tiny_model):
    photo, label = pattern_photo()
    target = (label + 1) % 3
    result = attack_photo(tiny_model, photo, target, epsilon=8, robust=False)
    assert not result.robust and result.samples == 1 and result.seed is None
    assert result.reached and result.fooled  # exact: the suite is information only
    assert result.suite.n_total >= 20 and result.suite.complete


@pytest.mark.slow
def test_tiny_photos_are_upsized_or_refused_clearly(tiny_model):
    small, label = pattern_photo(size=(6, 5))
    result = attack_photo(tiny_model, small, (label + 1) % 3, epsilon=16, max_steps=5, robust=False)
    assert result.adversarial.shape == (6, 5, 3)
    for shape in [(2, 2, 3), (1, 1, 3), (1, 40, 3)]:
        with pytest.raises(AttackError, match="too small to attack"):
            attack_photo(tiny_model, np.zeros(shape, np.uint8), 0)


def test_bad_settings_are_clear_errors(tiny_model):
    photo = np.zeros((20, 20, 3), np.uint8)
    for kwargs, message in [({"samples": 0}, "samples must be a whole number"),
                            ({"samples": 2.5}, "samples must be a whole number"),
                            ({"seed": -1}, "seed must be a whole number"),
                            ({"robust": False, "samples": 3}, "belong to the robust mode"),
                            ({"robust": False, "seed": 1}, "belong to the robust mode")]:
        with pytest.raises(AttackError, match=message):
            attack_photo(tiny_model, photo, 0, **kwargs)
    with pytest.raises(AttackError, match="epsilon must be a positive number"):
        bnn.attack.trick(tiny_model, tiny_model.preprocess(photo), 0, epsilon="0.9")


@pytest.mark.slow
@pytest.mark.parametrize("name", PHOTOS)
def test_open_nsfw_photos_fooled_under_the_whole_suite_and_yahoos_own_code(open_nsfw, open_nsfw_attack, name,
                                                                         tmp_path):
    """With the defaults (robust, epsilon 4): the goal plus at least 95 % of the whole suite (every group, OpenCV's
    dnn engine members included), checked on the saved file, and Yahoo's code written out independently."""
    result = open_nsfw_attack(name)
    assert result.fooled, (name, result.summary(), result.suite.table())
    assert result.metrics.linf <= 4
    check = result.save(tmp_path / f"{name}.png")
    suite = check.suite
    assert check.ok and suite.complete and suite.passes and suite.n_total >= 20, suite.table()
    assert suite.n_fooled >= suite.n_total - 1  # 95 % of 20 to 39 members
    assert set(suite.by_group()) == set(GROUPS) and {row.engine for row in suite.rows} == {"caffe", "opencv"}
    saved = (tmp_path / f"{name}.png").read_bytes()
    assert open_nsfw.forward(yahoo_data(saved).astype(np.float32)).argmax() == 1
    assert suite.rows[0].name == "model" and suite.rows[0].goal_probability >= 0.9


@pytest.mark.slow
def test_a_suite_check_stops_once_more_than_5_percent_fail_and_the_verdict_runs_every_member(open_nsfw):
    photo = skdata.coffee()
    early = check_suite(open_nsfw, photo, target=1, original_class=0, stop_early=True)
    assert not early.complete and not early.passes and sum(not r.fooled for r in early.rows) == 2
    full = check_suite(open_nsfw, photo, target=1, original_class=0)
    assert full.complete and full.n_total == early.n_total >= 20 and full.n_fooled == 0
    assert [r.name for r in full.rows[:len(early.rows)]] == [r.name for r in early.rows]
    assert "stopped early" in early.summary() and "stopped early" not in full.summary()
    table = full.table(open_nsfw.labels)
    assert all(f"[{group}]" in table for group in GROUPS) and "opencv " in table


# -- phone photos ---------------------------------------------------------------------------

def phone_photo(tmp_path, *, orientation=6, corrupt_exif=False):
    """A landscape JPEG (60x40 stored) whose EXIF says "rotate 90 clockwise", with GPS and an ICC profile."""
    from PIL import ImageCms

    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :30] = (250, 0, 0)  # left half red as stored: the top once upright
    img = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPS latitude
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif.tobytes(), icc_profile=icc, quality=95)
    if corrupt_exif:
        data = bytearray(path.read_bytes())
        start = data.find(b"Exif\x00\x00") + 6
        data[start:start + 8] = b"\xff" * 8  # a broken TIFF header inside the EXIF block
        path.write_bytes(bytes(data))
    return path, icc


@pytest.mark.slow
def test_phone_photo_comes_out_upright_without_gps_with_its_icc_profile(tiny_model, tmp_path):
    path, icc = phone_photo(tmp_path)
    photo = read_photo(path)
    assert photo.pixels.shape == (60, 40, 3)  # upright: portrait
    assert photo.pixels[:20].mean(axis=(0, 1))[0] > 200 and photo.pixels[-20:].mean(axis=(0, 1))[0] < 50
    assert photo.icc_profile == icc
    assert bnn.load_image(path).shape == (60, 40, 3)
    result = attack_photo(tiny_model, path, 0, epsilon=8, max_steps=3, robust=False)
    out = tmp_path / "out.png"
    result.save(out)
    with Image.open(out) as saved:
        assert saved.size == (40, 60)
        assert saved.info.get("icc_profile") == icc
        exif = saved.getexif()
        assert 0x0112 not in exif and 0x010F not in exif and not exif.get_ifd(0x8825)
    jpg = tmp_path / "out.jpg"
    result.save(jpg)
    with Image.open(jpg) as saved:
        assert saved.info.get("icc_profile") == icc and not saved.getexif().get_ifd(0x8825)


def test_corrupt_exif_still_loads_with_a_warning(tmp_path):
    path, _ = phone_photo(tmp_path, corrupt_exif=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels = read_photo(path).pixels
    assert pixels.shape == (40, 60, 3)  # as stored: the orientation is ignored
    assert any("EXIF" in str(w.message) for w in caught)


def test_only_http_urls_are_fetched():
    with pytest.raises(ImageLoadError, match=r"ftp://example.org/cat.jpg: only http:// and https:// URLs"):
        bnn.load_image("ftp://example.org/cat.jpg")


# -- model files -------------------------------------------------------------------------------

def test_with_resizer_keeps_the_model_steps():
    pre = with_resizer(Preprocessing(**YAHOO), "skimage anti-aliased")
    assert (pre.resizer, pre.antialias, pre.jpeg_roundtrip, pre.crop, pre.mean_bgr) == \
        ("skimage", True, None, (224, 224), (104.0, 117.0, 123.0))
