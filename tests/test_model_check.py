"""No model file can kill the process: each bad file is one clear ModelError (breaking_nn.model_check).

The bad files are loaded with ``bnn.load_model`` in a separate Python process,
one case after another (one interpreter start for all: the machine is small).
Each case prints its outcome as it ends, so a case that killed the process is
named; the process must exit normally, not by a signal.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import breaking_nn as bnn
from breaking_nn import paths
from breaking_nn.errors import ModelError
from breaking_nn.generated import generate_weights
from breaking_nn.model_check import check_model_files, read_caffemodel

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NSFW_PROTOTXT, NSFW_CAFFEMODEL = "deploy.prototxt", "resnet_50_1by2_nsfw.caffemodel"


# -- bad files made from good ones ---------------------------------------------------

def googlenet_variant(folder: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    """GoogLeNet's deploy prototxt with ``old`` replaced by ``new`` (``count`` times)."""
    text = paths.googlenet_prototxt().read_text()
    assert old in text
    path = folder / name
    path.write_text(text.replace(old, new, count))
    return path


def to_v1(caffemodel: Path, out: Path, *, legacy_shapes: dict | None = None, keep_layer: bool = False) -> Path:
    """``caffemodel`` rewritten in the legacy V1 format: ``layers`` with enum types, blobs as
    num/channels/height/width (the blob shape padded with 1s on the left, as old Caffe wrote them).

    ``legacy_shapes`` overrides those 4-D shapes: {(layer name, blob index): (n, c, h, w)};
    ``keep_layer`` also keeps the current ``layer`` field (a file Caffe refuses).
    """
    from caffe.proto import caffe_pb2

    net = caffe_pb2.NetParameter()
    net.ParseFromString(caffemodel.read_bytes())
    v1_types = {"Convolution": "CONVOLUTION", "InnerProduct": "INNER_PRODUCT", "ReLU": "RELU",
                "Pooling": "POOLING", "Softmax": "SOFTMAX", "Power": "POWER"}
    for layer in net.layer:
        if layer.type not in v1_types:
            continue                                     # the Input layer: V1 nets had input fields
        old = net.layers.add(name=layer.name, type=caffe_pb2.V1LayerParameter.LayerType.Value(v1_types[layer.type]),
                             bottom=layer.bottom, top=layer.top)
        for j, blob in enumerate(layer.blobs):
            dims = tuple(blob.shape.dim)
            n, c, h, w = (legacy_shapes or {}).get((layer.name, j), (1,) * (4 - len(dims)) + dims)
            old.blobs.add(num=n, channels=c, height=h, width=w, data=blob.data)
    if not keep_layer:
        del net.layer[:]
    out.write_bytes(net.SerializeToString())
    return out


def tiny_variant(folder: Path, old: str, new: str) -> Path:
    """The tiny classifier's deploy prototxt with ``old`` replaced by ``new``."""
    from tiny_classifier import net_prototxt

    text = net_prototxt(1, train=False)
    assert old in text
    path = folder / f"tiny-{new.replace(' ', '').replace(':', '-')}.prototxt"
    path.write_text(text.replace(old, new))
    return path


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny classifier's deploy prototxt and generated weights (no training needed)."""
    from tiny_classifier import net_prototxt

    folder = tmp_path_factory.mktemp("tiny-gen")
    prototxt = folder / "deploy.prototxt"
    prototxt.write_text(net_prototxt(1, train=False))
    return prototxt, generate_weights(prototxt, folder / "tiny.caffemodel", seed=3)


