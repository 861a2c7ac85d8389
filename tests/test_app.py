"""bnn.app() driven from Python (no browser): the same library calls as the CLI, Stop, one-line errors."""
import datetime
import html
import io
import time

import numpy as np
import pytest
from PIL import Image

import breaking_nn as bnn


def upload(app, array: np.ndarray, name: str) -> None:
    """What the browser's FileUpload sends: the file's bytes and facts."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    data = out.getvalue()
    app.upload.value = ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
                         "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


@pytest.fixture
def tiny_photo():
    """(52x68 photo of a tiny-classifier pattern, its class), as the CLI's tests make it."""
    from skimage.transform import resize
    from tiny_classifier import make_images

    images, labels = make_images(1, np.random.default_rng(7))
    return np.rint(resize(images[0], (52, 68), order=1) * 255).astype(np.uint8), int(labels[0])


@pytest.mark.slow
def test_run_gives_the_verified_file_for_download(tiny_model_file, tiny_photo):
    widget = bnn.app(models=[tiny_model_file], model=tiny_model_file)
    app = widget.app
    assert app.model.value.startswith("tiny") and list(app.target.options) == ["untargeted", "pattern A", "pattern B",
                                                                               "pattern C"]
    photo, label = tiny_photo
    target = (label + 1) % 3
    upload(app, photo, "my photo.png")
    assert "my photo.png" in app.photo_line.value and "68x52" in app.photo_line.value
    app.target.value, app.epsilon.value = f"pattern {'ABC'[target]}", 8
    app.run_button.click()
    app.wait(120)
    assert not app.error.value, app.error.value
    assert app.result.target == target and app.result.fooled and app.result.robust, app.result.summary()
    assert app.progress.value == app.result.n_updates
    assert app.chart.value[:4] == b"\x89PNG" and len(app.pictures.children) == 3
    name = f"my-photo-pattern-{'abc'[target]}.png"
    assert list(app.downloads) == [name, name.replace(".png", "-report.png")]
    assert "verified: " + name in app.summary.value and name in app.download.value
    saved = np.asarray(Image.open(io.BytesIO(app.downloads[name])))
    model = bnn.load_model(tiny_model_file)
    probs = model.forward(model.preprocess(bnn.load_image(saved)))
    assert int(np.argmax(probs)) == target and probs[target] >= 0.9
    assert np.abs(saved.astype(int) - photo.astype(int)).max() <= 8
    assert not app.running and not app.run_button.disabled and app.stop_button.disabled


@pytest.mark.slow
# The app says it beside the weights choice (asserted below); the worker thread's Python warning is expected.
@pytest.mark.filterwarnings("ignore::breaking_nn.GeneratedWeightsWarning")
def test_stop_ends_the_run_between_steps(googlenet, tmp_path):
    """GoogLeNet (generated weights: each step takes a while) stopped after its first steps."""
    app = bnn.app(weights="generated").app
    assert app.model.value.startswith("GoogLeNet") and len(app.target.options) == 1001
    assert "GENERATED weights" in app.weights_note.value and "meaningless" in app.weights_note.value
    app.example.value = "Chelsea the cat (scikit-image)"
    app.target.value, app.max_steps.value, app.mode.value = "king penguin", 1000, "exact"
    app.until.value = 0.99
    app.run_button.click()
    deadline = time.monotonic() + 300
    while app.progress.value < 2 and app.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.running and not app.stop_button.disabled
    inputs = [app.example, app.upload, app.url, app.model, app.weights, app.target, app.epsilon, app.max_steps,
              app.until, app.just_fooled, app.mode]
    assert all(control.disabled for control in inputs)  # what is shown is what runs
    app.stop_button.click()
    app.wait(120)
    assert not app.running and not app.error.value, app.error.value
    assert not any(control.disabled for control in inputs)
    assert app.result.stopped and app.result.n_updates < 1000
    assert "stopped by you" in app.summary.value and app.downloads  # what it reached is still saved and offered
    assert "NOT reached (stopped by you)" in app.summary.value
    assert app.summary.value.startswith("⚠ These are GENERATED weights")  # the result says it too
    steps = app.result.n_updates
    assert app.status.value == f"Done after {steps} step{'s' if steps != 1 else ''} (of at most 1000)."


