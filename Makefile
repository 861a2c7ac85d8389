# breaking-nn: every target sets the project up first (scripts/setup.sh; seconds
# once done). The two everyday commands: `make figures` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
WEIGHTS ?=
FIGURES_DIR ?= figures

.PHONY: setup figures test test-fast weights notebook strip-notebooks benchmark docker-test docker-test-cpu docker-test-gpu clean clean-cache

setup:
	@scripts/setup.sh

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

## Download and verify bvlc_googlenet.caffemodel into models/bvlc_googlenet/.
weights: setup
	$(PY) -m breaking_nn.weights

## Jupyter Lab on the project's environment, with its kernel registered.
notebook: setup
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (breaking-nn)" >/dev/null
	.venv/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## Remove outputs from the notebooks (a test keeps them committed clean).
strip-notebooks: setup
	.venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

## How fast trick() is compared with the blog's loop (ratios, one run); the photo
## attack's seconds per step and peak memory on 1, 12 and 48 MP photos; whether
## evaluate --batch pays (photos per minute, peak RSS; open_nsfw).
benchmark: setup
	$(PY) scripts/benchmark.py
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
	rm -rf $${BREAKING_NN_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/breaking-nn}