@pytest.fixture(scope="module")
def bad_cases(tmp_path_factory, generated_googlenet_weights, open_nsfw_files, tiny_weights):
    """{case: (prototxt, caffemodel or None, number of classes, fragments the error must contain)}."""
    from caffe.proto import caffe_pb2

    bad = tmp_path_factory.mktemp("bad")
    googlenet, weights = paths.googlenet_prototxt(), generated_googlenet_weights
    nsfw_prototxt, nsfw_weights = open_nsfw_files / NSFW_PROTOTXT, open_nsfw_files / NSFW_CAFFEMODEL
    readme = REPO / "README.md"
    half = bad / "googlenet-half.caffemodel"
    half.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    tiny_prototxt, tiny_caffemodel = tiny_weights
    partial = caffe_pb2.NetParameter()
    partial.ParseFromString(tiny_caffemodel.read_bytes())
    del partial.layer[[layer.name for layer in partial.layer].index("fc")]
    (bad / "tiny-without-fc.caffemodel").write_bytes(partial.SerializeToString())
    no_softmax = bad / "no-softmax.prototxt"                      # GoogLeNet without its last layer, "prob"
    no_softmax.write_text(googlenet.read_text().split('layer {\n  name: "prob"')[0])
    return {
        "caffemodel is not a protobuf (README.md)":
            (googlenet, readme, 1000, ["README.md", "not a Caffe .caffemodel", "Fix:"]),
        "caffemodel truncated":
            (googlenet, half, 1000, ["googlenet-half.caffemodel", "truncated", "download it again"]),
        "GoogLeNet's weights given to open_nsfw's prototxt":
            (nsfw_prototxt, weights, 2, [weights.name, "none of the net's layers", "'conv_1'", "'conv1/7x7_s2'",
                                         "another network", "trained for this prototxt"]),
        "open_nsfw's weights given to GoogLeNet's prototxt (Caffe loads it silently)":
            (googlenet, nsfw_weights, 1000, [NSFW_CAFFEMODEL, "none of the net's layers", "'conv1/7x7_s2'",
                                             "'conv_1'", "random values"]),
        "a layer's weights of the wrong shape":
            (googlenet_variant(bad, "ten-classes.prototxt", "num_output: 1000", "num_output: 10"), weights, 10,
             ["loss3/classifier", "(10, 1024)", "(1000, 1024)"]),
        "a layer with parameters missing from the caffemodel":
            (tiny_prototxt, bad / "tiny-without-fc.caffemodel", 3, ["no weights for 1", "'fc'", "random values",
                                                                     "download it again"]),
        "legacy V1 caffemodel, a legacy shape that Caffe would not pad to the blob's":
            (tiny_prototxt, to_v1(tiny_caffemodel, bad / "v1-wrong.caffemodel", legacy_shapes={("fc", 0): (3, 768, 1, 1)}),
             3, ["layer 'fc'", "(3, 768)", "num/channels/height/width (3, 768, 1, 1)"]),
        "caffemodel with both 'layer' and legacy 'layers'":
            (tiny_prototxt, to_v1(tiny_caffemodel, bad / "both.caffemodel", keep_layer=True), 3,
             ["both.caffemodel", "both 'layer' and legacy 'layers'"]),
        "prototxt: unknown layer type":
            (googlenet_variant(bad, "unknown-type.prototxt", 'type: "LRN"', 'type: "LocalResponseNorm"'), weights,
             1000, ["unknown-type.prototxt", "Caffe cannot set this net up at layer 'pool1/norm1'",
                    "Unknown layer type: LocalResponseNorm", "caffe.layer_type_list()", "Fix the prototxt"]),
        "prototxt: missing bottom":
            (googlenet_variant(bad, "missing-bottom.prototxt", 'bottom: "pool1/3x3_s2"', 'bottom: "pool1/nowhere"'),
             weights, 1000, ["missing-bottom.prototxt", "Unknown bottom blob 'pool1/nowhere'", "'pool1/norm1'"]),
        "prototxt: a layer that does not fit its input (Caffe's message names no layer)":
            (tiny_variant(bad, "kernel_size: 3 pad: 1", "kernel_size: 40"), None, 3,
             ["Caffe cannot set this net up at layer 'conv1'", "Check failed"]),
        "prototxt: output is not a Softmax":
            (no_softmax, weights, 1000, ["no-softmax.prototxt", "'loss3/classifier'", "'InnerProduct', not 'Softmax'"]),
        "prototxt: not text-format protobuf (README.md)":
            (readme, None, 1000, ["README.md", "not a Caffe network definition", "no field named"]),
        "prototxt: a caffemodel given first (arguments swapped)":
            (weights, googlenet, 1000, [weights.name, "binary file", "the .caffemodel second"]),
    }


#: Loads each case with bnn.load_model; prints one JSON line per case as it ends.
RUNNER = r"""
import json, sys
import breaking_nn as bnn
for case, prototxt, weights, classes in json.loads(sys.argv[1]):
    try:
        bnn.load_model(prototxt, weights, bnn.Labels([f"class {i}" for i in range(classes)]))
        outcome = {"loaded": True}
    except bnn.ModelError as exc:
        outcome = {"error": str(exc)}
    except Exception as exc:
        outcome = {"other": f"{type(exc).__name__}: {exc}"}
    print(json.dumps({"case": case, **outcome}), flush=True)
"""


def listing(*folders: Path) -> dict:
    return {folder: sorted(p.name for p in folder.iterdir()) for folder in folders}


@pytest.fixture(scope="module")
def bad_run(bad_cases, tmp_path_factory):
    """The runner's exit status, each case's outcome, stderr, and the file listings before and after."""
    tmp = tmp_path_factory.mktemp("tmpdir")
    folders = sorted({Path(f).parent for case in bad_cases.values() for f in case[:2] if f is not None} | {tmp})
    before = listing(*folders)
    cases = [[name, str(p), None if w is None else str(w), k] for name, (p, w, k, _) in bad_cases.items()]
    run = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], capture_output=True, text=True,
                         env=dict(os.environ, TMPDIR=str(tmp)), timeout=600)
    outcomes = {line["case"]: line for line in map(json.loads, run.stdout.splitlines())}
    return run, outcomes, before, listing(*folders)