def test_errors_are_one_line_and_nothing_runs(tiny_model_file, tiny_photo):
    app = bnn.app(models=[tiny_model_file], model=tiny_model_file).app
    app.run_button.click()  # no photo yet
    assert "no photo yet" in app.error.value and not app.running
    upload(app, tiny_photo[0], "p.png")
    app.target.value = "pattern Z"
    app.run_button.click()
    app.wait(60)
    assert "unknown label name" in app.error.value and "did you mean" in app.error.value
    assert "\n" not in app.error.value and app.result is None
    bad = {**app.upload.value[0], "content": memoryview(b"not an image at all"), "name": "notes.txt"}
    app.upload.value = (bad,)
    assert "is not an image Pillow can read" in app.error.value and "p.png" in app.photo_line.value
    text = html.unescape(app.error.value)
    assert "notes.txt is not an image" in text and "breaking-nn-upload-" not in text  # its name, not a temporary path
    assert "(the photo in use is still p.png)" in text


def test_the_three_photo_sources_show_only_the_one_in_use(tiny_model_file, tiny_photo):
    app = bnn.app(models=[tiny_model_file], model=tiny_model_file).app
    coffee = "a cup of coffee (scikit-image)"
    app.example.value = coffee
    upload(app, tiny_photo[0], "mine.png")
    assert "mine.png" in app.photo_line.value and app.example.value == "(none)"
    app.example.value = coffee  # chosen again: used again
    assert coffee in html.unescape(app.photo_line.value) and not app.upload.value and app.url.value == ""
    app.url.value = "https://example.com/cat.jpg"
    assert "https://example.com/cat.jpg" in app.photo_line.value and app.example.value == "(none)"
    app.example.value = coffee
    assert app.url.value == "" and coffee in html.unescape(app.photo_line.value)


def test_a_target_is_checked_before_the_model_loads_and_cleared_when_the_model_changes(tiny_model_file):
    app = bnn.app(models=[tiny_model_file], model=bnn.widgets.GOOGLENET).app  # trained weights: maybe absent
    app.example.value = "a cup of coffee (scikit-image)"
    app.target.value = "king pengiun"
    app.run_button.click()
    assert not app.running and "did you mean 'king penguin'" in html.unescape(app.error.value)  # no weights needed
    app.target.value = "king penguin"
    app.model.value = next(name for name in app.model.options if name.startswith("tiny"))
    assert app.target.value == ""  # not a class of the tiny model
    app.target.value = "2"
    app.model.value = bnn.widgets.GOOGLENET
    assert app.target.value == "2"  # a class of both stays


def test_missing_trained_weights_are_one_short_line_naming_the_apps_way(tmp_path, tiny_model_file, refused_url):
    import shutil

    for name in ("deploy.prototxt", "labels.txt"):
        shutil.copy(tiny_model_file.parent / name, tmp_path)
    (tmp_path / "model.toml").write_text(tiny_model_file.read_text().replace(
        'weights = "tiny.caffemodel"',
        f'weights = "tiny.caffemodel"\nurl = "{refused_url}"\nsha1 = "{"0" * 40}"\nsize = 1000'))
    app = bnn.app(models=[tmp_path / "model.toml"], model=tmp_path / "model.toml").app
    assert not app.error.value, app.error.value
    app.example.value = "a cup of coffee (scikit-image)"
    app.target.value = "pattern A"
    app.run_button.click()
    app.wait(60)
    line, details = html.unescape(app.error.value).split("<details>")
    assert f"no trained weights for {app.model.value}" in line and "Choose Weights: generated" in line
    assert refused_url in details and "refused the connection" in details


def test_a_missing_weights_file_shows_the_how_to_in_the_app(tmp_path, tiny_model_file):
    import shutil

    for name in ("deploy.prototxt", "labels.txt"):
        shutil.copy(tiny_model_file.parent / name, tmp_path)
    (tmp_path / "model.toml").write_text(tiny_model_file.read_text().replace("tiny.caffemodel", "absent.caffemodel"))
    app = bnn.app(models=[tmp_path / "model.toml"], model=tmp_path / "model.toml").app
    text = html.unescape(app.error.value)
    assert "absent.caffemodel does not exist" in text and "fix the 'weights' path" in text


def test_the_app_module_holds_no_attack_logic():
    """widgets.py calls the library (as the CLI does): no Caffe, no gradient, no sign step of its own."""
    import inspect

    from breaking_nn import widgets

    source = inspect.getsource(widgets)
    for forbidden in ("import caffe", "forward_backward", "np.sign", "adjoint", "import_caffe"):
        assert forbidden not in source


@pytest.mark.slow
def test_just_fooled_stops_as_soon_as_the_target_is_on_top(tiny_model_file, tiny_photo):
    app = bnn.app(models=[tiny_model_file], model=tiny_model_file).app
    photo, label = tiny_photo
    target = (label + 1) % 3
    upload(app, photo, "p.png")
    app.target.value, app.epsilon.value, app.mode.value = f"pattern {'ABC'[target]}", 8, "exact"
    app.just_fooled.value = True
    assert app.until.disabled
    app.run_button.click()
    app.wait(120)
    result = app.result
    assert not app.error.value and result.until is None and result.fooled, app.error.value
    assert int(np.argmax(result.probabilities_after)) == target
    assert all(int(np.argmax(p)) != target for p in result.steps[:-1])  # no earlier step had it on top


