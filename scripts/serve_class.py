"""A scripted class against the served app: N pages in real Chromium, each attacks and reloads once.

Starts docker/start-app.sh (Voilà) with a short idle time, opens ``--pages`` pages at
once (each: upload the tiny model's photo, Run, wait for the verified result, reload,
then close), and measures the server's process tree (Voilà plus its kernels, RSS)
before the pages, at its peak, and after every kernel is gone. Prints one line per
figure; exits 1 if a kernel is left after the idle time or the server ends more than
150 MB above where it began.

Also ``--attack-memory``: the peak RSS of one app run on GoogLeNet (generated weights)
and on open_nsfw, driven from Python in a fresh process (the kernel's imports included).

    .venv/bin/python scripts/serve_class.py --pages 6 --idle-minutes 0.5
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
MB = 1e6


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS bytes of the process and all its children, number of ipykernel children)."""
    total, kernels = 0, 0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
            kernels += "ipykernel" in " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return total, kernels


def serve(notebook: Path, idle_minutes: float, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_IP": "127.0.0.1", "JUPYTER_PORT": str(port),
           "APP_NOTEBOOK": str(notebook), "APP_IDLE_MINUTES": str(idle_minutes), "MPLBACKEND": "Agg",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    process = subprocess.Popen([str(REPO / "docker" / "start-app.sh")], env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}/?token={token}"
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"Voilà did not start: {log.read_text()}")


def class_pages(browser, url: str, photo: Path, pages: int, errors: list) -> None:
    """All pages open at once, then each runs, then each reloads (a new kernel), then all close."""
    from test_browser import TARGET_BOX

    run = ".bnn-app button:has-text('Run')"
    tabs = [browser.new_context().new_page() for _ in range(pages)]
    for tab in tabs:
        tab.goto(url, timeout=180_000)
    for tab in tabs:
        tab.locator(run).wait_for(timeout=180_000)
        with tab.expect_file_chooser() as chooser:
            tab.locator(".bnn-app .widget-upload").click()
        chooser.value.set_files(str(photo))
        tab.locator(TARGET_BOX).fill("pattern B")
        tab.locator(TARGET_BOX).press("Enter")
        tab.locator(run).click()
    for n, tab in enumerate(tabs):
        tab.locator(".bnn-download-photo").or_(tab.locator(".bnn-error-line")).wait_for(timeout=600_000)
        if tab.locator(".bnn-error-line").count():
            errors.append(f"page {n}: {tab.locator('.bnn-error-line').inner_text()}")
    for tab in tabs:
        tab.reload()
    for tab in tabs:
        tab.locator(run).wait_for(timeout=180_000)
    for tab in tabs:
        tab.close()


def run_class(pages: int, idle_minutes: float) -> int:
    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from skimage.transform import resize

    from tiny_classifier import make_images, train

    work = Path(tempfile.mkdtemp(prefix="serve-class-"))
    train(work)  # the tests' tiny classifier (seconds)
    model_file = work / "model.toml"
    model_file.write_text('name = "tiny"\nprototxt = "deploy.prototxt"\nweights = "tiny.caffemodel"\n'
                          'labels_file = "labels.txt"\n\n[preprocess]\nchannel_order = "BGR"\n')
    images, _ = make_images(1, np.random.default_rng(7))
    photo = work / "pattern.png"
    Image.fromarray(np.rint(resize(images[0], (52, 68), order=1) * 255).astype(np.uint8)).save(photo)
    notebook = work / "app.ipynb"
    from test_browser import write_notebook
    write_notebook(notebook, f"import breaking_nn as bnn\nbnn.app(models=[{str(model_file)!r}], "
                             f"model={str(model_file)!r})")
    server, url = serve(notebook, idle_minutes, work / "voila.log")
    try:
        time.sleep(3)
        before, _ = tree_rss(server.pid)
        peak = [before, 0]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                rss, kernels = tree_rss(server.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], kernels)
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        errors: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-dev-shm-usage"])
            start = time.monotonic()
            try:
                class_pages(browser, url, photo, pages, errors)
            except Exception as exc:  # noqa: BLE001 - reported with the figures
                errors.append(f"{type(exc).__name__}: {exc}")
            browser.close()
        closed_at = time.monotonic()
        limit = idle_minutes * 60 + max(1, min(60, idle_minutes * 60 // 5)) + 10
        while tree_rss(server.pid)[1] and time.monotonic() - closed_at < limit:
            time.sleep(1)
        gone_after = time.monotonic() - closed_at
        time.sleep(2)
        sampling.set()
        after, left = tree_rss(server.pid)
        print(f"class: {pages} pages, each ran an attack and reloaded once, in {closed_at - start:.0f} s; "
              f"idle time {idle_minutes * 60:.0f} s")
        print(f"server tree RSS: before {before / MB:.0f} MB, peak {peak[0] / MB:.0f} MB "
              f"({peak[1]} kernels at most), after {after / MB:.0f} MB ({left} kernels left, "
              f"{gone_after:.0f} s after the last page closed)")
        for line in errors:
            print("error:", line)
        ok = not left and after - before <= 150 * MB and not errors
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(30)


ATTACK = """
import resource, sys, threading, time
import breaking_nn as bnn
from breaking_nn.widgets import AttackApp, Serving
kind, model_file = sys.argv[1], sys.argv[2]
app = (AttackApp(weights="generated", serving=Serving()) if kind == "googlenet"
       else AttackApp(models=[model_file], model=model_file, serving=Serving()))
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
app.example.value = "Chelsea the cat (scikit-image)" if kind == "googlenet" else "a cup of coffee (scikit-image)"
app.target.value = "king penguin" if kind == "googlenet" else "not safe for work"
app.max_steps.value, app.mode.value = 5, "robust"
app.run(); app.wait()
print(idle // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, app.status.value, app.error.value)
"""


def attack_memory() -> None:
    from breaking_nn import paths
    from breaking_nn.open_nsfw import fetch_open_nsfw

    model_file = fetch_open_nsfw(paths.open_nsfw_dir())
    for kind in ("googlenet", "open_nsfw"):
        out = subprocess.run([sys.executable, "-c", ATTACK, kind, str(model_file)], capture_output=True, text=True,
                             env={**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"})
        idle, peak, *status = out.stdout.split(maxsplit=2) or ["?", "?", out.stderr[-300:]]
        print(f"{kind}: app process {idle} MB before the run, peak {peak} MB during a 5-step robust run "
              f"(Chelsea/coffee, 1 BLAS thread): {' '.join(status)[:120]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--idle-minutes", type=float, default=0.5)
    parser.add_argument("--attack-memory", action="store_true")
    args = parser.parse_args()
    if args.attack_memory:
        attack_memory()
        return 0
    return run_class(args.pages, args.idle_minutes)


if __name__ == "__main__":
    sys.exit(main())
