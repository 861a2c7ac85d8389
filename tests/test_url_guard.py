"""The served app's URL guard (breaking_nn/url_guard.py) with real HTTP on 127.0.0.0/8 only.

Addresses outside 127/8 (169.254.169.254, 100.64.0.1, 10.0.0.1, ...) are judged and refused
before any connection: no test sends a packet anywhere but loopback."""
from __future__ import annotations

import pytest
from PIL import Image

from breaking_nn.errors import ImageLoadError
from breaking_nn.images import fetch_image_bytes, load_image
from breaking_nn.url_guard import URLRefused, address_kind, guarded_session, refusal
from conftest import LoopbackServer
from test_images import png_bytes


@pytest.fixture
def second_server():
    """A loopback server on 127.0.0.2, which the tests allow as if public (a stand-in for a public host)."""
    server = LoopbackServer("127.0.0.2")
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("100.64.0.1", "shared (100.64/10)"),
    ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"), ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::ffff:10.0.0.1", "private"),
])
def test_non_global_addresses_are_named(address, kind):
    assert address_kind(address) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::6810:84e5", "::ffff:8.8.8.8"])
def test_global_addresses_pass(address):
    assert address_kind(address) is None


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]:9/x.jpg",
                                 "http://100.64.0.1/x.jpg", "https://10.0.0.1/x.jpg", "http://localhost:9/x.jpg"])
def test_refused_before_any_connection(url):
    """Literal addresses and names resolving to loopback: refused by the rule before a socket is opened."""
    with pytest.raises(URLRefused, match=r"^refused .*not a public address .*the served app fetches only public"):
        fetch_image_bytes(url, public_only=True, timeout=0.01)


def test_loopback_url_refused_and_never_requested(http_server):
    http_server.routes["/admin/photo.png"] = (200, png_bytes(Image.new("RGB", (8, 8))), {})
    with pytest.raises(ImageLoadError, match=r"refused http://127\.0\.0\.1:\d+/admin/photo\.png: 127\.0\.0\.1 is not "
                                             r"a public address \(loopback\)"):
        load_image(http_server.url("/admin/photo.png"), public_only=True)
    assert http_server.hits == {}


def test_notebook_default_still_fetches_loopback(http_server):
    http_server.routes["/photo.png"] = (200, png_bytes(Image.new("RGB", (8, 4), (0, 255, 0))), {})
    assert load_image(http_server.url("/photo.png")).shape == (4, 8, 3)
    assert http_server.hits == {"/photo.png": 1}


def test_only_http_and_https():
    assert refusal("ftp://example.org/x.jpg") == "refused ftp://example.org/x.jpg: only http:// and https:// URLs are fetched"
    assert refusal("file:///etc/passwd").startswith("refused file:///etc/passwd: only http")


def test_allowed_host_is_fetched(second_server):
    """The guard's session fetches from an allowed address (the allowed path works; not only refusals)."""
    second_server.routes["/ok.png"] = (200, b"image bytes", {})
    with guarded_session(allow=["127.0.0.2/32"]) as session:
        assert session.get(second_server.url("/ok.png"), timeout=10).content == b"image bytes"


def test_redirect_to_loopback_refused_and_not_followed(second_server, http_server):
    """127.0.0.2 stands for a public host; its redirect to 127.0.0.1 is refused and 127.0.0.1 sees nothing."""
    http_server.routes["/admin/photo.png"] = (200, b"secret", {})
    second_server.routes["/photo.png"] = (302, b"", {"Location": http_server.url("/admin/photo.png")})
    with guarded_session(allow=["127.0.0.2/32"]) as session, \
            pytest.raises(URLRefused, match=r"refused http://127\.0\.0\.1:\d+/admin/photo\.png: 127\.0\.0\.1 is not"):
        session.get(second_server.url("/photo.png"), timeout=10)
    assert second_server.hits == {"/photo.png": 1}
    assert http_server.hits == {}


def test_redirect_by_name_refused_at_the_connection(second_server, http_server):
    """A redirect to a host NAME (localhost) passes the literal check and is refused where the socket is made."""
    http_server.routes["/admin"] = (200, b"secret", {})
    port = http_server.httpd.server_address[1]
    second_server.routes["/photo.png"] = (302, b"", {"Location": f"http://localhost:{port}/admin"})
    with guarded_session(allow=["127.0.0.2/32"]) as session, \
            pytest.raises(URLRefused, match=r"refused localhost: (127\.0\.0\.1|::1) is not a public address"):
        session.get(second_server.url("/photo.png"), timeout=10)
    assert http_server.hits == {}


def test_guard_ignores_the_environments_proxy(second_server, http_server, monkeypatch):
    """With HTTP_PROXY set (here: the loopback server as a 'proxy'), the guarded fetch connects directly."""
    monkeypatch.setenv("HTTP_PROXY", http_server.url(""))
    second_server.routes["/ok.png"] = (200, b"direct", {})
    with guarded_session(allow=["127.0.0.2/32"]) as session:
        assert session.get(second_server.url("/ok.png"), timeout=10).content == b"direct"
    assert http_server.hits == {}
