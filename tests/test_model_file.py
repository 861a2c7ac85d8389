"""Model files (model.toml): GoogLeNet's describes today's model exactly; bad files are clear errors."""
import sys
from pathlib import Path

import numpy as np
import pytest

import breaking_nn as bnn
from breaking_nn import ModelError, paths, weights
from breaking_nn.caffe_runtime import import_caffe
from breaking_nn.model_file import read_model_file

GOOD = '''name = "tiny"
prototxt = "deploy.prototxt"
weights = "tiny.caffemodel"
labels = ["pattern A", "pattern B", "pattern C"]

[preprocess]
channel_order = "BGR"
'''


def test_googlenet_model_file_matches_the_package():
    spec = read_model_file(paths.googlenet_model_file())
    assert spec.name == "bvlc_googlenet" and spec.prototxt == paths.googlenet_prototxt()
    assert spec.download == weights.GOOGLENET
    assert spec.weights == paths.googlenet_prototxt().parent / "bvlc_googlenet.caffemodel"
    assert len(spec.labels) == 1000 and spec.labels.name(283) == "Persian cat"
    assert spec.preprocess == {"channel_order": "BGR", "raw_scale": 255.0, "antialias": False}


@pytest.mark.slow
def test_googlenet_preprocessing_is_the_blogs_transformer_bit_for_bit(googlenet, liz_path):
    caffe = import_caffe()
    t = caffe.io.Transformer({"data": (1, 3, 224, 224)})
    t.set_transpose("data", (2, 0, 1))
    t.set_raw_scale("data", 255)
    t.set_channel_swap("data", (2, 1, 0))
    image = bnn.load_image(liz_path)
    np.testing.assert_array_equal(googlenet.preprocess(image), t.preprocess("data", image))


@pytest.fixture
def tiny_folder(tiny_model, tmp_path):
    """A folder holding the trained tiny classifier's prototxt and weights, and a good model.toml."""
    tiny_model.net.save(str(tmp_path / "tiny.caffemodel"))
    from tiny_classifier import net_prototxt

    (tmp_path / "deploy.prototxt").write_text(net_prototxt(1, train=False))
    (tmp_path / "model.toml").write_text(GOOD)
    return tmp_path


@pytest.mark.slow
def test_a_good_model_file_loads_and_predicts_as_the_three_argument_form(tiny_folder, tiny_model):
    model = bnn.load_model(tiny_folder / "model.toml")
    assert model.name == "tiny" and model.labels.names == ["pattern A", "pattern B", "pattern C"]
    image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(model.preprocess(image)),
                                  tiny_model.forward(tiny_model.preprocess(image)))


