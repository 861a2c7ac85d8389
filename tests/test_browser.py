"""The app in a real browser: Voilà on 127.0.0.1, Debian's Chromium driven by Playwright.

Each test starts Voilà on a notebook holding ``bnn.app(...)``, opens it in
headless Chromium, and clicks through it as a learner would: upload a photo,
type a class, move the ε slider, Run, wait for the result, Download; the
downloaded file is then reloaded here and must give the goal. Screenshots go
to ``artefacts/browser/`` (``BREAKING_NN_ARTEFACTS`` moves it).

Playwright cannot download its own browsers here: it drives ``/usr/bin/chromium``
(``apt-get install chromium``; ``make test-browser`` does it). Without Chromium
these tests skip, except under CI=true, where that is a failure.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from PIL import Image

import breaking_nn as bnn
from conftest import REPO, skip_unless_ci

CHROMIUM = os.environ.get("BREAKING_NN_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get("BREAKING_NN_ARTEFACTS") or REPO / "artefacts") / "browser"
VOILA = Path(sys.executable).with_name("voila")
#: the slowest step here is a CPU attack on open_nsfw (ResNet-50) on a busy 2-core machine
RUN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's), launched by Playwright; skips only where it is absent."""
    if not Path(CHROMIUM).is_file():
        skip_unless_ci(f"Chromium is not installed at {CHROMIUM}: `make test-browser` installs it "
                       "(apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_unless_ci("Playwright's Python package is missing: `make setup` installs requirements.txt")
    with sync_playwright() as p:
        # --no-sandbox: Chromium refuses to start as root otherwise (CI runs as root)
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_status(url: str) -> tuple[int, str]:
    """(HTTP status, Location header) of a GET, redirects not followed."""
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=60) as response:
            return response.status, response.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, code: str) -> Path:
    """A one-cell notebook (the app's own notebooks/app.ipynb has the same shape)."""
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "app", "metadata": {}, "outputs": [],
                     "source": code}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


