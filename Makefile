# breaking-nn: every target sets the project up first (scripts/setup.sh; seconds
# once done). The two everyday commands: `make figures` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
WEIGHTS ?=
REPEAT ?= 1
CACHE := $${BREAKING_NN_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/breaking-nn}
FIGURES_DIR ?= figures
# JupyterLab's settings overrides: never ask about, or fetch, news; no update check.
LAB_OVERRIDES := .venv/share/jupyter/lab/settings/overrides.json
JUPYTER_OPTIONS := --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
  --ServerApp.tornado_settings="{'websocket_max_message_size': 209715200}"

.PHONY: setup caffe-gtests figures test test-fast test-browser chromium weights notebook app strip-notebooks benchmark docker-test docker-test-cpu docker-test-gpu clean clean-cache

setup:
	@scripts/setup.sh

## The gate on its own: Caffe's gtests for every patched part (docker/caffe-gtests.sh)
## against the cached build, REPEAT=N times (new random inputs each time); names the
## BLAS kernel they ran under. `make setup` runs them once when it builds Caffe.
caffe-gtests: setup
	@docker/caffe-gtests.sh --python $(PY) --repeat $(REPEAT) --build "$(CACHE)/caffe-$$(scripts/caffe-key.sh $(PY))"

## The main job: regenerate the blog's seven figures into figures/ (downloads
## GoogLeNet's weights the first time). WEIGHTS=generated runs without them.
figures: setup
	$(PY) -m breaking_nn.figures --out $(FIGURES_DIR) $(if $(WEIGHTS),--weights $(WEIGHTS))

## The tests (real Caffe; a few minutes).
test: setup
	$(PY) -m pytest

## The tests that need no GoogLeNet pass or training (seconds).
test-fast: setup
	$(PY) -m pytest -m "not slow"

## The browser tests only: installs Debian's Chromium (apt, ~300 MB; as root or
## with sudo) if missing, then drives the app in it (Voila + Playwright).
test-browser: setup chromium
	$(PY) -m pytest tests/test_browser.py

chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; }

## Download and verify bvlc_googlenet.caffemodel into models/bvlc_googlenet/.
weights: setup
	$(PY) -m breaking_nn.weights

## Jupyter Lab on the project's environment, with its kernel registered. No
## requests to the internet of its own (news feed, update check); uploads up to
## 200 MiB (the websocket limit; Jupyter's default is 10 MiB).
notebook: setup $(LAB_OVERRIDES)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (breaking-nn)" >/dev/null
	.venv/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_OPTIONS)

$(LAB_OVERRIDES): docker/jupyterlab-overrides.json
	install -D -m 644 $< $@

## The attack app (bnn.app()) as a web page with Voila, on 127.0.0.1; the URL
## printed carries a fresh token (JUPYTER_TOKEN=... to choose it; JUPYTER_PORT, default 8866).
app: setup
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (breaking-nn)" >/dev/null
	JUPYTER_IP=127.0.0.1 APP_NOTEBOOK=notebooks/app.ipynb PATH="$(CURDIR)/.venv/bin:$$PATH" docker/start-app.sh

## Remove outputs from the notebooks (a test keeps them committed clean).
strip-notebooks: setup
	.venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

## How fast trick() is compared with the blog's loop (ratios, one run); the photo
## attack's seconds per step and peak memory on 1, 12 and 48 MP photos; whether
## evaluate --batch pays (photos per minute, peak RSS; open_nsfw).
benchmark: setup
	$(PY) scripts/benchmark.py
	$(PY) scripts/benchmark_gemm.py
	$(PY) scripts/benchmark_photo.py
	$(PY) scripts/benchmark_evaluate.py

## Build the CPU and the GPU Docker images with podman (as root) and check them
## (docker/check-image.sh, docker/check-gpu-image.sh; the GPU one for sm_90 only).
docker-test: docker-test-cpu docker-test-gpu

docker-test-cpu: setup
	docker/check-image.sh

docker-test-gpu: setup
	docker/check-gpu-image.sh

clean:
	rm -rf .venv $(FIGURES_DIR) .pytest_cache *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +

## Also forget the cached Caffe builds (the next setup rebuilds, ~9 minutes).
clean-cache: clean
	rm -rf $(CACHE)
