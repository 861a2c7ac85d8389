"""OpenCV's resizers and blobFromImage's two ways as preprocessing steps, checked against real cv2 calls."""
import cv2
import numpy as np
import pytest
from skimage import data as skdata

from breaking_nn import ModelError
from breaking_nn.preprocessing import Preprocessing, opencv_call, opencv_resize

MEAN = (104.0, 117.0, 123.0)
# (photo height, width), interpolation, blob_crop: OpenCV's paths at real sizes: a plain shrink, exact 2x
# (linear turns into area there), integer 3x (area's fast path), a non-integer area shrink, an upscale,
# a shrink along one axis with an upscale along the other (area's upscaling branch), a phone-like 3:4 photo,
# and blobFromImage's crop=True (cv2.resize with fx = fy).
CASES = [((300, 400), "linear", False), ((448, 448), "linear", False), ((672, 672), "area", False),
         ((500, 375), "area", False), ((150, 100), "cubic", False), ((180, 400), "area", False),
         ((1440, 1080), "area", False), ((333, 250), "nearest", False), ((1440, 1080), "cubic", False),
         ((427, 640), "linear", True), ((1080, 1440), "area", True), ((224, 500), "linear", True)]
IDS = [f"{h}x{w}-{i}{'-crop' if c else ''}" for (h, w), i, c in CASES]


def opencv_pipeline(interpolation, blob_crop, **options):
    return Preprocessing(input_size=(224, 224), mean_bgr=MEAN, resizer="opencv", interpolation=interpolation,
                         blob_crop=blob_crop, **options)


def photo_of(size, seed=0) -> np.ndarray:
    """A real photo (scikit-image's astronaut) at ``size``, uint8 RGB, with a little noise (no flat areas)."""
    photo = cv2.resize(skdata.astronaut(), (size[1], size[0]), interpolation=cv2.INTER_AREA).astype(np.int16)
    noise = np.random.default_rng(seed).integers(-6, 7, photo.shape)
    return np.clip(photo + noise, 0, 255).astype(np.uint8)


def apply_map(rows_t, cols, image):
    """rows @ image_c @ cols^T per channel: (H, W, 3) float -> (H', W', 3) float32."""
    return np.stack([np.asarray(rows_t.T @ image[:, :, c]) @ cols.T for c in range(3)], axis=-1).astype(np.float32)


@pytest.mark.parametrize("size, interpolation, blob_crop", CASES, ids=IDS)
def test_the_matrices_are_cv2_resize_at_the_photos_own_size(size, interpolation, blob_crop):
    p = opencv_pipeline(interpolation, blob_crop)
    photo = photo_of(size)
    rows_t, cols = p.resize_matrices(*size)
    call = opencv_call(size, (224, 224), cover=blob_crop)
    assert (rows_t.shape[1], cols.shape[0]) == call[0] == p.resized_size_for(size)
    linear = apply_map(rows_t, cols, photo.astype(np.float32))
    float_map = opencv_resize(photo.astype(np.float32), *call, interpolation)  # OpenCV's float path
    np.testing.assert_allclose(linear, float_map, atol=2e-3)  # float32 sums of 0-255 values
    eight_bit = opencv_resize(photo, *call, interpolation).astype(np.float32)  # the forward's call
    gap = np.abs(np.clip(np.rint(linear), 0, 255) - eight_bit)
    # OpenCV's fixed-point weights and its own rounding: at most one grey level, on at most 1 pixel in 8
    assert gap.max() <= 1 and (gap > 0).mean() <= 0.13
    np.testing.assert_array_equal(p.resize_image(photo), eight_bit / np.float32(255))


