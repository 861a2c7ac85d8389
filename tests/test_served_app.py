"""The app served to a class (docker/start-app.sh's settings), in real Voilà and real Chromium.

The tiny model and short time-outs keep these quick. The one attack slot is held
by a stand-in kernel (another process holding the queue's lock, as a running
attack in another page would), so the queue's states are seen for certain."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import numpy as np
import psutil
import pytest

from test_attack_queue import HOLDER
from test_browser import TARGET_BOX, browser, open_app, photo_of, serve, set_slider, upload  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow
IDLE_MINUTES = "0.25"  # 15 s: kernels are culled 15-18 s after their last message


def kernels_of(server) -> list[psutil.Process]:
    """The server's kernels, read off its process tree (ipykernel processes below Voilà)."""
    kernels = []
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(process.cmdline()):
                kernels.append(process)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):  # ended already (a zombie is not yet reaped)
            pass
    return kernels


def wait_for(condition, what: str, limit_s: float = 120.0):
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit_s} s: {what}")
        time.sleep(0.5)


@pytest.fixture
def tiny_app(tiny_model_file):
    return (f"import breaking_nn as bnn\nbnn.app(models=[{str(tiny_model_file)!r}], "
            f"model={str(tiny_model_file)!r})")


@pytest.fixture
def pattern_photo(tmp_path):
    from skimage.transform import resize
    from tiny_classifier import make_images

    images, labels = make_images(1, np.random.default_rng(7))
    array = np.rint(resize(images[0], (52, 68), order=1) * 255).astype(np.uint8)
    return photo_of(array, tmp_path / "pattern.png"), int(labels[0])


@pytest.fixture
def slot_holder(tmp_path):
    """start(folder): another process takes the queue's one slot; release() gives it back (killed)."""
    procs = []

    class Holder:
        def start(self, folder):
            procs.append(subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                                          text=True))
            assert procs[-1].stdout.readline().strip() == "holding"

        def release(self):
            for proc in procs:
                proc.kill()
                proc.wait()

    yield Holder()
    Holder().release()


def ready_to_run(page, photo, target: str) -> None:
    """Upload, type the target, ε 8 (the tiny model's robust attack reaches its goal there)."""
    upload(page, photo)
    page.locator(TARGET_BOX).fill(target)
    page.locator(TARGET_BOX).press("Enter")
    set_slider(page, 8)


def test_pages_wait_in_line_and_each_gets_its_result(browser, serve, tiny_app, pattern_photo, slot_holder, tmp_path):
    """APP_MAX_ATTACKS=1, three pages: each says how many are ahead, then each gets its verified result."""
    queue = tmp_path / "queue"
    server = serve(tiny_app, APP_MAX_ATTACKS="1", APP_QUEUE_DIR=str(queue))
    slot_holder.start(queue)
    photo, label = pattern_photo
    target = f"pattern {'ABC'[(label + 1) % 3]}"
    pages = [open_app(browser, server, f"learner {n}")[0] for n in range(3)]
    for n, page in enumerate(pages):
        ready_to_run(page, photo, target)
        page.locator(".bnn-app button:has-text('Run')").click()
        page.get_by_text(f"Queued: {n} ahead of you (1 attack run at once").wait_for(timeout=60_000)
    slot_holder.release()
    for page in pages:
        page.locator(".bnn-download-photo").wait_for(timeout=300_000)
        assert page.locator(".bnn-summary").inner_text().startswith("FOOLED")
        page.close()


def test_closed_pages_give_their_kernels_back_but_a_waiting_run_keeps_its_own(
        browser, serve, tiny_app, pattern_photo, slot_holder, tmp_path):
    """APP_IDLE_MINUTES=0.25: a closed page's kernel and a reloaded page's old one are gone (process list);
    a page whose run waits longer than that keeps its kernel, and then gets its result."""
    queue = tmp_path / "queue"
    server = serve(tiny_app, APP_IDLE_MINUTES=IDLE_MINUTES, APP_MAX_ATTACKS="1", APP_QUEUE_DIR=str(queue))
    slot_holder.start(queue)
    closed, _ = open_app(browser, server, "closed")
    reloaded, _ = open_app(browser, server, "reloaded")
    running, _ = open_app(browser, server, "running")
    assert len(kernels_of(server)) == 3
    photo, label = pattern_photo
    ready_to_run(running, photo, f"pattern {'ABC'[(label + 1) % 3]}")
    running.locator(".bnn-app button:has-text('Run')").click()
    running.get_by_text("Queued: 0 ahead of you").wait_for(timeout=60_000)
    waiting_since = time.monotonic()
    closed.close(run_before_unload=True)
    reloaded.reload()  # the old kernel goes (Voilà's unload beacon, or the culler); a new one starts
    reloaded.locator(".bnn-app button:has-text('Run')").wait_for(timeout=120_000)
    # the reloaded page is idle too: after the idle time, only the waiting run's kernel is left
    wait_for(lambda: len(kernels_of(server)) == 1, "idle kernels culled", limit_s=120)
    time.sleep(max(0.0, 2 * 15 - (time.monotonic() - waiting_since)))  # waited twice the idle time
    assert len(kernels_of(server)) == 1 and "Queued: 0 ahead" in running.locator(".bnn-app").inner_text()
    slot_holder.release()
    running.locator(".bnn-download-photo").wait_for(timeout=300_000)
    assert running.locator(".bnn-summary").inner_text().startswith("FOOLED")
    log = server.log.read_text()
    assert "Culling 'idle' kernel" in log and "Traceback" not in log


def test_the_page_past_the_limit_says_the_app_is_full(browser, serve, tiny_app):
    server = serve(tiny_app, APP_MAX_KERNELS="1")
    first, _ = open_app(browser, server, "first")
    extra = browser.new_page()
    response = extra.goto(server.url, timeout=120_000)
    assert response.status == 503
    text = extra.locator("body").inner_text()
    assert "The app is full, try again in a minute" in text and "Traceback" not in text
    assert len(kernels_of(server)) == 1
    extra.close()
    first.close()


def test_served_page_refuses_a_loopback_url_and_fetches_nothing(browser, serve, tiny_app, http_server):
    http_server.routes["/admin/photo.png"] = (200, b"secret", {})
    server = serve(tiny_app)
    page, _ = open_app(browser, server, "url guard")
    url_box = page.locator(".bnn-app input[placeholder^='https://']")
    url_box.fill(http_server.url("/admin/photo.png"))
    url_box.press("Enter")
    page.locator(TARGET_BOX).fill("pattern A")
    page.locator(TARGET_BOX).press("Enter")
    page.locator(".bnn-app button:has-text('Run')").click()
    line = page.locator(".bnn-error-line").inner_text(timeout=60_000)
    assert "refused http://127.0.0.1:" in line and "the served app fetches only public addresses" in line, line
    assert http_server.hits == {}
    page.close()
