"""Where breaking_nn finds its model definitions, weights and data files.

Environment variables (all optional):
    BREAKING_NN_MODELS_DIR  folder holding ``bvlc_googlenet/`` (its model.toml, deploy
                            prototxt and label list; default: the repository's ``models/``).
    BREAKING_NN_WEIGHTS     path of ``bvlc_googlenet.caffemodel``
                            (default: ``<models dir>/bvlc_googlenet/bvlc_googlenet.caffemodel``).
    BREAKING_NN_CACHE       the set-up's cache: Caffe builds, the sdist, downloaded models
                            (default: ``$XDG_CACHE_HOME/breaking-nn``, else ``~/.cache/breaking-nn``).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """The set-up's cache folder, by scripts/setup.sh's own rule (BREAKING_NN_CACHE, XDG_CACHE_HOME, ~/.cache)."""
    return Path(os.environ.get("BREAKING_NN_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "breaking-nn")


def open_nsfw_dir() -> Path:
    """Where Yahoo's open_nsfw files are fetched to and kept (``<cache>/models/open_nsfw``)."""
    return cache_dir() / "models" / "open_nsfw"


def models_dir() -> Path:
    """The folder of model definitions (``models/`` beside the package by default)."""
    return Path(os.environ.get("BREAKING_NN_MODELS_DIR") or PACKAGE_DIR.parent / "models")


def googlenet_model_file() -> Path:
    """GoogLeNet's model file (``model.toml``): prototxt, weights, labels, preprocessing."""
    return models_dir() / "bvlc_googlenet" / "model.toml"


def imagenet_label_file() -> Path:
    """ILSVRC-2012's ``synset_words.txt``, GoogLeNet's 1000 classes (line N+1: class N)."""
    return models_dir() / "bvlc_googlenet" / "synset_words.txt"


def googlenet_prototxt() -> Path:
    """The shipped GoogLeNet deploy definition (with ``force_backward: true``)."""
    return models_dir() / "bvlc_googlenet" / "deploy.prototxt"


def googlenet_weights() -> Path:
    """Where GoogLeNet's weights are looked for and downloaded to."""
    env = os.environ.get("BREAKING_NN_WEIGHTS")
    if env:
        return Path(env)
    return models_dir() / "bvlc_googlenet" / "bvlc_googlenet.caffemodel"