@pytest.mark.parametrize("size, interpolation, blob_crop", CASES, ids=IDS)
def test_the_adjoint_is_the_transpose_of_cv2_resize(size, interpolation, blob_crop):
    """<L x, g> = <x, L^T g> with L built from cv2.resize on float32 itself, not from the matrices."""
    p = opencv_pipeline(interpolation, blob_crop)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((*size, 3)).astype(np.float32)
    g = rng.standard_normal((3, 224, 224)).astype(np.float32)
    top, left, h, w = p.crop_box(size)
    resized = opencv_resize(x, *opencv_call(size, (224, 224), cover=blob_crop), interpolation)
    lx = resized[top:top + h, left:left + w].transpose(2, 0, 1)[[2, 1, 0]] * np.float32(255)  # RGB -> BGR data
    left_side = float(np.dot(lx.ravel().astype(np.float64), g.ravel()))
    right_side = float(np.dot(x.ravel().astype(np.float64), p.adjoint(g, size).ravel()))
    assert right_side == pytest.approx(left_side, rel=1e-4, abs=1e-2)


@pytest.mark.parametrize("size", [(300, 400), (427, 640), (640, 427), (1080, 1440), (224, 224), (500, 224)])
@pytest.mark.parametrize("crop", [False, True], ids=["squash", "crop"])
def test_blob_from_image_equals_the_pipelines_data(size, crop):
    photo = photo_of(size, seed=size[0])  # RGB, as load_image gives
    bgr = np.ascontiguousarray(photo[:, :, ::-1])  # as cv2.imread gives
    p = opencv_pipeline(None, crop)  # blobFromImage's interpolation: linear
    blob = cv2.dnn.blobFromImage(bgr, 1.0, (224, 224), MEAN, swapRB=False, crop=crop)
    np.testing.assert_array_equal(p.forward(photo), blob[0])
    np.testing.assert_array_equal(p.forward(photo / np.float32(255)), blob[0])  # a 0-1 float photo too
    rgb_blob = cv2.dnn.blobFromImage(photo, 1.0, (224, 224), MEAN, swapRB=True, crop=crop)
    np.testing.assert_array_equal(rgb_blob, blob)  # 4.11: the mean is in the blob's (swapped) channel order


def test_resize_then_centre_crop_with_opencv():
    """cv2.resize to 256 then a centre 224 crop, as many OpenCV deployments do."""
    photo = photo_of((480, 640))
    p = Preprocessing(input_size=(224, 224), resize=(256, 256), crop=(224, 224), mean_bgr=MEAN,
                      resizer="opencv", interpolation="area")
    resized = cv2.resize(np.ascontiguousarray(photo[:, :, ::-1]), (256, 256), interpolation=cv2.INTER_AREA)
    expected = resized[16:240, 16:240].astype(np.float32).transpose(2, 0, 1) - np.float32(MEAN).reshape(3, 1, 1)
    np.testing.assert_array_equal(p.forward(photo), expected)


@pytest.mark.parametrize("options, message", [
    ({"interpolation": "lanczos"}, "interpolation must be one of 'linear', 'area', 'cubic', 'nearest'"),
    ({"resizer": "pillow", "interpolation": "area"}, 'is an OpenCV setting: add resizer = "opencv"'),
    ({"resizer": "skimage", "interpolation": "area"}, 'is an OpenCV setting: add resizer = "opencv"'),
    ({"resizer": "skimage", "blob_crop": True}, 'add resizer = "opencv"'),
    ({"blob_crop": True, "resize": (256, 256), "crop": (224, 224)}, "leave resize and crop out"),
    ({"antialias": True}, "antialias is a scikit-image option"),
])
def test_bad_opencv_settings_are_one_clear_error(options, message):
    settings = {"input_size": (224, 224), "resizer": "opencv", **options}
    with pytest.raises(ModelError, match=message):
        Preprocessing(**settings)


def test_blob_crops_box_needs_the_photo_size():
    p = opencv_pipeline("linear", True)
    with pytest.raises(ModelError, match="pass crop_box"):
        p.crop_box()
    assert p.resized_size_for((300, 400)) == (224, 299)  # 400 * float32(224 / 300), rounded
    assert p.crop_box((300, 400)) == (0, 37, 224, 224)
