"""In IPython and Jupyter, show breaking_nn's own errors as their message alone.

A :class:`~breaking_nn.errors.BreakingNNError` already names the problem and
the fix; the 40 lines of traceback above it, through model.py and weights.py,
hide that. When ``breaking_nn`` is imported inside IPython, such an error is
shown as one block, ``WeightsError: <message>``, through IPython's custom
exception hook (``InteractiveShell.set_custom_exc``). Every other exception
keeps its normal traceback, and the full one of ours stays one ``%tb`` away.

>>> import breaking_nn as bnn      # doctest: +SKIP
>>> bnn.short_errors(False)        # doctest: +SKIP   (full tracebacks again)
"""
from __future__ import annotations

import sys
from typing import Any, Optional

from .errors import BreakingNNError

HINT = "(the full traceback: %tb; always: bnn.short_errors(False))"


def _ipython_shell() -> Optional[Any]:
    """The running IPython shell, or None outside IPython (plain Python never imports IPython here)."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - a broken IPython
        return None
    return get_ipython()


def _show_message(shell, etype, value, tb, tb_offset=None) -> None:
    """IPython's handler: show the error's class and message as one block, keep the rest for ``%tb``.

    The exception is recorded where ``%tb`` and ``%debug`` look for it
    (``sys.last_traceback`` ...), then shown through the shell's own error
    output (in Jupyter: an ``error`` message, so the cell still fails and
    papermill still stops).
    """
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    name = etype.__name__ if str(getattr(shell, "colors", "")).lower() == "nocolor" else f"\x1b[0;31m{etype.__name__}\x1b[0m"
    shell._showtraceback(etype, value, [f"{name}: {value}", HINT])
    return None


def short_errors(enabled: bool = True) -> bool:
    """Show breaking_nn's errors as their message alone (True) or with the full traceback (False).

    Only inside IPython (Jupyter, ``ipython``); returns whether the short form
    is now on (always False outside IPython). Other exceptions are untouched.
    """
    shell = _ipython_shell()
    if shell is None:
        return False
    if enabled:
        shell.set_custom_exc((BreakingNNError,), _show_message)
        return True
    if BreakingNNError in getattr(shell, "custom_exceptions", ()):
        shell.set_custom_exc((), None)  # IPython's way of removing the handler
    return False
