"""Where breaking_nn finds its model definitions, weights and data files.

Environment variables (all optional):
    BREAKING_NN_MODELS_DIR  folder holding ``bvlc_googlenet/deploy.prototxt``
                            (default: the repository's ``models/``).
    BREAKING_NN_WEIGHTS     path of ``bvlc_googlenet.caffemodel``
                            (default: ``<models dir>/bvlc_googlenet/bvlc_googlenet.caffemodel``).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
SYNSET_WORDS = DATA_DIR / "synset_words.txt"


def models_dir() -> Path:
    """The folder of model definitions (``models/`` beside the package by default)."""
    return Path(os.environ.get("BREAKING_NN_MODELS_DIR") or PACKAGE_DIR.parent / "models")


def googlenet_prototxt() -> Path:
    """The shipped GoogLeNet deploy definition (with ``force_backward: true``)."""
    return models_dir() / "bvlc_googlenet" / "deploy.prototxt"


def googlenet_weights() -> Path:
    """Where GoogLeNet's weights are looked for and downloaded to."""
    env = os.environ.get("BREAKING_NN_WEIGHTS")
    if env:
        return Path(env)
    return models_dir() / "bvlc_googlenet" / "bvlc_googlenet.caffemodel"