BAD = [
    ("missing key", lambda t: t.replace('name = "tiny"\n', ""), "missing key 'name'"),
    ("extra key", lambda t: 'colour = "blue"\n' + t, r"unknown key 'colour'; the keys are: name, "),
    ("extra preprocess key", lambda t: t + 'colour = "blue"\n', r"unknown \[preprocess\] key 'colour'"),
    ("wrong type", lambda t: t.replace('name = "tiny"', "name = 3"), "key 'name' must be a string, not 3"),
    ("wrong type in preprocess", lambda t: t + "raw_scale = \"255\"\n", "key 'raw_scale' must be a number"),
    ("crop larger than resize", lambda t: t + "resize = [16, 16]\ncrop = [20, 16]\n",
     r"crop \[20, 16\] is larger than resize \[16, 16\]"),
    ("mean of the wrong length", lambda t: t + "mean_bgr = [104, 117]\n", "mean_bgr must be three numbers"),
    ("unknown channel order", lambda t: t.replace('"BGR"', '"GBR"'), "channel_order must be \"BGR\" or \"RGB\""),
    ("weights path that does not exist", lambda t: t.replace("tiny.caffemodel", "nope.caffemodel"),
     r"weights file .*nope.caffemodel does not exist"),
    ("labels and labels_file", lambda t: t.replace("labels =", 'labels_file = "x.txt"\nlabels ='),
     "exactly one of 'labels'"),
    ("not TOML", lambda t: "name = \n", "is not valid TOML"),
    ("label count differs from the net's outputs", lambda t: t.replace(', "pattern C"', ""),
     "predicts 3 classes but the label list has 2"),
    ("preprocessing that does not give the input size", lambda t: t + "resize = [20, 20]\n",
     r"makes \[20, 20\] images but the network takes \[16, 16\]"),
    ("unknown resizer", lambda t: t + 'resizer = "cv2"\n', 'resizer must be "skimage", "pillow" or "opencv", not \'cv2\''),
    ("unknown interpolation", lambda t: t + 'resizer = "opencv"\ninterpolation = "lanczos"\n',
     "interpolation must be one of 'linear', 'area', 'cubic', 'nearest', not 'lanczos'"),
    ("interpolation without OpenCV", lambda t: t + 'interpolation = "area"\n',
     'interpolation = \'area\' is an OpenCV setting: add resizer = "opencv"'),
    ("interpolation with Pillow", lambda t: t + 'resizer = "pillow"\ninterpolation = "area"\n',
     'is an OpenCV setting: add resizer = "opencv"'),
    ("blob_crop without OpenCV", lambda t: t + "blob_crop = true\n", 'blob_crop is .*crop=True: add resizer = "opencv"'),
    ("blob_crop with resize", lambda t: t + 'resizer = "opencv"\nblob_crop = true\nresize = [16, 16]\n',
     "leave resize and crop out"),
    ("blob_crop not a boolean", lambda t: t + 'resizer = "opencv"\nblob_crop = 1\n', "key 'blob_crop' must be true or false"),
    ("antialias with OpenCV", lambda t: t + 'resizer = "opencv"\nantialias = true\n',
     "antialias is a scikit-image option: OpenCV's interpolation = \"area\""),
    ("unknown resample", lambda t: t + 'resizer = "pillow"\nresample = "hamming"\n',
     "resample must be one of 'bilinear', 'bicubic', 'lanczos', 'box', 'nearest', not 'hamming'"),
    ("resample without Pillow", lambda t: t + 'resample = "bicubic"\n', 'add resizer = "pillow"'),
    ("antialias with Pillow", lambda t: t + 'resizer = "pillow"\nantialias = true\n',
     "antialias is a scikit-image option: Pillow always filters when it shrinks"),
    ("jpeg_roundtrip zero", lambda t: t + "jpeg_roundtrip = 0\n", "jpeg_roundtrip must be a JPEG quality, .* 1 to 95"),
    ("jpeg_roundtrip 96", lambda t: t + "jpeg_roundtrip = 96\n", "jpeg_roundtrip must be a JPEG quality, .* 1 to 95"),
    ("jpeg_roundtrip not a number", lambda t: t + 'jpeg_roundtrip = "75"\n', "key 'jpeg_roundtrip' must be an integer"),
    ("duplicate label names", lambda t: t.replace('"pattern C"', '"Pattern A"'),
     "classes 0 and 2 are both named 'Pattern A'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case, edit, message", BAD, ids=[b[0] for b in BAD])
def test_bad_model_files_are_one_clear_error(tiny_folder, case, edit, message):
    path = tiny_folder / "model.toml"
    path.write_text(edit(GOOD))
    before = sorted(p.name for p in tiny_folder.iterdir())
    with pytest.raises(ModelError, match=message) as info:
        bnn.load_model(path)
    assert str(path) in str(info.value)
    assert sorted(p.name for p in tiny_folder.iterdir()) == before  # nothing written


def test_a_download_needs_url_sha1_and_size(tmp_path):
    (tmp_path / "deploy.prototxt").write_text("")
    (tmp_path / "model.toml").write_text(GOOD.replace('weights = "tiny.caffemodel"', 'url = "http://x/m.caffemodel"'))
    with pytest.raises(ModelError, match=r"url \(or urls\), sha1 and size together; add sha1, size"):
        read_model_file(tmp_path / "model.toml")


@pytest.mark.slow
def test_model_file_weights_download_from_its_url(tiny_folder, http_server):
    body = (tiny_folder / "tiny.caffemodel").read_bytes()
    http_server.routes["/tiny.caffemodel"] = (200, body, {})
    import hashlib

    (tiny_folder / "tiny.caffemodel").unlink()
    (tiny_folder / "model.toml").write_text(GOOD.replace(
        'weights = "tiny.caffemodel"',
        f'url = "{http_server.url("/tiny.caffemodel")}"\nsha1 = "{hashlib.sha1(body).hexdigest()}"\nsize = {len(body)}'))
    model = bnn.load_model(tiny_folder / "model.toml")
    assert (tiny_folder / "tiny.caffemodel").read_bytes() == body
    assert model.n_classes == 3


def test_bad_model_file_in_a_subprocess_is_an_exit_with_the_message_not_a_signal(tmp_path):
    import subprocess

    (tmp_path / "model.toml").write_text(GOOD.replace('"BGR"', '"BRG"'))
    (tmp_path / "deploy.prototxt").write_text("")
    (tmp_path / "tiny.caffemodel").write_bytes(b"")
    code = ("import sys, breaking_nn as bnn\n"
            "try:\n    bnn.load_model(sys.argv[1])\n"
            "except bnn.ModelError as exc:\n    print(exc, file=sys.stderr); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.toml")], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert "channel_order must be" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_model_file_download_names_the_model_file(tiny_folder, http_server):
    (tiny_folder / "tiny.caffemodel").unlink()
    (tiny_folder / "model.toml").write_text(GOOD.replace(
        'weights = "tiny.caffemodel"',
        f'url = "{http_server.url("/gone.caffemodel")}"\nsha1 = "{"0" * 40}"\nsize = 10'))
    with pytest.raises(bnn.WeightsError, match=r"HTTP 404.*save it as .*gone.caffemodel \(named by .*model.toml\)") as info:
        bnn.load_model(tiny_folder / "model.toml")
    assert "make weights" not in str(info.value)
    assert sorted(p.name for p in tiny_folder.iterdir()) == ["deploy.prototxt", "model.toml"]


