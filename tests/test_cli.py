"""The breaking-nn command line, through real subprocesses: the success path and every bad input."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.transform import resize

from conftest import sigint_as_in_a_terminal

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "breaking_nn"]

pytestmark = pytest.mark.slow


def run(*args, cwd=None, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd or REPO, timeout=timeout)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 52x68 PNG of a tiny-classifier pattern (class 2), larger than its 16x16 input."""
    from tiny_classifier import make_images

    images, labels = make_images(1, np.random.default_rng(7))
    assert labels[0] == 2
    path = tmp_path_factory.mktemp("photo") / "pattern.png"
    Image.fromarray(np.rint(resize(images[0], (52, 68), order=1) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.image
def test_attack_success_path_writes_a_verified_photo_and_a_report(tiny_model_file, photo, tmp_path):
    out, report = tmp_path / "fooled.png", tmp_path / "report.png"
    result = run("attack", photo, "--target", "pattern A", "--out", out, "--epsilon", 8, "--report", report,
                 "--model", tiny_model_file)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("FOOLED: goal p(0 pattern A) >= 0.9 reached after ")
    assert "verified:" in result.stdout and "Traceback" not in result.stderr
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (68, 52)
        adv = np.asarray(img)
    assert np.abs(adv.astype(int) - np.asarray(Image.open(photo)).astype(int)).max() <= 8
    with Image.open(report) as img:
        assert img.format == "PNG"
    predicted = run("predict", out, "-k", 2, "--model", tiny_model_file)
    assert predicted.returncode == 0 and predicted.stdout.startswith("label: 000 (pattern A), certainty: ")
    assert len(predicted.stdout.strip().splitlines()) == 2


def test_attack_json_is_one_object(tiny_model_file, photo, tmp_path):
    out = tmp_path / "fooled.webp"
    result = run("attack", photo, "--target", "1", "--out", out, "--epsilon", 8, "--json", "--model", tiny_model_file)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "robust" and report["samples"] == 6 and report["seed"] == 0 and report["fooled"]
    suite = report["saved"]["suite"]
    assert suite["total"] >= 20 and suite["fooled"] >= suite["total"] - 1 and suite["passes"] and suite["complete"]
    assert [row["pipeline"] for row in suite["pipelines"]][0] == "model"
    assert all(row["fooled"] == (row["top_class"] == 1) for row in suite["pipelines"])
    engines = {row["pipeline"]: row["engine"] for row in suite["pipelines"]}
    assert engines["opencv dnn squash"] == "opencv" and engines["rotate -5"] == "caffe"
    assert list(suite["groups"]) == ["resampling", "compression", "geometry", "engine"]
    assert sum(g["total"] for g in suite["groups"].values()) == suite["total"]
    assert report["reached"] and report["target"] == 1 and report["exit_code"] == 0
    assert report["saved"]["ok"] and report["saved"]["format"] == "WEBP" and report["saved"]["lossless"]
    assert report["metrics"]["linf"] <= 8 and report["top5_after"][0][0] == 1
    assert report["size"] == [52, 68] and out.is_file()


def test_exact_mode_and_the_suite_table(tiny_model_file, photo, tmp_path):
    out = tmp_path / "exact.png"
    result = run("attack", photo, "--target", "pattern A", "--out", out, "--epsilon", 8, "--exact",
                 "--model", tiny_model_file)
    assert result.returncode == 0, result.stderr
    assert "mode: exact (the model file's pipeline)" in result.stdout
    assert "file at half size" in result.stdout and "pillow lanczos" in result.stdout
    assert re.search(r"fooled under \d+ of (2\d|3\d) pipelines", result.stdout)
    assert all(f"[{group}]" in result.stdout for group in ("resampling", "compression", "geometry", "engine"))
    assert "rotate +5" in result.stdout and "opencv dnn squash" in result.stdout
    help_text = run("attack", "--help").stdout
    assert "--exact" in help_text and "95 %" in help_text and "--samples" in help_text and "--seed" in help_text


def test_budget_running_out_exits_3_with_the_file_written(tiny_model_file, photo, tmp_path):
    out = tmp_path / "partway.png"
    result = run("attack", photo, "--target", 0, "--out", out, "--epsilon", 2, "--max-steps", 2,
                 "--model", tiny_model_file)
    assert result.returncode == 3, result.stderr
    assert "NOT FOOLED" in result.stdout and "NOT reached (budget ran out) after 2 steps" in result.stdout
    assert "p(target) 0." in result.stdout and out.is_file()
    assert "but the attack did not reach the goal" in result.stdout  # not blamed on the file


def test_untargeted_through_the_command_line(tiny_model_file, photo, tmp_path):
    result = run("attack", photo, "--untargeted", "--until", 0.5, "--out", tmp_path / "u.png", "--epsilon", 8,
                 "--json", "--model", tiny_model_file)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["original_class"] == 2 and report["top5_after"][0][0] != 2 and report["target"] is None


def test_help_has_examples():
    for args in (["--help"], ["attack", "--help"]):
        result = run(*args)
        assert result.returncode == 0 and result.stdout.count("examples:") == 1 and "--target" in result.stdout
    top = run("--help").stdout
    assert all(f"  breaking-nn {command} " in top for command in ("attack", "predict", "evaluate"))
    assert "95 % of the suite" in run("attack", "--help").stdout  # not argparse's "%%"


def bad_model_file(folder: Path) -> Path:
    path = folder / "bad.toml"
    path.write_text('name = "bad"\nprototxt = "nowhere.prototxt"\n[preprocess]\nchannel_order = "BGR"\n')
    return path


BAD_INPUTS = {
    # name: (arguments after PHOTO OUT, how PHOTO is given, what stderr says)
    "missing photo": ([], "missing", "does not exist"),
    "unreadable photo": ([], "text", "is not an image Pillow can read (no known image format)"),
    "unknown target": (["--target", "pattern Z"], None, "pattern"),
    "epsilon zero": (["--epsilon", "0"], None, "epsilon must be from 1 to 255"),
    "epsilon over 255": (["--epsilon", "300"], None, "epsilon must be from 1 to 255"),
    "epsilon not a number": (["--epsilon", "four"], None, "--epsilon must be a number, not 'four'"),
    "max-steps zero": (["--max-steps", "0"], None, "max_steps must be a whole number >= 1"),
    "until zero": (["--until", "0"], None, "until must be a probability strictly between 0 and 1"),
    "until one and a half": (["--until", "1.5"], None, "until must be a probability strictly between 0 and 1"),
    "output folder missing": (["--out-folder-missing"], None, "does not exist: create"),
    "output exists": (["--out-exists"], None, "already exists"),
    "output extension": (["--out-ext"], None, "cannot tell the image format"),
    "untargeted and target": (["--untargeted"], None, "not both"),
    "model file fails to load": (["--bad-model"], None, "nowhere.prototxt"),
    "samples zero": (["--samples", "0"], None, "samples must be a whole number of pipelines per step >= 1"),
    "samples not a number": (["--samples", "six"], None, "--samples must be a whole number, not 'six'"),
    "exact with samples": (["--exact", "--samples", "3"], None, "--samples and --seed belong to the robust mode"),
    "exact with seed": (["--exact", "--seed", "1"], None, "--samples and --seed belong to the robust mode"),
    "photo of 2x2 pixels": ([], "2x2", "the photo is 2x2 pixels: too small to attack"),
    "ftp URL": ([], "ftp", "only http:// and https:// URLs can be fetched, not ftp://"),
}


@pytest.fixture(scope="module")
def bad_runs(tiny_model_file, photo, tmp_path_factory):
    """Every bad input, each in its own empty folder, run at once (they are independent processes)."""
    runs = {}
    for name, (extra, photo_kind, _) in BAD_INPUTS.items():
        folder = tmp_path_factory.mktemp("bad")
        source = photo
        if photo_kind == "missing":
            source = folder / "no-such-photo.jpg"
        elif photo_kind == "text":
            source = folder / "notes.jpg"
            source.write_text("this is not a photo\n")
        elif photo_kind == "2x2":
            source = folder / "dot.png"
            Image.new("RGB", (2, 2), (10, 20, 30)).save(source)
        elif photo_kind == "ftp":
            source = "ftp://example.org/cat.jpg"
        out = folder / "out.png"
        args = ["attack", source, "--model", tiny_model_file, "--epsilon", "8"]
        for option in extra:
            if option == "--out-folder-missing":
                out = folder / "missing" / "out.png"
            elif option == "--out-exists":
                out.write_bytes(b"precious")
            elif option == "--out-ext":
                out = folder / "out.xyz"
            elif option == "--bad-model":
                args[3] = bad_model_file(folder)
            else:
                args.append(option)
        if "--target" not in extra:
            args += ["--target", "pattern A"]
        args += ["--out", out]
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=REPO)
        runs[name] = (process, folder, before)
    results = {}
    for name, (process, folder, before) in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        after = {p.name: p.read_bytes() for p in folder.iterdir()}
        results[name] = (process.returncode, stdout, stderr, before, after)
    return results


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_file(bad_runs, name):
    code, stdout, stderr, before, after = bad_runs[name]
    expected = BAD_INPUTS[name][2]
    assert code == 2, (name, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("breaking-nn: error: "), stderr
    assert expected in lines[0], (expected, lines[0])
    assert "Traceback" not in stderr
    assert after == before, f"{name}: files changed: {sorted(set(after) ^ set(before))}"


def test_unknown_target_suggests_names(bad_runs):
    stderr = bad_runs["unknown target"][2]
    assert "unknown label name 'pattern Z'; did you mean" in stderr and "'pattern a'" in stderr


@pytest.mark.image
def test_predict_bad_input(tmp_path):
    result = run("predict", tmp_path / "none.png", "-k", 0)
    assert result.returncode == 2 and "-k must be a whole number >= 1" in result.stderr


def predictions(stdout: str) -> list[tuple[str, float]]:
    """predict's lines "label: 000 (safe for work), certainty: 98.77%" -> [("000 (safe for work)", 98.77), ...]."""
    found = re.findall(r"^label: (\d+ \(.*\)), certainty: ([\d.]+)%$", stdout, flags=re.M)
    return [(label, float(certainty)) for label, certainty in found]


def test_predict_on_opencvs_engine_names_it_and_agrees_with_caffe(open_nsfw_model_file, tmp_path):
    from skimage import data

    photo = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(photo, quality=95)
    on_caffe = run("predict", photo, "-k", 2, "--model", open_nsfw_model_file)
    on_opencv = run("predict", photo, "-k", 2, "--model", open_nsfw_model_file, "--engine", "opencv")
    assert on_caffe.returncode == 0 and on_opencv.returncode == 0, (on_caffe.stderr, on_opencv.stderr)
    assert re.match(r"engine: OpenCV's dnn engine \(cv2 4\.11\.\d+, CPU, \d+ threads\)\n", on_opencv.stdout)
    assert "engine" not in on_caffe.stdout  # Caffe's output as it always was
    caffe, opencv = predictions(on_caffe.stdout), predictions(on_opencv.stdout)
    assert [label for label, _ in opencv] == [label for label, _ in caffe] == ["000 (safe for work)",
                                                                             "001 (not safe for work)"]
    for (_, a), (_, b) in zip(caffe, opencv):
        assert abs(a - b) <= 0.01  # percent, printed to 2 decimals; the engines agree far closer (test_opencv_engine)


def test_predict_help_names_the_engines():
    result = run("predict", "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0 and "--engine {caffe,opencv}" in text
    assert "OpenCV's dnn engine (cv2.dnn.readNetFromCaffe: CPU only" in text and "--engine opencv" in text


@pytest.fixture(scope="module")
def engine_model_files(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Model files of the trained tiny net: its own, one with a layer OpenCV lacks, one with a layer Caffe lacks."""
    from tiny_classifier import CAFFE_LACKS, OPENCV_LACKS, write_deploy

    folder = tmp_path_factory.mktemp("engines")
    files = {}
    for name, edit in [("plain", None), ("threshold", OPENCV_LACKS), ("mish", CAFFE_LACKS)]:
        write_deploy(folder / f"{name}.prototxt", edit)
        files[name] = folder / f"{name}.toml"
        files[name].write_text(f'name = "{name}"\nprototxt = "{name}.prototxt"\n'
                               f'weights = "{tiny_model_dir / "tiny.caffemodel"}"\n'
                               f'labels_file = "{tiny_model_dir / "labels.txt"}"\n\n'
                               '[preprocess]\nchannel_order = "BGR"\n')
    return files


@pytest.mark.parametrize("model, options, message", [
    ("plain", ["--engine", "opencv", "--device", "gpu"],
     "OpenCV's dnn engine runs on the CPU here (opencv-python-headless has no CUDA): drop --device gpu"),
    ("plain", ["--engine", "tensorrt"], "argument --engine: invalid choice: 'tensorrt' (choose from 'caffe', 'opencv')"),
    ("threshold", ["--engine", "opencv"], "OpenCV's dnn engine (cv2 4.11.0) cannot run "),
    ("mish", ["--engine", "opencv"], "Unknown layer type: Mish"),
], ids=["opencv on gpu", "unknown engine", "a layer OpenCV lacks", "a layer Caffe lacks"])
def test_predict_engine_errors_are_one_line_exit_2(engine_model_files, photo, model, options, message):
    result = run("predict", photo, "--model", engine_model_files[model], *options)
    assert result.returncode == 2 and result.stdout == "", (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    if model == "threshold":  # the engine is named, and the way out: Caffe runs these very files
        assert 'layer "thr" of type "Threshold"' in result.stderr and "predict with --engine caffe" in result.stderr
        works = run("predict", photo, "--model", engine_model_files[model], "--engine", "caffe")
        assert works.returncode == 0 and len(predictions(works.stdout)) == 3, works.stderr
    if model == "mish":  # Caffe's error (the model loads on Caffe first), saying why Caffe is involved
        assert "Caffe cannot set this net up at layer 'relu1'" in result.stderr
        assert "--engine opencv loads the model on Caffe first" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_leaves_no_file(open_nsfw_model_file, tmp_path):
    from skimage import data

    source = tmp_path / "rocket.png"
    Image.fromarray(data.rocket()).save(source)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # a goal it cannot reach with 1 grey level, so it is still working when interrupted
    process = subprocess.Popen([*CLI, "attack", str(source), "--target", "1", "--until", "0.999999", "--epsilon", "1",
                                "--max-steps", "500", "--out", str(out_dir / "x.png"), "--report",
                                str(out_dir / "r.png"), "--model", str(open_nsfw_model_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                               preexec_fn=sigint_as_in_a_terminal)
    # Interrupt once it is at work: Caffe loaded (so past the interpreter's start-up, however loaded
    # this machine is), then a few seconds into the model and the attack.
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 180
    while "libcaffe" not in maps.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    time.sleep(4)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, (stdout, stderr)
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(out_dir.iterdir()) == []