@pytest.mark.parametrize("case", [
    "caffemodel is not a protobuf (README.md)",
    "caffemodel truncated",
    "GoogLeNet's weights given to open_nsfw's prototxt",
    "open_nsfw's weights given to GoogLeNet's prototxt (Caffe loads it silently)",
    "a layer's weights of the wrong shape",
    "a layer with parameters missing from the caffemodel",
    "legacy V1 caffemodel, a legacy shape that Caffe would not pad to the blob's",
    "caffemodel with both 'layer' and legacy 'layers'",
    "prototxt: unknown layer type",
    "prototxt: missing bottom",
    "prototxt: a layer that does not fit its input (Caffe's message names no layer)",
    "prototxt: output is not a Softmax",
    "prototxt: not text-format protobuf (README.md)",
    "prototxt: a caffemodel given first (arguments swapped)",
])
def test_bad_file_is_one_clear_model_error(bad_cases, bad_run, case):
    run, outcomes, _, _ = bad_run
    assert case in outcomes, (f"the process died (exit {run.returncode}) while loading this case:\n"
                              f"{run.stderr[-3000:]}")
    outcome = outcomes[case]
    assert "error" in outcome, f"not a ModelError: {outcome}"
    for fragment in bad_cases[case][3]:
        assert fragment in outcome["error"]
    assert "Traceback" not in outcome["error"] and "Check failed" not in outcome["error"][:40]


def test_bad_files_end_in_an_ordinary_exit_and_write_nothing(bad_cases, bad_run):
    run, outcomes, before, after = bad_run
    assert run.returncode == 0, f"exit {run.returncode} (negative: killed by a signal):\n{run.stderr[-3000:]}"
    assert set(outcomes) == set(bad_cases)
    assert "Check failure stack trace" not in run.stderr and "Traceback" not in run.stderr
    assert after == before                          # no temporary prototxt, no part file, anywhere