class Voila:
    """``voila NOTEBOOK`` on 127.0.0.1 with a token, as `make app` starts it (docker/start-app.sh)."""

    def __init__(self, notebook: Path, log: Path, settings: Optional[dict] = None):
        self.port, self.token = free_port(), secrets.token_hex(16)
        env = {**os.environ, "JUPYTER_TOKEN": self.token, "JUPYTER_IP": "127.0.0.1", "JUPYTER_PORT": str(self.port),
               "APP_NOTEBOOK": str(notebook), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "MPLBACKEND": "Agg", **(settings or {})}
        self.log = log
        self.process = subprocess.Popen([str(REPO / "docker" / "start-app.sh")], env=env, cwd=notebook.parent,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"Voilà exited with {self.process.returncode}:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"Voilà did not listen on port {self.port} within 60 s:\n{log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def serve(tmp_path):
    """serve(code, **settings) -> a running Voilà on a notebook holding ``code``, start-app.sh's
    settings (APP_IDLE_MINUTES=..., ...) in its environment; stopped after the test."""
    servers = []

    def start(code: str, **settings: str) -> Voila:
        server = Voila(write_notebook(tmp_path / "app.ipynb", code), tmp_path / "voila.log", settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def open_app(browser, server: Voila, name: str):
    """A new page on the app, waited until its widgets are interactive; (page, seconds that took)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1500}, accept_downloads=True)
    page.on("requestfailed", lambda request: print(f"[{name}] request failed: {request.url}"))
    start = time.monotonic()
    page.goto(server.url, timeout=120_000)
    page.locator(".bnn-app button:has-text('Run')").wait_for(state="visible", timeout=120_000)
    seconds = time.monotonic() - start
    print(f"{name}: page interactive {seconds:.1f} s after the request (kernel start and import included)")
    return page, seconds


TARGET_BOX = ".bnn-app input[list]"  # ipywidgets' Combobox: a text box completed by a <datalist>


def upload(page, photo: Path) -> None:
    """Click the upload button and choose ``photo`` in the file chooser; wait until the app names it."""
    with page.expect_file_chooser() as chooser:
        page.locator(".bnn-app .widget-upload").click()
    chooser.value.set_files(str(photo))
    page.locator(".bnn-app").get_by_text(photo.name).first.wait_for(timeout=30_000)


def set_slider(page, value: int) -> None:
    """Move the ε slider with the keyboard, as a learner can: focus its handle, arrow keys."""
    slider = page.locator(".bnn-app .widget-slider").first
    handle = slider.locator(".noUi-handle")
    handle.focus()
    current = int(slider.locator(".widget-readout").inner_text())
    key = "ArrowRight" if value > current else "ArrowLeft"
    for _ in range(abs(value - current)):
        handle.press(key)
    page.wait_for_function(
        "v => document.querySelector('.bnn-app .widget-slider .widget-readout').textContent.trim() === String(v)",
        arg=value, timeout=10_000)


def screenshot(page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def attack_in_the_browser(browser, server, tmp_path, *, name, photo: Path, target: str, epsilon: int, mode: str):
    """Upload, type, slide, Run, wait, Download: the downloaded file's path."""
    page, _ = open_app(browser, server, name)
    upload(page, photo)
    page.locator(TARGET_BOX).fill(target)
    page.locator(TARGET_BOX).press("Enter")
    set_slider(page, epsilon)
    page.locator(".bnn-app .widget-toggle-buttons button", has_text=mode).click()
    page.locator(".bnn-app button:has-text('Run')").click()
    link = page.locator(".bnn-download-photo")
    error = page.locator(".bnn-error-line")
    link.or_(error).wait_for(timeout=RUN_TIMEOUT_MS)
    assert not error.count(), f"the app showed an error: {error.inner_text()}"
    assert page.locator(".bnn-app img").count() >= 4  # the three pictures and the chart
    shot = screenshot(page, name)
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    out = tmp_path / download.suggested_filename
    download.save_as(out)
    summary = page.locator(".bnn-summary").inner_text()
    page.close()
    return out, summary, shot


def photo_of(array: np.ndarray, path: Path, **save) -> Path:
    Image.fromarray(array).save(path, **save)
    return path


def check_download(model, out: Path, photo: Path, target: int, epsilon: int) -> np.ndarray:
    """The downloaded file, reloaded the standard way, gives the goal and stays within epsilon."""
    probs = model.forward(model.preprocess(bnn.load_image(out)))
    assert int(np.argmax(probs)) == target and probs[target] >= 0.9, probs
    with Image.open(out) as saved, Image.open(photo) as original:
        assert saved.format == "PNG" and saved.size == original.size
        change = np.abs(np.asarray(saved.convert("RGB"), int) - np.asarray(original.convert("RGB"), int))
    assert change.max() <= epsilon
    return probs


@pytest.mark.slow
def test_tiny_classifier_upload_run_download_gives_the_goal(browser, serve, tiny_model_file, tmp_path):
    from skimage.transform import resize
    from tiny_classifier import make_images

    images, labels = make_images(1, np.random.default_rng(7))
    photo = photo_of(np.rint(resize(images[0], (52, 68), order=1) * 255).astype(np.uint8), tmp_path / "pattern.png")
    target = (int(labels[0]) + 1) % 3
    server = serve(f"import breaking_nn as bnn\nbnn.app(models=[{str(tiny_model_file)!r}], "
                   f"model={str(tiny_model_file)!r})")
    out, summary, _ = attack_in_the_browser(browser, server, tmp_path, name="app-tiny", photo=photo,
                                            target=f"pattern {'ABC'[target]}", epsilon=8, mode="robust")
    assert summary.startswith("FOOLED") and "verified: " in summary
    model = bnn.load_model(tiny_model_file)
    check_download(model, out, photo, target, 8)


@pytest.mark.slow
def test_open_nsfw_coffee_becomes_flagged_in_the_browser(browser, serve, open_nsfw_model_file, tmp_path):
    from skimage import data

    photo = photo_of(data.coffee(), tmp_path / "coffee.jpg", quality=95)
    server = serve(f"import breaking_nn as bnn\nbnn.app(models=[{str(open_nsfw_model_file)!r}], "
                   f"model={str(open_nsfw_model_file)!r})")
    out, summary, shot = attack_in_the_browser(browser, server, tmp_path, name="app-open-nsfw", photo=photo,
                                               target="not safe for work", epsilon=4, mode="exact")
    assert summary.startswith("FOOLED") and "verified: " in summary
    assert out.name == "coffee-not-safe-for-work.png"
    check_download(bnn.load_model(open_nsfw_model_file), out, photo, 1, 4)
    with Image.open(shot) as img:
        assert img.width >= 1000  # a real page, not an error stub


@pytest.mark.slow
def test_errors_show_as_one_line_and_the_kernel_lives(browser, serve, tiny_model_file, tmp_path):
    """An unknown class, then a model whose weights are missing: one line each; then a run still works."""
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(tiny_model_file.parent / "deploy.prototxt", broken)
    shutil.copy(tiny_model_file.parent / "labels.txt", broken)
    (broken / "model.toml").write_text(tiny_model_file.read_text().replace("tiny.caffemodel", "absent.caffemodel"))
    photo = photo_of(np.full((20, 20, 3), 128, np.uint8), tmp_path / "grey.png")
    server = serve(f"import breaking_nn as bnn\nbnn.app(models=[{str(tiny_model_file)!r}, {str(broken / 'model.toml')!r}], "
                   f"model={str(tiny_model_file)!r})")
    page, _ = open_app(browser, server, "app-errors")
    error = page.locator(".bnn-error-line")

    upload(page, photo)
    page.locator(TARGET_BOX).fill("pattern Z")
    page.locator(".bnn-app button:has-text('Run')").click()
    error.wait_for(timeout=60_000)
    text = error.inner_text()
    assert "unknown label name 'pattern Z'" in text and "\n" not in text.strip()
    assert error.bounding_box()["height"] < 40  # one line on the page (the app's full width), not a traceback
    assert "Traceback" not in page.content()
    screenshot(page, "app-error")

    page.locator(".bnn-app .widget-dropdown select").nth(1).select_option(label="broken")
    page.wait_for_function("() => document.querySelector('.bnn-error-line')?.textContent.includes('absent.caffemodel')",
                           timeout=30_000)
    text = error.inner_text()
    assert "does not exist" in text and "\n" not in text.strip()

    # the kernel is alive and the app still works: back to the good model, a real run
    page.locator(".bnn-app .widget-dropdown select").nth(1).select_option(label=tiny_model_file.parent.name)
    page.locator(TARGET_BOX).fill("pattern A")
    page.locator(".bnn-app button:has-text('Run')").click()
    page.locator(".bnn-summary").get_by_text("pattern A").first.wait_for(timeout=RUN_TIMEOUT_MS)
    assert not error.count() or not error.inner_text().strip()


@pytest.mark.slow
def test_shipped_app_page_shows_no_code_and_needs_its_token(browser, tmp_path):
    """notebooks/app.ipynb through docker/start-app.sh (what `make app` runs): no app without the token.

    Voilà answers a request without the token with a redirect to its login page
    (which asks for the token), never with the app.
    """
    server = Voila(REPO / "notebooks" / "app.ipynb", tmp_path / "voila.log")
    try:
        without = http_status(f"http://127.0.0.1:{server.port}/")
        assert without[0] == 302 and without[1].startswith("/login"), without
        assert http_status(server.url)[0] == 200
        assert f"The app: {server.url}" in server.log.read_text()  # the URL to open, token included
        page, seconds = open_app(browser, server, "app-shipped")
        assert "import breaking_nn" not in page.content()  # Voilà strips the code cells' sources...
        assert page.locator(".jp-InputArea-editor, .CodeMirror, .cm-editor").count() == 0  # ...and shows no editor
        assert page.locator(".bnn-app").get_by_text("GoogLeNet").count()  # the model menu starts on GoogLeNet
        assert page.locator(".bnn-app datalist option").count() == 1001  # untargeted + 1000 classes
        screenshot(page, "app-start")
        page.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_an_upload_over_tornados_10_mib_default_arrives(browser, serve, tiny_model_file, tmp_path):
    """start-app raises the websocket message limit: a 12 MiB photo reaches the kernel (no silent drop)."""
    noise = np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    photo = photo_of(noise, tmp_path / "big.png", compress_level=0)
    assert photo.stat().st_size > 12 * 2**20
    server = serve(f"import breaking_nn as bnn\nbnn.app(models=[{str(tiny_model_file)!r}], "
                   f"model={str(tiny_model_file)!r})")
    page, _ = open_app(browser, server, "app-big-upload")
    upload(page, photo)
    assert page.locator(".bnn-app").get_by_text("(2048x2048)").count()
    page.close()


class JupyterLab:
    """docker/start-jupyter.sh (the image's Jupyter Lab, its flags as `make notebook`'s) on 127.0.0.1."""

    def __init__(self, home: Path, log: Path, **environment: str):
        self.port, self.token = free_port(), secrets.token_hex(16)
        (home / "breaking-nn" / "notebooks").mkdir(parents=True)
        self.notebooks = home / "breaking-nn" / "notebooks"
        env = {**os.environ, "HOME": str(home), "JUPYTER_TOKEN": self.token, "JUPYTER_IP": "127.0.0.1",
               "JUPYTER_PORT": str(self.port), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "MPLBACKEND": "Agg", "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), **environment}
        extra = ["--allow-root"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen([str(REPO / "docker" / "start-jupyter.sh"), *extra], env=env, cwd=home,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"Jupyter Lab exited with {self.process.returncode}:\n{log.read_text()}")
            if _listening(self.port) and http_status(f"http://127.0.0.1:{self.port}/api/status?token={self.token}")[0] == 200:
                return
            time.sleep(0.5)
        raise AssertionError(f"Jupyter Lab did not answer within 90 s:\n{log.read_text()}")

    def stop(self) -> None:
        Voila.stop(self)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_jupyterlab_shows_our_error_as_one_block_and_no_news_popup(browser, tmp_path):
    """As a learner would: JupyterLab in Chromium, no weights, the set-up cell run; no request for news."""
    overrides = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    if Path(sys.prefix) == REPO / ".venv":  # what `make notebook` installs (the image has it at the same place)
        subprocess.run(["make", "-s", str(overrides.relative_to(REPO))], cwd=REPO, check=True)
    assert json.loads(overrides.read_text()) == json.loads((REPO / "docker" / "jupyterlab-overrides.json").read_text())
    lab = JupyterLab(tmp_path / "home", tmp_path / "lab.log", BREAKING_NN_WEIGHTS=str(tmp_path / "none.caffemodel"))
    try:
        write_notebook(lab.notebooks / "setup.ipynb", "import breaking_nn as bnn\nmodel = bnn.load_googlenet(download=False)")
        assert "LabApp.news_url=None" in subprocess.run(["make", "-s", "-n", "notebook"], cwd=REPO, text=True,
                                                        capture_output=True).stdout  # the same flags in `make notebook`
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"http://127.0.0.1:{lab.port}/lab/tree/setup.ipynb?token={lab.token}", timeout=120_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
        page.get_by_text("| Idle").first.wait_for(timeout=RUN_TIMEOUT_MS)  # the kernel has started
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.locator(".jp-OutputArea-output").first.wait_for(timeout=RUN_TIMEOUT_MS)
        finally:
            screenshot(page, "jupyterlab-error")
        error = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        text = error.first.inner_text()
        assert text.startswith("WeightsError: GoogLeNet's weights are not at") and "%tb" in text
        assert 'load_googlenet("generated")' in text  # the hint names the Python argument
        assert len(text.strip().splitlines()) <= 3 and "weights.py" not in text  # one block, not a wall of red
        page.wait_for_timeout(3000)
        assert not page.get_by_text("Jupyter news").count()  # JupyterLab's news pop-up is off
        assert not [url for url in requests if not url.startswith(f"http://127.0.0.1:{lab.port}")]
        page.close()
    finally:
        lab.stop()
