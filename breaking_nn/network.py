"""A failed HTTP request (requests) in words a user can act on, without urllib3's nested reprs.

>>> request_problem("http://127.0.0.1:9/x", requests.ConnectionError(ConnectionRefusedError(111, "refused")))
'no connection to 127.0.0.1:9: it refused the connection (ConnectionError)'
"""
from __future__ import annotations

import socket
from urllib.parse import urlparse

import requests


def request_problem(url: str, exc: requests.RequestException) -> str:
    """What went wrong fetching ``url``: no connection (the name does not resolve, refused, other),
    a time-out, or a body cut off; ends with the exception's type in brackets."""
    host = urlparse(url).netloc or url
    kind = type(exc).__name__
    if isinstance(exc, requests.Timeout):
        return f"{host} did not answer in time ({kind})"
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.ChunkedEncodingError):
        cause = root_cause(exc)
        if isinstance(exc, requests.exceptions.ProxyError):  # the proxy failed, not the host
            proxy = requests.utils.get_environ_proxies(url).get(urlparse(url).scheme, "the configured proxy")
            host, it = f"{host} through the proxy {proxy}", "the proxy"
        else:
            it = "its name" if isinstance(cause, socket.gaierror) else "it"
        if isinstance(cause, socket.gaierror):
            return f"no connection to {host}: {it} does not resolve (no network, or no DNS) ({kind})"
        if isinstance(cause, ConnectionRefusedError):
            return f"no connection to {host}: {it} refused the connection ({kind})"
        return f"no connection to {host} ({kind}: {cause})"
    return f"the download broke off and is incomplete ({kind}: {root_cause(exc)})"


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception behind ``exc``: through urllib3's ``reason``, ``__cause__``,
    ``__context__`` and an exception passed as the first argument (as requests wraps urllib3's)."""
    seen = {id(exc)}
    while True:
        inner = (getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
                 or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None))
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner
