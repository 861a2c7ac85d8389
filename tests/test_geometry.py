"""Geometry steps of the real-world pipelines: forwards against Pillow and OpenCV called here, dot-product
tests of every linear part, the rotation's transpose at the network's scale, and the clear errors."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from breaking_nn.errors import ModelError
from breaking_nn.geometry import (AspectCrop, Crop, Encode, Rotate, Scale, Trim, Upload, max_shift,
                                  network_rotation)
from breaking_nn.pipelines import Pipeline, linear_data, random_pipeline, summed_adjoint, verification_suite
from breaking_nn.preprocessing import Preprocessing

RNG = np.random.default_rng(11)
PHOTO = RNG.integers(0, 256, (301, 452, 3), dtype=np.uint8)
YAHOO = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224), mean_bgr=(104.0, 117.0, 123.0),
                      resizer="pillow", resample="bilinear", jpeg_roundtrip=75)


def pillow_jpeg(pixels: np.ndarray, quality: int, fmt: str = "JPEG") -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def float_resize_pillow(x: np.ndarray, size, resample) -> np.ndarray:
    """Pillow's linear float-mode resize, channel by channel: (H, W, 3) float32 -> (size, 3)."""
    return np.stack([np.asarray(Image.fromarray(x[:, :, c], "F").resize((size[1], size[0]), resample))
                     for c in range(3)], axis=2)


# -- forwards, against the libraries ----------------------------------------------------------

def test_windows_cut_what_they_say():
    H, W = PHOTO.shape[:2]
    np.testing.assert_array_equal(Trim(12, 12, 0, 0).forward(PHOTO), PHOTO[12:, 12:])
    np.testing.assert_array_equal(Crop(0.05, 0.05, 0.05, 0.05).forward(PHOTO),
                                  PHOTO[round(0.05 * H):H - round(0.05 * H), round(0.05 * W):W - round(0.05 * W)])
    square = AspectCrop(1, 1).forward(PHOTO)
    assert square.shape[:2] == (301, 301)
    np.testing.assert_array_equal(square, PHOTO[:, 75:376])
    assert AspectCrop(4, 5).forward(PHOTO).shape[:2] == (301, 241)
    assert AspectCrop(16, 9).forward(PHOTO).shape[:2] == (254, 452)
    assert AspectCrop(1, 1).is_noop((300, 300)) and not AspectCrop(1, 1).is_noop((300, 301))


def test_resizes_and_encodes_equal_pillow_and_opencv_called_directly():
    image = Image.fromarray(PHOTO)
    np.testing.assert_array_equal(Scale(0.6).forward(PHOTO),
                                  np.asarray(image.resize((271, 181), Image.Resampling.BILINEAR)))
    np.testing.assert_array_equal(Encode(75).forward(PHOTO), pillow_jpeg(PHOTO, 75))
    np.testing.assert_array_equal(Encode(75, "WEBP").forward(PHOTO), pillow_jpeg(PHOTO, 75, "WEBP"))
    big = np.ascontiguousarray(np.repeat(np.repeat(PHOTO, 4, axis=0), 4, axis=1))  # 1204 x 1808
    lanczos = np.asarray(Image.fromarray(big).resize((1080, 719), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(Upload(1080, "pillow lanczos", 85).forward(big), pillow_jpeg(lanczos, 85))
    area = cv2.resize(big, (1080, 719), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(Upload(1080, "opencv area", 70).forward(big), pillow_jpeg(area, 70))
    assert Upload(2048).is_noop(big.shape[:2]) and not Upload(1080).is_noop(big.shape[:2])


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_rotations_equal_pillow_and_opencv_called_directly(interpolation):
    pil = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[interpolation]
    np.testing.assert_array_equal(Rotate(2.5, "pillow", interpolation).forward(PHOTO),
                                  np.asarray(Image.fromarray(PHOTO).rotate(2.5, resample=pil)))
    H, W = PHOTO.shape[:2]
    flags = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[interpolation]
    expected = cv2.warpAffine(PHOTO, cv2.getRotationMatrix2D((W / 2, H / 2), -4.0, 1.0), (W, H), flags=flags)
    np.testing.assert_array_equal(Rotate(-4, "opencv", interpolation).forward(PHOTO), expected)


# -- dot-product tests of the linear parts ---------------------------------------------------

def dot_test(linear_x: np.ndarray, x: np.ndarray, adjoint_y: np.ndarray, y: np.ndarray, rtol=1e-5):
    lhs = float(np.sum(linear_x.astype(np.float64) * y))
    rhs = float(np.sum(x.astype(np.float64) * adjoint_y))
    assert abs(lhs - rhs) <= rtol * abs(lhs), (lhs, rhs)


def model_side(x: np.ndarray) -> np.ndarray:
    """YAHOO's linear part written out with Pillow's float mode: (H, W, 3) 0-1 -> (3, 224, 224) BGR x 255."""
    resized = float_resize_pillow(x, (256, 256), Image.Resampling.BILINEAR)
    return resized[16:240, 16:240].transpose(2, 0, 1)[[2, 1, 0]] * 255.0


@pytest.mark.parametrize("steps, written_out", [
    ((Trim(12, 12, 0, 0),), lambda x: x[12:, 12:]),
    ((Crop(0.15, 0.1, 0.0, 0.05),), lambda x: x[45:, 45:429]),
    ((AspectCrop(4, 5),), lambda x: x[:, 105:346]),
    ((Scale(0.6),), lambda x: float_resize_pillow(x, (181, 271), Image.Resampling.BILINEAR)),
    ((Encode(80), Crop(0.05, 0.05, 0.05, 0.05), Scale(0.8)),
     lambda x: float_resize_pillow(x[15:286, 23:429], (217, 325), Image.Resampling.BILINEAR)),
], ids=["shift", "crop", "aspect", "scale", "resave-zoom-scale"])
def test_pipeline_adjoint_passes_the_dot_product_test(steps, written_out):
    pipeline = Pipeline("x", YAHOO, steps)
    x = np.random.default_rng(3).random((301, 452, 3)).astype(np.float32)
    y = np.random.default_rng(4).random((3, 224, 224))
    dot_test(model_side(np.ascontiguousarray(written_out(x))), x, pipeline.adjoint(y, x.shape[:2]), y)


@pytest.mark.parametrize("resizer", ["pillow lanczos", "opencv area"])
def test_upload_adjoint_passes_the_dot_product_test_against_the_library(resizer):
    x = np.random.default_rng(5).random((1300, 1100, 3)).astype(np.float32)
    if resizer == "pillow lanczos":
        small = float_resize_pillow(x, (1080, 914), Image.Resampling.LANCZOS)
    else:
        small = cv2.resize(x, (914, 1080), interpolation=cv2.INTER_AREA)
    y = np.random.default_rng(6).random((3, 224, 224))
    pipeline = Pipeline("upload", YAHOO, (Upload(1080, resizer, 80),))
    dot_test(model_side(small), x, pipeline.adjoint(y, x.shape[:2]), y)


def test_one_pass_sum_of_adjoints_equals_each_pipelines_own_adjoint_summed():
    """summed_adjoint (the attack's step) against Pipeline.adjoint, pipeline by pipeline and summed.

    Draws of the family and every suite member (resizers of three libraries, windows, downscales,
    uploads that resize, rotations, the squash and blobFromImage's crop) on a photo larger than an
    upload's 1080: the composed banded matrices give the same map, up to float32 rounding."""
    size = (1201, 1633)
    rng = np.random.default_rng(12)
    pipelines = [random_pipeline(YAHOO, rng, photo_size=size) for _ in range(12)]
    pipelines += verification_suite(YAHOO, photo_size=size, engines=True)
    assert any(isinstance(s, Rotate) for p in pipelines for s in p.steps)
    assert any(isinstance(s, Upload) and not s.is_noop(size) for p in pipelines for s in p.steps)
    grads = [rng.standard_normal((3, 224, 224)).astype(np.float32) for _ in pipelines]
    each = np.zeros((*size, 3), np.float32)
    for pipeline, grad in zip(pipelines, grads):
        own = pipeline.adjoint(grad, size)
        alone = summed_adjoint([pipeline.adjoint_factors(grad, size)], size)
        np.testing.assert_allclose(alone, own, rtol=0, atol=2e-6 * float(np.abs(own).max()), err_msg=pipeline.name)
        each += own
    together = summed_adjoint([p.adjoint_factors(g, size) for p, g in zip(pipelines, grads)], size)
    np.testing.assert_allclose(together, each, rtol=0, atol=2e-6 * float(np.abs(each).max()))


def test_linear_data_is_the_map_the_adjoint_transposes_and_close_to_the_libraries():
    """A large photo's drawn data (linear_data): the transpose of its map is Pipeline.adjoint (dot-product
    test on the map written with linear_matrices), and the data stay near the libraries' own calls."""
    size = (1500, 2000)
    photo = cv2.resize(skdata.chelsea(), (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(21)
    pipelines = [random_pipeline(YAHOO, rng, photo_size=size) for _ in range(10)]
    rotating = [any(isinstance(s, Rotate) for s in p.steps) for p in pipelines]
    assert any(rotating) and not all(rotating)
    for pipeline, data, rotates in zip(pipelines, linear_data(photo, pipelines), rotating):
        exact = pipeline.forward(photo)
        if rotates:  # rotated on the network's grid, not at full resolution: the same picture, edges aside
            assert np.corrcoef(data.ravel(), exact.ravel())[0, 1] > 0.97, pipeline.name
        else:  # the libraries' 8-bit rounding, amplified by a JPEG step at most
            assert np.abs(data - exact).mean() < 2.5, pipeline.name
    x = np.random.default_rng(22).random((*size, 3)).astype(np.float32)
    y = np.random.default_rng(23).standard_normal((3, 224, 224)).astype(np.float32)
    for pipeline in pipelines:
        rows, cols, rotation = pipeline.linear_matrices(size)
        grid = np.stack([np.asarray(rows @ x[:, :, c]) @ cols.T for c in range(3)])
        if rotation is not None:
            grid = np.stack([(rotation @ g.ravel()).reshape(g.shape) for g in grid])
        top, left, h, w = pipeline.preprocessing.crop_box(pipeline.stage_sizes(size)[-1])
        mapped = grid[[2, 1, 0], top:top + h, left:left + w] * 255.0
        dot_test(mapped, x, pipeline.adjoint(y, size), y)


def test_a_large_photos_step_data_judge_the_goal_by_the_exact_libraries():
    """pipeline_data from LINEAR_DRAWS_FROM pixels: the model's own row is its exact forward, bit for bit;
    the drawn rows are linear_data's; a smaller photo's drawn rows are the libraries' own calls."""
    from breaking_nn.eot import LINEAR_DRAWS_FROM, pipeline_data

    rng = np.random.default_rng(31)
    for size in [(768, 1024), (300, 400)]:
        photo = cv2.resize(skdata.chelsea(), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        pipelines = [Pipeline("model", YAHOO)] + [random_pipeline(YAHOO, rng, photo_size=size) for _ in range(4)]
        data = pipeline_data(photo, pipelines)
        np.testing.assert_array_equal(data[0], pipelines[0].forward(photo))
        drawn = (linear_data(photo, pipelines[1:]) if size[0] * size[1] >= LINEAR_DRAWS_FROM
                 else np.stack([p.forward(photo, fast=True) for p in pipelines[1:]]))
        np.testing.assert_array_equal(data[1:], drawn)
    assert 300 * 400 < LINEAR_DRAWS_FROM <= 768 * 1024


@pytest.mark.parametrize("library", ["pillow", "opencv"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_network_rotation_is_the_library_warp_and_its_transpose_passes_the_dot_product_test(library, interpolation):
    step = Rotate(-3.5, library, interpolation)
    grid = (64, 80)
    matrix = network_rotation(step, grid, grid)  # at the photo's own size: the rotation itself
    x = np.random.default_rng(7).random(grid).astype(np.float32)
    rotated = (matrix @ x.ravel()).reshape(grid)
    if library == "opencv":
        flags = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[interpolation]
        expected = cv2.warpAffine(x, cv2.getRotationMatrix2D((40, 32), -3.5, 1.0), (80, 64), flags=flags)
        np.testing.assert_allclose(rotated, expected, atol=1e-4)
    else:  # Pillow's own float rotation, away from the filled corners: the same map, read with OpenCV's
        # kernels (its 1/32-pixel grid; its cubic has a = -0.75, Pillow's -0.5); a map off by a pixel gives ~0.3
        pil = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[interpolation]
        expected = np.asarray(Image.fromarray(x, "F").rotate(-3.5, resample=pil))
        gap = np.abs(rotated - expected)[8:-8, 8:-8]
        assert gap.mean() < 0.02 and gap.max() < 0.1, (gap.mean(), gap.max())
    y = np.random.default_rng(8).random(grid)
    dot_test(rotated, x, (matrix.T @ y.ravel()).reshape(grid), y)


def test_rotation_pipeline_gradient_points_like_the_exact_one():
    """The rotation's transpose at the network's scale against the exact forward's finite differences."""
    photo = np.ascontiguousarray(skdata.chelsea())
    pre = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224), resizer="pillow")
    pipeline = Pipeline("r", pre, (Rotate(4, "opencv", "bilinear"),))
    y = np.random.default_rng(9).standard_normal((3, 224, 224)).astype(np.float32)
    grad = pipeline.adjoint(y, photo.shape[:2])
    direction = np.sign(grad) * 8  # 8 grey levels along the estimated gradient's sign, and against it
    up = np.clip(photo + direction, 0, 255).astype(np.uint8)
    down = np.clip(photo - direction, 0, 255).astype(np.uint8)
    gain = float(np.sum((pipeline.forward(up) - pipeline.forward(down)) * y))
    assert gain > 0, gain


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: Rotate(5.5), "at most 5 degrees"),
    (lambda: Rotate(float("nan")), "at most 5 degrees"),
    (lambda: Rotate(2, "skimage"), "library is one of"),
    (lambda: Rotate(2, interpolation="lanczos"), "interpolation is one of"),
    (lambda: Crop(0.2, 0, 0, 0), "from 0 to 0.15"),
    (lambda: Crop(-0.01, 0, 0, 0), "from 0 to 0.15"),
    (lambda: Trim(-1, 0, 0, 0), "whole number"),
    (lambda: Trim(2.5, 0, 0, 0), "whole number"),
    (lambda: AspectCrop(9, 1), "from 1:4 to 4:1"),
    (lambda: Scale(1.5), "in \\(0, 1\\]"),
    (lambda: Encode(99), "from 1 to 95"),
    (lambda: Encode(80, "PNG"), "JPEG.*WEBP"),
    (lambda: Upload(1440), "one of \\(1080, 2048\\)"),
    (lambda: Upload(1080, quality=95), "from 70 to 90"),
    (lambda: Upload(1080, "skimage"), "resizer is one of"),
    (lambda: Pipeline("two", YAHOO, (Rotate(1), Rotate(2))), "rotates at most once"),
    (lambda: Pipeline("after", YAHOO, (Rotate(1), Crop(0.1, 0, 0, 0))), "only re-saves"),
    (lambda: Pipeline("engine", YAHOO, engine="tensorflow"), "engine is"),
])
def test_steps_out_of_range_are_clear_errors(make, message):
    with pytest.raises(ModelError, match=message):
        make()


def test_shift_out_of_range_and_photos_too_small_for_a_crop_are_clear_errors():
    assert max_shift((300, 452)) == 16 and max_shift((3000, 4000)) == 80
    with pytest.raises(ModelError, match="at most 16 px a side"):
        Pipeline("far", YAHOO, (Trim(17, 0, 0, 0),)).forward(PHOTO)
    assert Pipeline("far", YAHOO, (Trim(79, 0, 0, 0),)).forward(np.zeros((3000, 4000, 3), np.uint8)).shape == \
        (3, 224, 224)
    with pytest.raises(ModelError, match="too small for the step 'centre 16:9'.*at least 3x3"):
        Pipeline("thin", YAHOO, (AspectCrop(16, 9),)).forward(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ModelError, match="too small for the step 'trim 4/0/4/0 px'"):
        Pipeline("trim", YAHOO, (Trim(4, 0, 4, 0),)).adjoint(np.zeros((3, 224, 224)), (10, 10))
