"""The tutorial notebook, executed by a real kernel (papermill), and the figures command."""
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "breaking-neural-network.ipynb"
PHOTO_NOTEBOOK = REPO / "notebooks" / "your-own-photo.ipynb"
ROBUSTNESS_NOTEBOOK = REPO / "notebooks" / "robustness.ipynb"

pytestmark = pytest.mark.slow


def run_notebook(notebook: Path, executed: Path, *, cwd: Path, parameters: dict) -> tuple[list, str]:
    """Executes ``notebook`` with papermill (a real kernel) into ``executed``; checks that every code cell
    ran and returns ``(the code cells, their printed text)``."""
    import papermill

    papermill.execute_notebook(str(notebook), str(executed), cwd=str(cwd), kernel_name="python3",
                               parameters=parameters, progress_bar=False)
    code = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    return code, "\n".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")


@pytest.mark.parametrize("notebook", [NOTEBOOK, PHOTO_NOTEBOOK, ROBUSTNESS_NOTEBOOK], ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(notebook):
    nb = nbformat.read(notebook, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} have outputs: run `make strip-notebooks` before committing"
    assert "parameters" in nb.cells[1].metadata.get("tags", [])


@pytest.mark.image
def test_notebook_runs_end_to_end_on_generated_weights(tmp_path, cat_image_source):
    code, text = run_notebook(NOTEBOOK, tmp_path / "executed.ipynb", cwd=REPO / "notebooks",
                              parameters={"weights": "generated", "image_source": cat_image_source})
    assert "GENERATED weights" in text and "meaningless" in text
    assert "label: " in text and "certainty: " in text
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 7  # the cat, gradient, one step, original, penguin, evolution, Persian


@pytest.mark.image
def test_photo_notebook_fools_open_nsfw_and_verifies_the_saved_file(tmp_path, open_nsfw_model_file):
    import numpy as np
    from skimage import data

    import breaking_nn as bnn

    photo = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(photo, quality=95)
    out, report = tmp_path / "coffee-nsfw.png", tmp_path / "report.png"
    code, text = run_notebook(PHOTO_NOTEBOOK, tmp_path / "executed.ipynb", cwd=tmp_path,
                              parameters={"photo": str(photo), "target": 1, "model_file": str(open_nsfw_model_file),
                                          "epsilon": 4, "out": str(out), "report": str(report)})
    assert "reached after" in text and "verified: " in text and "NOT verified" not in text
    assert "mode: robust (6 pipelines a step, seed 0)" in text
    assert "file as JPEG 75" in text and "rotate +5" in text and "[geometry]" in text
    fooled, total = map(int, re.search(r"fooled under (\d+) of (\d+) pipelines", text).groups())
    assert total >= 20 and fooled >= total - 1  # the goal plus 95 % of the suite
    assert "L-inf: " in text and "PSNR: " in text and "top 5 after: 1 (not safe for work)" in text
    assert [o for c in code for o in c.outputs if "image/png" in o.get("data", {})], "no report figure drawn"
    # the file the notebook wrote, checked here independently
    model = bnn.load_model(open_nsfw_model_file)
    probs = model.forward(model.preprocess(bnn.load_image(out)))
    assert probs.argmax() == 1 and probs[1] >= 0.9
    original = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    assert np.abs(np.asarray(Image.open(out)).astype(int) - original).max() <= 4
    with Image.open(report) as img:
        assert img.format == "PNG"


def test_robustness_notebook_evaluates_open_nsfw_on_scikit_image_photos(tmp_path, open_nsfw_model_file):
    import pandas as pd

    code, text = run_notebook(ROBUSTNESS_NOTEBOOK, tmp_path / "executed.ipynb", cwd=tmp_path,
                              # as `papermill -p photos "chelsea, coffee"` passes it: a string
                              parameters={"photos": "chelsea, coffee", "model_file": str(open_nsfw_model_file),
                                          "epsilons": "1,2", "max_steps": 2, "out": "results.csv"})
    assert "epsilon  fooled" in text and "minimal epsilon (grey levels): quartiles" in text
    assert [o for c in code for o in c.outputs if "image/png" in o.get("data", {})], "no curve drawn"
    assert [o for c in code for o in c.outputs if "text/html" in o.get("data", {})], "no table shown"
    table = pd.read_csv(tmp_path / "results.csv")
    assert sorted(table["path"]) == ["robustness-photos/chelsea.png", "robustness-photos/coffee.png"]
    assert (table["original_name"] == "safe for work").all() and table["error"].isna().all()
    for e in (1, 2):  # robust: fooled means the model file's pipeline and >= 95 % of the suite
        fooled = table[f"fooled_eps{e}"].astype(bool)
        assert (fooled == (table[f"pipeline_eps{e}"].astype(bool) & (table[f"suite_eps{e}"] >= 0.95))).all()
        assert (table[f"steps_eps{e}"] <= 2).all()


def test_robustness_notebook_names_photos_it_does_not_know(tmp_path, open_nsfw_model_file):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match=r"not scikit-image photos: \['rockets'\]"):
        papermill.execute_notebook(str(ROBUSTNESS_NOTEBOOK), str(tmp_path / "executed.ipynb"), cwd=str(tmp_path),
                                   kernel_name="python3", progress_bar=False,
                                   parameters={"photos": '["coffee", "rockets"]', "model_file": str(open_nsfw_model_file)})
    assert not (tmp_path / "robustness-photos").exists()  # nothing written before the names are checked


def test_figures_command_writes_the_seven_pngs(tmp_path, cat_image_source):
    out = tmp_path / "figures"
    image = ["--image", cat_image_source] if cat_image_source else []
    result = subprocess.run([sys.executable, "-m", "breaking_nn.figures", "--out", str(out), "--weights",
                             "generated", *image], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "GENERATED weights" in result.stdout
    for i in range(1, 8):
        with Image.open(out / f"nn-{i}.png") as img:
            img.verify()
        with Image.open(out / f"nn-{i}.png") as img:
            assert img.format == "PNG"
            width, height = img.size
            assert 200 <= width <= 1000 and 200 <= height <= 600, (i, img.size)
            assert len(set(img.convert("L").getdata())) > 20  # a picture, not a blank canvas
    predictions = (out / "predictions.txt").read_text()
    assert "## After trick(king penguin, n_steps=30)\nlabel: " in predictions
    assert predictions.startswith("WARNING: These are GENERATED weights")  # the file says so too
    assert not list(out.glob(".*.part")), "a temporary file was left behind"


def test_figures_command_without_weights_says_how_to_get_them(tmp_path):
    env = {"BREAKING_NN_WEIGHTS": str(tmp_path / "none.caffemodel"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "breaking_nn.figures", "--out", str(tmp_path / "f"),
                             "--weights", str(tmp_path / "none.caffemodel")],
                            capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 2
    assert "error: weights file" in result.stderr and "make weights" in result.stderr
    assert "WEIGHTS=generated" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "f").exists()