# -- served (docker/start-app.sh's BREAKING_NN_SERVED=1): queue, megapixel cap, URL guard ------------------

def test_served_settings_come_from_the_environment(tmp_path):
    from breaking_nn.widgets import Serving

    assert Serving.from_environment({}) == Serving()  # a notebook: no bounds
    served = Serving.from_environment({"BREAKING_NN_SERVED": "1", "APP_QUEUE_DIR": str(tmp_path),
                                       "APP_MAX_ATTACKS": "3", "APP_MAX_MEGAPIXELS": "2.5"})
    assert served.public_urls_only and served.max_megapixels == 2.5 and served.queue.slots == 3
    assert not Serving.from_environment({"BREAKING_NN_SERVED": "1", "APP_ALLOW_PRIVATE_URLS": "1"}).public_urls_only


def test_served_app_refuses_a_loopback_url_and_fetches_nothing(tiny_model_file, http_server, tiny_photo):
    from breaking_nn.widgets import AttackApp, Serving

    http_server.routes["/admin/photo.png"] = (200, b"secret", {})
    app = AttackApp(models=[tiny_model_file], model=tiny_model_file, serving=Serving(public_urls_only=True))
    app.url.value = http_server.url("/admin/photo.png")
    app.target.value = "pattern A"
    app.run_button.click()
    app.wait(60)
    line = html.unescape(app.error.value)
    assert "refused http://127.0.0.1:" in line and "the served app fetches only public addresses" in line, line
    assert "Traceback" not in line and http_server.hits == {}


def test_notebook_app_still_fetches_a_loopback_url(tiny_model_file, http_server, tiny_photo, monkeypatch):
    """bnn.app() in a notebook (BREAKING_NN_SERVED unset) keeps fetching any URL; public_urls_only=True turns the guard on."""
    monkeypatch.delenv("BREAKING_NN_SERVED", raising=False)
    out = io.BytesIO()
    Image.fromarray(tiny_photo[0]).save(out, format="PNG")
    http_server.routes["/photo.png"] = (200, out.getvalue(), {"Content-Type": "image/png"})
    app = bnn.app(models=[tiny_model_file], model=tiny_model_file).app
    assert not app.serving.public_urls_only
    assert bnn.app(models=[tiny_model_file], public_urls_only=True).app.serving.public_urls_only
    app.url.value = http_server.url("/photo.png")
    app.target.value, app.max_steps.value = "pattern A", 1
    app.run_button.click()
    app.wait(120)
    assert not app.error.value and app.result is not None, app.error.value
    assert http_server.hits == {"/photo.png": 1}


def test_served_app_caps_megapixels(tiny_model_file):
    from breaking_nn.widgets import AttackApp, Serving

    app = AttackApp(models=[tiny_model_file], model=tiny_model_file, serving=Serving(max_megapixels=0.01))
    upload(app, np.zeros((100, 120, 3), np.uint8), "big.png")
    app.target.value = "pattern A"
    app.run_button.click()
    app.wait(60)
    line = html.unescape(app.error.value)
    assert "120x100 (0.0 MP)" in line and "up to 0.01 MP (APP_MAX_MEGAPIXELS)" in line, line


def test_queued_run_says_how_many_are_ahead_and_stop_leaves(tiny_model_file, tiny_photo, tmp_path):
    """The one slot is held by another process (a stand-in kernel); this page waits, says so, and Stop leaves."""
    import subprocess
    import sys

    from breaking_nn.attack_queue import AttackQueue
    from breaking_nn.widgets import AttackApp, Serving
    from test_attack_queue import HOLDER

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        app = AttackApp(models=[tiny_model_file], model=tiny_model_file, keep_alive_s=0.05,
                        serving=Serving(queue=AttackQueue(tmp_path, slots=1, poll_s=0.05)))
        upload(app, tiny_photo[0], "photo.png")
        app.target.value = "pattern A"
        app.run_button.click()
        deadline = time.monotonic() + 60
        while "Queued" not in app.status.value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.status.value.startswith("Queued: 0 ahead of you (1 attack run at once"), app.status.value
        while app.alive.value < 2 and time.monotonic() < deadline:  # the kernel stays active while it waits
            time.sleep(0.05)
        assert app.alive.value >= 2 and app.running
        app.stop_button.click()
        app.wait(60)
        assert not app.running and app.status.value.startswith("Left the queue") and app.result is None
        assert AttackQueue(tmp_path, slots=1).waiting() == 0
    finally:
        holder.kill()
        holder.wait()
