"""Loading images from files, URLs (loopback) and arrays; bad input is a clear error."""
import io

import numpy as np
import pytest
from PIL import Image

from breaking_nn import ImageLoadError, default_image, load_blog_image, load_image
from breaking_nn import images
from breaking_nn.images import fetch_image_bytes


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def assert_rgb_01(arr, shape):
    assert arr.shape == shape and arr.dtype == np.float32
    assert 0.0 <= arr.min() and arr.max() <= 1.0


def test_blog_photo(liz_path):
    img = load_image(liz_path)
    assert_rgb_01(img, (948, 533, 3))
    # Pillow's decode, HWC RGB: the same pixels as the raw JPEG decode.
    np.testing.assert_array_equal(img, np.asarray(Image.open(liz_path), np.float32) / 255.0)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_other_modes_become_rgb(tmp_path, mode):
    base = Image.new("RGB", (20, 10), (200, 100, 50))
    img = base.convert(mode) if mode != "I;16" else Image.new("I;16", (20, 10), 40000)
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    arr = load_image(path)
    assert_rgb_01(arr, (10, 20, 3))
    if mode == "L":
        assert np.allclose(arr[..., 0], arr[..., 1])
    if mode == "RGBA":
        np.testing.assert_allclose(arr[0, 0], np.array([200, 100, 50]) / 255.0, atol=1e-6)


def test_arrays(tmp_path):
    assert_rgb_01(load_image(np.zeros((5, 6), np.uint8)), (5, 6, 3))
    assert_rgb_01(load_image(np.ones((5, 6, 4), np.float64)), (5, 6, 3))
    with pytest.raises(ImageLoadError, match="HWC"):
        load_image(np.zeros((3, 224, 224, 2)))
    with pytest.raises(ImageLoadError, match="0-1"):
        load_image(np.full((4, 4, 3), 255.0))


def test_default_image_is_offline():
    assert_rgb_01(default_image(), (300, 451, 3))


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match=r"does not exist.*check the path"):
        load_image(tmp_path / "no-such.jpg")


def test_non_image_bytes(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture")
    with pytest.raises(ImageLoadError, match="not an image.*'this is not a picture'"):
        load_image(path)


def test_truncated_jpeg(tmp_path, liz_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(liz_path.read_bytes()[:5000])
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(path)


def test_url(http_server):
    body = png_bytes(Image.new("RGB", (8, 4), (0, 255, 0)))
    http_server.routes["/cat.png"] = (200, body, {"Content-Type": "image/png"})
    arr = load_image(http_server.url("/cat.png"))
    assert_rgb_01(arr, (4, 8, 3))
    assert arr[0, 0].tolist() == [0.0, 1.0, 0.0]


def test_url_404(http_server):
    with pytest.raises(ImageLoadError, match="HTTP 404"):
        load_image(http_server.url("/missing.jpg"))


def test_url_html_instead_of_image(http_server):
    http_server.routes["/page"] = (200, b"<!doctype html><html>login</html>", {"Content-Type": "text/html"})
    with pytest.raises(ImageLoadError, match="not an image.*doctype html"):
        load_image(http_server.url("/page"))


def test_url_too_big(http_server):
    http_server.routes["/big"] = (200, b"x" * 5000, {})
    with pytest.raises(ImageLoadError, match="larger than"):
        fetch_image_bytes(http_server.url("/big"), max_bytes=1000)


def test_url_refused(refused_url):
    with pytest.raises(ImageLoadError, match="could not fetch.*ConnectionError"):
        load_image(refused_url, timeout=5)


def test_blog_image_falls_back_to_the_offline_cat(refused_url, monkeypatch, liz_path):
    monkeypatch.setattr(images, "BLOG_IMAGE_URL", refused_url)
    said = []
    img = load_blog_image(log=said.append)
    np.testing.assert_array_equal(img, default_image())
    assert "Could not fetch the blog's photo" in said[0] and "offline" in said[0]
    assert load_blog_image(liz_path).shape == (948, 533, 3)