def test_url_and_urls_together_are_a_model_error(tiny_folder):
    (tiny_folder / "model.toml").write_text(GOOD.replace(
        'weights = "tiny.caffemodel"',
        'url = "http://a.example/t.caffemodel"\nurls = ["http://b.example/t.caffemodel"]\n'
        f'sha1 = "{"0" * 40}"\nsize = 10'))
    with pytest.raises(ModelError, match=r"give 'url' \(one source\) or 'urls' \(sources tried in order\), not both"):
        read_model_file(tiny_folder / "model.toml")


@pytest.mark.parametrize("urls", ["[]", '["ftp://x/t.caffemodel"]', '[1, 2]'])
def test_bad_urls_are_a_model_error(tiny_folder, urls):
    (tiny_folder / "model.toml").write_text(GOOD.replace(
        'weights = "tiny.caffemodel"', f'urls = {urls}\nsha1 = "{"0" * 40}"\nsize = 10'))
    with pytest.raises(ModelError, match="'urls' must be a non-empty list of http"):
        read_model_file(tiny_folder / "model.toml")


@pytest.mark.slow
def test_model_file_urls_are_tried_in_order(tiny_folder, http_server, refused_url):
    """urls = [dead, wrong file, right file]: the model loads from the third."""
    import hashlib

    body = (tiny_folder / "tiny.caffemodel").read_bytes()
    (tiny_folder / "tiny.caffemodel").unlink()
    http_server.routes["/wrong.caffemodel"] = (200, body[::-1], {})
    http_server.routes["/tiny.caffemodel"] = (200, body, {})
    urls = [refused_url, http_server.url("/wrong.caffemodel"), http_server.url("/tiny.caffemodel")]
    (tiny_folder / "model.toml").write_text(GOOD.replace(
        'weights = "tiny.caffemodel"',
        f'weights = "tiny.caffemodel"\nurls = {urls!r}\nsha1 = "{hashlib.sha1(body).hexdigest()}"\nsize = {len(body)}'
        .replace("'", '"')))
    spec = read_model_file(tiny_folder / "model.toml")
    assert spec.download.urls == tuple(urls)
    model = bnn.load_model(tiny_folder / "model.toml")
    assert (tiny_folder / "tiny.caffemodel").read_bytes() == body
    assert http_server.hits == {"/wrong.caffemodel": 1, "/tiny.caffemodel": 1}
    assert model.n_classes == 3


@pytest.mark.slow
def test_an_opencv_model_file_preprocesses_as_blob_from_image(tiny_folder):
    import cv2

    path = tiny_folder / "model.toml"
    path.write_text(GOOD + 'mean_bgr = [104, 117, 123]\nresizer = "opencv"\nblob_crop = true\n')
    model = bnn.load_model(path)
    photo = np.random.default_rng(1).integers(0, 256, (40, 27, 3), dtype=np.uint8)  # RGB
    blob = cv2.dnn.blobFromImage(photo[:, :, ::-1].copy(), 1.0, (16, 16), (104, 117, 123), swapRB=False, crop=True)
    np.testing.assert_array_equal(model.preprocess(photo), blob[0])
