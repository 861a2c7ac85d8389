"""The current model: the one the blog-style calls (``bnn.predict(...)``) work on.

Like matplotlib's current figure, this is process-wide state, and it is only
a slot: :func:`breaking_nn.model.load_model` (so also ``load_googlenet``) puts
each model it loads here; :mod:`breaking_nn.blog_api` reads it, checks what
``use_model`` is given, and loads GoogLeNet when the slot is empty. This module
imports nothing from the package, so the model floor can fill the slot without
importing the floors above it.
"""
from __future__ import annotations

from typing import Any, Optional

_current: Optional[Any] = None


def set_current(model: Any) -> None:
    """Make ``model`` (a :class:`breaking_nn.Classifier`) the current model."""
    global _current
    _current = model


def get_current() -> Optional[Any]:
    """The current model, or None if none has been loaded or set (loads nothing)."""
    return _current
