"""The served app's URL guard: fetch a photo URL only from public (global) addresses.

A served page hands URLs from anyone holding its token to the server; without
this guard the server would fetch ``http://127.0.0.1:.../admin`` or the cloud
metadata address ``169.254.169.254`` for them (server-side request forgery).

The rule, for the URL and for every redirect hop:

* the scheme is http or https;
* every address its host name resolves to is global
  (``ipaddress.ip_address(a).is_global``, an IPv4-mapped IPv6 address judged as
  its IPv4 address): loopback, private, shared (100.64/10), link-local
  (169.254/16), multicast (which ``is_global`` lets through, so it is named
  too), unspecified and reserved addresses are refused
  BEFORE any connection is made;
* the address the socket actually connected to is checked again (a name that
  resolves differently a second time, DNS rebinding, cannot slip past).

TLS is untouched: the certificate is checked against the URL's host name as
requests always does. ``HTTP(S)_PROXY`` is ignored by a guarded session (a proxy
would resolve the name itself, out of the guard's sight): the server connects
directly. ``guarded_session()`` is a :class:`requests.Session`.

>>> refusal("http://127.0.0.1:9/x")
'refused http://127.0.0.1:9/x: 127.0.0.1 is not a public address (loopback); the served app fetches only public addresses'
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Optional, Sequence
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util import connection as urllib3_connection

from .errors import ImageLoadError

RULE = "the served app fetches only public addresses"


class URLRefused(ImageLoadError):
    """A URL the guard refused; its message is one line naming the rule."""


def address_kind(address: str, allow: Sequence[str] = ()) -> Optional[str]:
    """None for a global address (or one in the ``allow`` networks, e.g. "127.0.0.2/32");
    else what it is ("loopback", "private", "shared (100.64/10)", ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope ("%eth0") is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (ip.is_global and not ip.is_multicast) or any(ip in ipaddress.ip_network(net) for net in allow):
        return None
    for kind, test in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("unspecified", ip.is_unspecified),
                       ("private", ip.is_private)):
        if test:
            return kind
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.IPv4Network("100.64.0.0/10"):
        return "shared (100.64/10)"
    return "reserved"


def refusal(url: str, *, resolve: bool = True, allow: Sequence[str] = ()) -> Optional[str]:
    """Why ``url`` is refused (one line), or None: its scheme, then every address its host resolves to.

    ``resolve=False`` judges only a host that is an IP address literal (no DNS); ``allow``: as for
    :func:`address_kind`."""
    parts = urlparse(url)
    if parts.scheme not in ("http", "https"):
        return f"refused {url}: only http:// and https:// URLs are fetched"
    host = parts.hostname
    if not host:
        return f"refused {url}: it names no host"
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if not resolve:
            return None
        try:
            addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, parts.port or 80,
                                                                          type=socket.SOCK_STREAM)})
        except socket.gaierror:
            return None  # requests names a name that does not resolve in its own words
    for address in addresses:
        kind = address_kind(address, allow)
        if kind:
            return f"refused {url}: {host} is not a public address ({kind}); {RULE}"
    return None


def _guarded_create_connection(address, timeout=socket.getdefaulttimeout(), source_address=None,
                               socket_options=None, allow: Sequence[str] = ()):
    """urllib3's create_connection, refusing non-global addresses before connecting and checking the peer after."""
    host, port = address
    host = host.strip("[]")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        kind = address_kind(info[4][0], allow)
        if kind:
            raise URLRefused(f"refused {host}: {info[4][0]} is not a public address ({kind}); {RULE}")
    sock = urllib3_connection.create_connection(address, timeout, source_address, socket_options)
    peer = sock.getpeername()[0]
    kind = address_kind(peer, allow)
    if kind:  # resolved again to something else (DNS rebinding)
        sock.close()
        raise URLRefused(f"refused {host}: it connected to {peer}, not a public address ({kind}); {RULE}")
    return sock


class _GuardedMixin:
    allow: Sequence[str] = ()

    def _new_conn(self):  # urllib3 2.x: the one place a connection's socket is made
        try:
            return _guarded_create_connection((self._dns_host, self.port), self.timeout,
                                              source_address=self.source_address,
                                              socket_options=self.socket_options, allow=self.allow)
        except URLRefused:
            raise
        except socket.gaierror as exc:
            from urllib3.exceptions import NameResolutionError
            raise NameResolutionError(self.host, self, exc) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


def _pool_classes(allow: Sequence[str]) -> dict:
    """urllib3 pools (http, https) whose connections check addresses (``allow``: as for :func:`address_kind`)."""
    allowed = tuple(allow)
    http = type("GuardedHTTPConnection", (_GuardedMixin, HTTPConnection), {"allow": allowed})
    https = type("GuardedHTTPSConnection", (_GuardedMixin, HTTPSConnection), {"allow": allowed})
    return {"http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https})}


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allow: Sequence[str]):
        self.allow = tuple(allow)
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.allow)

    def send(self, request, **kwargs):
        why = refusal(request.url, resolve=False, allow=self.allow)  # each hop, before anything is sent
        if why:
            raise URLRefused(why)
        return super().send(request, **kwargs)


def guarded_session(*, allow: Sequence[str] = ()) -> requests.Session:
    """A requests session whose every connection (each redirect hop too) goes only to global addresses
    (and the ``allow`` networks, e.g. ``["127.0.0.2/32"]``); the environment's proxies and .netrc are not used."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(allow)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