def test_bad_weights_from_the_environment_exit_with_the_message(tmp_path):
    """BREAKING_NN_WEIGHTS=README.md: an uncaught ModelError (exit 1), as a user's script sees it."""
    env = dict(os.environ, BREAKING_NN_WEIGHTS=str(REPO / "README.md"), TMPDIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", "import breaking_nn as bnn; bnn.load_googlenet(download=False)"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "breaking_nn.errors.ModelError: " in run.stderr and "README.md is not a Caffe .caffemodel" in run.stderr
    assert "Check failed" not in run.stderr and not list(tmp_path.iterdir())


@pytest.mark.parametrize("case", ["caffemodel is not a protobuf (README.md)",
                                  "legacy V1 caffemodel, a legacy shape that Caffe would not pad to the blob's"])
def test_caffe_alone_aborts_on_what_the_check_rejects(bad_cases, case):
    """The premise: without the check, Caffe kills the process on these files."""
    prototxt, weights, _, _ = bad_cases[case]
    code = "import sys, caffe; caffe.Net(sys.argv[1], caffe.TEST, weights=sys.argv[2])"
    run = subprocess.run([sys.executable, "-c", code, str(prototxt), str(weights)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode < 0 and "Check failure stack trace" in run.stderr


# -- good files ----------------------------------------------------------------------

def test_googlenet_with_generated_weights_passes(generated_googlenet_weights):
    summary = check_model_files(paths.googlenet_prototxt(), generated_googlenet_weights)
    assert (summary.input_blob, summary.input_shape, summary.output_blob, summary.n_classes) == \
        ("data", (1, 3, 224, 224), "prob", 1000)
    assert summary.params["conv1/7x7_s2"] == ((64, 3, 7, 7), (64,))
    assert summary.params["loss3/classifier"] == ((1000, 1024), (1000,))
    assert len(summary.params) == 58 and summary.weights == generated_googlenet_weights


def test_open_nsfw_passes_and_loads(open_nsfw_files):
    prototxt, weights = open_nsfw_files / NSFW_PROTOTXT, open_nsfw_files / NSFW_CAFFEMODEL
    summary = check_model_files(prototxt, weights)
    assert (summary.input_shape, summary.output_blob, summary.n_classes) == ((1, 3, 224, 224), "prob", 2)
    assert summary.params["fc_nsfw"] == ((2, 1024), (2,)) and summary.params["bn_1"] == ((64,), (64,), (1,))
    assert len(summary.params) == 160
    layers = read_caffemodel(weights)                           # the current 'layer' field, with shapes
    assert all(blob.shape is not None and blob.legacy is None for layer in layers for blob in layer.blobs)
    model = bnn.load_model(prototxt, weights, bnn.Labels(["sfw", "nsfw"]))
    probs = model.forward(np.full(model.input_shape, 100.0, np.float32))
    assert probs.shape == (2,) and abs(float(probs.sum()) - 1) < 1e-5


def test_the_trained_tiny_classifier_passes(tiny_model_dir):
    summary = check_model_files(tiny_model_dir / "deploy.prototxt", tiny_model_dir / "tiny.caffemodel")
    assert (summary.input_shape, summary.n_classes) == ((1, 3, 16, 16), 3)
    assert summary.params == {"conv1": ((12, 3, 3, 3), (12,)), "fc": ((3, 768), (3,))}


def test_legacy_v1_caffemodel_is_read_as_caffe_reads_it(tiny_weights, tmp_path):
    prototxt, caffemodel = tiny_weights
    v1 = to_v1(caffemodel, tmp_path / "v1.caffemodel")
    layers = {layer.name: layer for layer in read_caffemodel(v1)}
    assert set(layers) == {"scale", "conv1", "relu1", "pool1", "fc", "prob"}
    assert [(b.shape, b.legacy, b.data) for b in layers["fc"].blobs] == \
        [(None, (1, 1, 3, 768), 3 * 768), (None, (1, 1, 1, 3), 3)]
    assert check_model_files(prototxt, v1).params["fc"] == ((3, 768), (3,))
    labels = bnn.Labels(["a", "b", "c"])
    data = np.random.default_rng(0).uniform(0, 255, (3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(bnn.load_model(prototxt, v1, labels).forward(data),
                                  bnn.load_model(prototxt, caffemodel, labels).forward(data))


def test_untrained_net_needs_no_weights(tiny_weights):
    summary = check_model_files(tiny_weights[0], None)
    assert summary.weights is None and summary.n_classes == 3


def test_caffemodel_parse_is_fast(generated_googlenet_weights):
    """Parsing the 28 MB generated GoogLeNet caffemodel takes well under a second (the upb parser).

    The pure-Python protobuf took ~10 s; this bound fails if that backend comes back.
    """
    import time

    read_caffemodel(generated_googlenet_weights)
    start = time.perf_counter()
    layers = read_caffemodel(generated_googlenet_weights)
    assert time.perf_counter() - start < 1.0
    assert sum(blob.data for layer in layers for blob in layer.blobs) == 6_998_552


def test_protobuf_is_the_native_parser():
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"


@pytest.mark.parametrize("which", ["prototxt", "weights"])
def test_a_device_or_folder_is_not_a_regular_file(which, tmp_path):
    for path in (Path("/dev/zero"), tmp_path):
        args = (path, None) if which == "prototxt" else (paths.googlenet_prototxt(), path)
        with pytest.raises(ModelError, match=f"{path} is not a regular file") as err:
            check_model_files(*args)
        assert "does not exist" not in str(err.value)
    with pytest.raises(ModelError, match="/dev/zero is not a regular file"):
        read_caffemodel("/dev/zero")


def sparse_file(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes, ``head`` then zeros, taking no disk space."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_a_file_over_caffes_2_gib_limit_is_refused_by_its_size(generated_googlenet_weights, tmp_path):
    start = generated_googlenet_weights.read_bytes()[:1 << 16]       # a real caffemodel's first fields
    huge = sparse_file(tmp_path / "huge.caffemodel", 2**31, start)
    with pytest.raises(ModelError, match=r"huge.caffemodel is 2,147,483,648 bytes, more than the 2,147,483,647 "
                                         r"bytes \(2 GiB\) Caffe reads"):
        read_caffemodel(huge)


@pytest.mark.parametrize("head", [b"", b"# a text file\n", b"\x89PNG\r\n\x1a\n"], ids=["zeros", "text", "png"])
def test_a_large_file_that_is_no_caffemodel_is_refused_before_it_is_read_whole(head, tmp_path):
    """2 GiB - 1 bytes (the largest Caffe reads): reading it whole took 9.7 s; its first fields give it away."""
    import time

    big = sparse_file(tmp_path / "big.caffemodel", 2**31 - 1, head)
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"big.caffemodel is not a Caffe .caffemodel \(binary NetParameter\)"):
        read_caffemodel(big)
    assert time.perf_counter() - start < 1.0


def test_check_errors_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match=r"empty.caffemodel has weights for none of the net's layers .* named \(none\)"):
        empty = tmp_path / "empty.caffemodel"
        empty.write_bytes(b"")
        check_model_files(paths.googlenet_prototxt(), empty)



def test_missing_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match=r"weights file \(.caffemodel\) .*absent.caffemodel does not exist"):
        check_model_files(paths.googlenet_prototxt(), tmp_path / "absent.caffemodel")
    with pytest.raises(ModelError, match=r"model definition \(deploy .prototxt\) .*absent.prototxt does not exist"):
        check_model_files(tmp_path / "absent.prototxt", None)
