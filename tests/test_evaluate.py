"""breaking-nn evaluate: rows, minimal epsilon, the resumable CSV, the summary and curve, the command line.

On the tiny trained classifier (16x16 input, milliseconds per step); open_nsfw runs in the notebook's test
(test_notebook.py), the Dask cluster in test_cluster.py.
"""
from __future__ import annotations

import io
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.transform import resize

import breaking_nn as bnn
from breaking_nn.errors import EvaluateError
from breaking_nn.evaluate import (TIMING_COLUMNS, columns, evaluate, minimal_epsilon_quartiles, plot_success_curve,
                                  success_rates, summarize)
from breaking_nn.metrics import perturbation_metrics
from breaking_nn.result_table import sidecar_path
from breaking_nn.suite import check_suite

from conftest import sigint_as_in_a_terminal

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "breaking_nn"]
EPSILONS = (1, 2, 4, 8)

pytestmark = pytest.mark.slow


def write_pattern_photos(folder: Path, n: int, *, seed: int = 3, size=(48, 64)) -> list[Path]:
    """``n`` PNG photos of the tiny classifier's patterns (several classes), larger than its input."""
    from tiny_classifier import make_images

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = make_images(n, np.random.default_rng(seed))
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"photo{i:02d}-class{label}.png"
        Image.fromarray(np.rint(resize(image, size, order=1) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Six pattern photos and one text file that is no image."""
    folder = tmp_path_factory.mktemp("photos")
    write_pattern_photos(folder, 6)
    (folder / "notes.txt").write_text("these are my photos\n")
    return folder


@pytest.fixture(scope="module")
def exact_table(tiny_model_file, folder) -> pd.DataFrame:
    return evaluate(tiny_model_file, folder, "pattern A", robust=False, epsilons=EPSILONS)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by path, timing columns left out, as read back from a CSV."""
    frame = frame.drop(columns=list(TIMING_COLUMNS)).sort_values("path").reset_index(drop=True)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return pd.read_csv(io.StringIO(buffer.getvalue()))


def assert_same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(comparable(a), comparable(b), check_exact=False, rtol=0, atol=1e-6)


def exact_attack(model, photo: np.ndarray, target: int, epsilon: int, max_steps: int = 50):
    """(adversarial, top class after a PNG round trip): an exact attack stopping once just fooled."""
    result = bnn.attack_photo(model, photo, target, epsilon=epsilon, max_steps=max_steps, until=None, robust=False)
    buffer = io.BytesIO()
    Image.fromarray(result.adversarial).save(buffer, format="PNG")
    probs = model.forward(model.preprocess(bnn.load_image(np.asarray(Image.open(buffer)))))
    return result.adversarial, int(np.argmax(probs))


def test_one_row_per_file_and_minimal_epsilon_is_the_boundary(exact_table, tiny_model, folder):
    table = exact_table
    assert list(table.columns) == columns(EPSILONS)
    assert list(table["path"]) == sorted(str(p) for p in folder.iterdir())
    bad = table[table["path"].str.endswith("notes.txt")].iloc[0]
    assert "is not an image Pillow can read" in bad["error"] and "0x" not in bad["error"]
    assert pd.isna(bad["min_epsilon"]) and pd.isna(bad["width"])
    readable = table[table["error"].isna()]
    assert len(readable) == 6
    assert readable["min_epsilon"].notna().any() and (readable["min_epsilon"] > 1).any(), "nothing to bisect"
    for row in readable.itertuples():
        photo = np.asarray(Image.open(row.path).convert("RGB"))
        probs = tiny_model.forward(tiny_model.preprocess(bnn.load_image(row.path)))
        assert row.original_class == int(np.argmax(probs)) and row.p_original == pytest.approx(probs.max(), abs=1e-6)
        assert (row.width, row.height) == (photo.shape[1], photo.shape[0])
        for e in EPSILONS:  # the per-epsilon columns, checked by attacking again
            _, top = exact_attack(tiny_model, photo, 0, e)
            assert getattr(row, f"fooled_eps{e}") == (top == 0), (row.path, e)
        if math.isnan(row.min_epsilon):
            assert not any(getattr(row, f"fooled_eps{e}") for e in EPSILONS)
            continue
        m = int(row.min_epsilon)
        adversarial, top = exact_attack(tiny_model, photo, 0, m)
        assert top == 0, f"{row.path} is not fooled at its minimal epsilon {m}"
        if m > 1:
            assert exact_attack(tiny_model, photo, 0, m - 1)[1] != 0, f"{row.path} is fooled below {m}"
        metrics = perturbation_metrics(photo, adversarial)
        assert metrics.linf <= m
        assert row.l2 == pytest.approx(metrics.l2) and row.ssim == pytest.approx(metrics.ssim)
        suite = check_suite(tiny_model, adversarial, target=0, original_class=row.original_class)
        missed = row.suite_missed if isinstance(row.suite_missed, str) else ""  # the members not fooled, engines named
        assert missed == "; ".join(f"{r.name} ({r.engine})" for r in suite.rows if not r.fooled)
        assert row.suite_fraction == pytest.approx(suite.fraction)
        assert row.attacks >= len(EPSILONS) and row.attacks <= len(EPSILONS) + 3  # bisection within (e/2, e]


def test_csv_is_written_per_photo_resumes_and_refuses_other_arguments(exact_table, tiny_model_file, folder,
                                                                      tmp_path):
    out = tmp_path / "results.csv"
    seen: list[str] = []

    def interrupt_after_two(row):
        seen.append(row["path"])
        assert len(pd.read_csv(out)) == len(seen)  # each row is on disk before the next photo starts
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny_model_file, folder, "pattern A", robust=False, out=out, on_row=interrupt_after_two)
    assert len(pd.read_csv(out)) == 2 and not list(tmp_path.glob(".*.part"))
    arguments = json.loads(sidecar_path(out).read_text())["arguments"]
    assert arguments["epsilons"] == list(EPSILONS) and arguments["target"] == 0 and arguments["robust"] is False

    resumed: list[str] = []
    table = evaluate(tiny_model_file, folder, "pattern A", robust=False, out=out, on_row=lambda r: resumed.append(r["path"]))
    assert sorted(resumed) == sorted(set(table["path"]) - set(seen))  # only the photos not done
    assert_same_results(pd.read_csv(out), exact_table)
    assert_same_results(table, exact_table)

    again: list[str] = []
    evaluate(tiny_model_file, folder, "pattern A", robust=False, out=out, on_row=lambda r: again.append(r["path"]))
    assert again == []

    before = out.read_bytes()
    with pytest.raises(EvaluateError, match=r"other arguments \(epsilons: was \[1, 2, 4, 8\], now \[1, 3\]\).*--force"):
        evaluate(tiny_model_file, folder, "pattern A", robust=False, epsilons="1,3", out=out)
    assert out.read_bytes() == before
    forced = evaluate(tiny_model_file, folder, "pattern A", robust=False, epsilons="1,3", out=out, force=True)
    assert "fooled_eps3" in pd.read_csv(out).columns and len(forced) == len(exact_table)

    stranger = tmp_path / "stranger.csv"
    stranger.write_text("a,b\n1,2\n")
    with pytest.raises(EvaluateError, match="not written by breaking-nn evaluate"):
        evaluate(tiny_model_file, folder, "pattern A", robust=False, out=stranger)
    assert stranger.read_text() == "a,b\n1,2\n"


def test_summary_and_curve_from_a_known_table(tmp_path):
    rows = []
    for i, (fooled1, fooled2, minimal) in enumerate([(True, True, 1), (False, True, 2), (False, False, None),
                                                     (False, True, 2)]):
        rows.append({"path": f"p{i}.png", "fooled_eps1": fooled1, "pipeline_eps1": fooled1, "suite_eps1": 0.5,
                     "fooled_eps2": fooled2, "pipeline_eps2": True, "suite_eps2": 1.0 if fooled2 else 0.9,
                     "min_epsilon": minimal, "error": None})
    rows.append({"path": "junk.txt", "error": "not an image"})
    table = pd.DataFrame(rows)
    rates = success_rates(table)
    assert list(rates["epsilon"]) == [1, 2] and list(rates["photos"]) == [4, 4] and list(rates["fooled"]) == [1, 3]
    assert list(rates["pipeline_rate"]) == [0.25, 1.0] and list(rates["suite_rate"]) == [0.0, 0.75]
    q = minimal_epsilon_quartiles(table)
    assert (q["q25"], q["median"], q["q75"], q["not_fooled"]) == (1, 2, 2, 1)
    text = summarize(table)
    assert "      1  1/4" in text and "      2  3/4" in text and "75%" in text
    assert "quartiles 1 / median 2 / 2 over 4 photos; 1 not fooled at 2" in text and "1 file(s) could not be read" in text
    ax = plot_success_curve(table, tmp_path / "curve.png")
    assert "epsilon" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert [line.get_label() for line in ax.get_lines()] == ["model file's pipeline",
                                                             "real-world suite (>= 95 % fooled)"]
    assert list(ax.get_lines()[1].get_ydata()) == [0.0, 75.0]
    with Image.open(tmp_path / "curve.png") as img:
        assert img.format == "PNG" and img.size[0] > 300


def run_cli(*args, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_command_line_success_path_with_plot_and_kept_photos(tiny_model_file, tiny_model, folder, exact_table,
                                                             tmp_path):
    out, plot, keep = tmp_path / "results.csv", tmp_path / "curve.png", tmp_path / "kept"
    result = run_cli("evaluate", folder, "--target", "pattern A", "--out", out, "--model", tiny_model_file, "--exact",
                     "--plot", plot, "--keep", keep)
    assert result.returncode == 0, result.stderr
    assert "epsilon  fooled" in result.stdout and "minimal epsilon (grey levels): quartiles" in result.stdout
    assert f"results: {out} (7 rows)" in result.stdout and "1 file(s) could not be read" in result.stdout
    assert_same_results(pd.read_csv(out), exact_table)
    with Image.open(plot) as img:
        assert img.format == "PNG"
    table = pd.read_csv(out)
    fooled = table[table["fooled_eps2"] == True].iloc[0]  # noqa: E712 - a column of True/False/NaN
    kept = keep / f"{Path(fooled['path']).name}.eps2.png"
    original = np.asarray(Image.open(fooled["path"]).convert("RGB")).astype(int)
    adversarial = np.asarray(Image.open(kept)).astype(int)
    assert np.abs(adversarial - original).max() <= 2
    assert int(np.argmax(tiny_model.forward(tiny_model.preprocess(bnn.load_image(kept))))) == 0
    assert len(list(keep.glob("*.png"))) == 6 * len(EPSILONS) + table["min_epsilon"].apply(
        lambda m: not pd.isna(m) and int(m) not in EPSILONS).sum()


def model_without_weights(folder: Path, tiny_model_file: Path) -> Path:
    path = folder / "no-weights.toml"
    path.write_text(tiny_model_file.read_text().replace('weights = "tiny.caffemodel"', 'weights = "gone.caffemodel"')
                    .replace('"deploy.prototxt"', f'"{tiny_model_file.parent / "deploy.prototxt"}"')
                    .replace('"labels.txt"', f'"{tiny_model_file.parent / "labels.txt"}"'))
    return path


BAD_INPUTS = {
    # name: (folder kind, extra arguments, what the one line says)
    "empty folder": ("empty", [], "is empty"),
    "folder of non-images": ("junk", [], "no readable image in"),
    "epsilon 0": ("photos", ["--epsilons", "0,1"], "from 1 to 255, not '0'"),
    "negative epsilon": ("photos", ["--epsilons", "2,-1"], "from 1 to 255, not '-1'"),
    "epsilon text": ("photos", ["--epsilons", "1,two"], "not 'two'"),
    "unreachable scheduler": ("photos", ["--scheduler", "tcp://127.0.0.1:{port}"], "cannot reach the Dask scheduler"),
    "model without weights": ("photos", ["--no-weights"], "gone.caffemodel does not exist"),
    "both target and untargeted": ("photos", ["--untargeted"], "not both"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_csv(name, tiny_model_file, folder, tmp_path):
    import socket

    kind, extra, expected = BAD_INPUTS[name]
    source = folder
    if kind == "empty":
        source = tmp_path / "empty"
        source.mkdir()
    elif kind == "junk":
        source = tmp_path / "junk"
        source.mkdir()
        (source / "a.jpg").write_text("not a jpeg")
        (source / "b.txt").write_text("notes")
    model = tiny_model_file
    args = []
    for option in extra:
        if option == "--no-weights":
            model = model_without_weights(tmp_path, tiny_model_file)
        elif "{port}" in option:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            args.append(option.format(port=port))
        else:
            args.append(option)
    out = tmp_path / "out" / "results.csv"
    out.parent.mkdir()
    result = run_cli("evaluate", source, "--target", "0", "--out", out, "--model", model, "--exact", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("breaking-nn: error: ") and expected in lines[0], result.stderr
    assert list(out.parent.iterdir()) == [], "something was written"


def test_an_unreachable_scheduler_is_an_error_within_10_s():
    import socket

    from conftest import skip_unless_ci

    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        skip_unless_ci(f"Dask is not installed (pip install 'breaking-nn[cluster]'): {exc}")
    from breaking_nn.cluster import connect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(EvaluateError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 5 s"):
        connect(f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 10


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_keeps_the_finished_rows_and_the_same_command_resumes(tiny_model_file, tmp_path):
    """Ctrl-C mid-run, then the same command. With seed 11, the first two photos are fooled within
    a few steps and the third runs all 20,000 (half a minute), so the interrupt lands in the middle
    of a photo however slowly this test reacts on a loaded machine (with 150 steps, the last six
    photos took 1.5 s in all, and a busy machine could let the run finish first). Before the
    resume, the photos not yet done are replaced by a copy of the first, which is fooled at once."""
    folder = tmp_path / "many"
    photos = write_pattern_photos(folder, 8, seed=11, size=(96, 128))
    out = tmp_path / "results.csv"
    args = ["evaluate", folder, "--target", "0", "--out", out, "--model", tiny_model_file, "--exact",
            "--epsilons", "1", "--max-steps", "20000"]
    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + 300
    while not out.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, (stdout, stderr)
    assert stderr.strip().splitlines()[-1] == (f"breaking-nn: interrupted; the finished rows are in {out}; run the "
                                               "same command to resume")
    first = pd.read_csv(out)
    assert 1 <= len(first) <= 2 and not list(tmp_path.glob(".*.part"))
    assert set(first["path"]) <= {str(p) for p in photos}
    quick = sorted(photos)[0].read_bytes()
    for photo in photos:
        if str(photo) not in set(first["path"]):
            photo.write_bytes(quick)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    final = pd.read_csv(out)
    assert len(final) == 8
    kept = final[final["path"].isin(first["path"])].drop(columns="seconds").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first.drop(columns="seconds"), check_dtype=False)


def test_batch_gives_the_same_rows_as_one_photo_at_a_time(exact_table, tiny_model_file, folder):
    batched = evaluate(tiny_model_file, folder, "pattern A", robust=False, epsilons=EPSILONS, batch=4)
    assert_same_results(batched, exact_table)


@pytest.mark.parametrize("untargeted", [False, True], ids=["targeted", "untargeted"])
def test_batched_robust_attack_equals_attack_photo(tiny_model, folder, untargeted):
    from breaking_nn.batch_attack import attack_photos

    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))[:3]]
    target = None if untargeted else 0
    epsilons, seeds = [2, 8, 4], [3, 1, 4]
    batched = attack_photos(tiny_model, photos, target, epsilons=epsilons, seeds=seeds, max_steps=12,
                            untargeted=untargeted, robust=True, samples=3)
    for photo, e, seed, got in zip(photos, epsilons, seeds, batched):
        alone = bnn.attack_photo(tiny_model, photo, target, epsilon=e, max_steps=12, until=None,
                                 untargeted=untargeted, robust=True, samples=3, seed=seed)
        assert np.array_equal(got.adversarial, alone.adversarial) and got.n_updates == alone.n_updates
        assert got.suite.fraction == alone.suite.fraction and got.original_class == alone.original_class
