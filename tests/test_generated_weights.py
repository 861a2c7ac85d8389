"""load_googlenet("generated") and load_model(file, weights="generated"): generated weights inside the library."""
import gc
import warnings
from pathlib import Path

import numpy as np
import pytest

import breaking_nn as bnn


@pytest.mark.slow
def test_load_googlenet_generated_warns_and_needs_no_download(monkeypatch, tmp_path, tiny_model_file):
    monkeypatch.setenv("BREAKING_NN_WEIGHTS", str(tmp_path / "absent.caffemodel"))  # nothing to find or fetch
    with pytest.warns(bnn.GeneratedWeightsWarning, match="GENERATED weights.*meaningless") as record:
        model = bnn.load_googlenet("generated")
    assert record[0].filename == __file__  # the warning points at the caller's line
    assert model.n_classes == 1000 and model.input_shape == (3, 224, 224)
    probs = model.forward(model.preprocess(bnn.default_image()))
    assert probs.shape == (1000,) and abs(float(probs.sum()) - 1) < 1e-4
    assert not (tmp_path / "absent.caffemodel").exists()
    assert bnn.current_model() is model
    # the generated caffemodel stays readable while the model lives (OpenCV's engine reads the file) ...
    # (this model's own folder, not a listing of the shared temporary folder: other processes use it too)
    folder, weights = Path(model._generated_folder.name), model.model_files[1]
    assert weights.parent == folder and weights.stat().st_size > 20_000_000
    del model, record
    bnn.load_model(tiny_model_file)  # another current model: nothing holds the generated one now
    gc.collect()
    assert not folder.exists()  # ... and is gone with it


@pytest.mark.slow
def test_load_model_generated_replaces_the_model_files_weights(tiny_model_file):
    trained = bnn.load_model(tiny_model_file)
    with pytest.warns(bnn.GeneratedWeightsWarning):
        generated = bnn.load_model(tiny_model_file, weights="generated")
    assert generated.name == "tiny" and generated.n_classes == 3
    data = trained.preprocess(bnn.default_image())
    assert not np.allclose(trained.forward(data), generated.forward(data))
    with pytest.warns(bnn.GeneratedWeightsWarning):
        again = bnn.load_model(tiny_model_file, weights="generated")
    np.testing.assert_array_equal(again.forward(data), generated.forward(data))  # seeded: same weights


def test_a_path_named_otherwise_is_still_a_path(tmp_path):
    with pytest.raises(bnn.WeightsError, match="generated.caffemodel does not exist"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            bnn.load_googlenet(tmp_path / "generated.caffemodel")
