"""The weights downloader against a real HTTP server on 127.0.0.1."""
import hashlib
import socket
import threading

import pytest

from breaking_nn import WeightsError
from breaking_nn import weights as w

BODY = bytes(range(256)) * 400  # 102,400 bytes standing in for the caffemodel


def spec_for(url, body=BODY):
    return w.WeightsFile(url=url, size=len(body), sha1=hashlib.sha1(body).hexdigest())


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_googlenet_facts():
    assert w.GOOGLENET.size == 53_533_754
    assert w.GOOGLENET.sha1 == "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    assert w.GOOGLENET.url == "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"


def test_good_download_is_installed_then_reused(http_server, tmp_path):
    http_server.routes["/m.caffemodel"] = (200, BODY, {})
    spec = spec_for(http_server.url("/m.caffemodel"))
    dest = tmp_path / "models" / "m.caffemodel"
    assert w.download_weights(dest, spec=spec, progress=False) == dest
    assert dest.read_bytes() == BODY
    assert leftovers(dest.parent) == ["m.caffemodel"]
    w.download_weights(dest, spec=spec, progress=False)
    assert http_server.hits["/m.caffemodel"] == 1  # verified file kept, not fetched again


def test_wrong_sha1_leaves_nothing(http_server, tmp_path):
    http_server.routes["/m"] = (200, BODY[::-1], {})
    dest = tmp_path / "m.caffemodel"
    with pytest.raises(WeightsError, match=r"SHA-1 .* expected .*Nothing was saved.*BREAKING_NN_WEIGHTS"):
        w.download_weights(dest, spec=spec_for(http_server.url("/m")), progress=False)
    assert leftovers(tmp_path) == []


def test_corrupt_existing_file_is_replaced(http_server, tmp_path):
    http_server.routes["/m"] = (200, BODY, {})
    dest = tmp_path / "m.caffemodel"
    dest.write_bytes(b"half a file")
    w.download_weights(dest, spec=spec_for(http_server.url("/m")), progress=False)
    assert dest.read_bytes() == BODY


def test_http_404(http_server, tmp_path):
    with pytest.raises(WeightsError, match="HTTP 404"):
        w.download_weights(tmp_path / "m", spec=spec_for(http_server.url("/missing")), progress=False)
    assert leftovers(tmp_path) == []


def test_refused_connection(refused_url, tmp_path):
    with pytest.raises(WeightsError, match=r"could not download .*ConnectionError.*make weights"):
        w.download_weights(tmp_path / "m", spec=spec_for(refused_url), progress=False, timeout=5)
    assert leftovers(tmp_path) == []


def test_connection_failures_are_said_in_words_without_urllib3s_reprs(refused_url, tmp_path):
    with pytest.raises(WeightsError) as refused:
        w.download_weights(tmp_path / "m", spec=spec_for(refused_url), progress=False, timeout=5)
    unresolvable = "http://bvlc-weights.invalid/bvlc_googlenet.caffemodel"  # .invalid never resolves (RFC 6761)
    with pytest.raises(WeightsError) as unresolved:
        w.download_weights(tmp_path / "m", spec=spec_for(unresolvable), progress=False, timeout=5)
    assert "it refused the connection (ConnectionError)" in str(refused.value)
    assert "no connection to bvlc-weights.invalid: its name does not resolve" in str(unresolved.value)
    for message in (str(refused.value), str(unresolved.value)):
        assert "Max retries" not in message and "HTTPConnectionPool" not in message and "0x" not in message
    assert leftovers(tmp_path) == []


def test_truncated_body(tmp_path):
    """A server that promises the whole file, sends half, and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_half():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY[: len(BODY) // 2])
        conn.close()

    thread = threading.Thread(target=serve_half, daemon=True)
    thread.start()
    try:
        with pytest.raises(WeightsError, match="incomplete|IncompleteRead|ChunkedEncoding|ProtocolError"):
            w.download_weights(tmp_path / "m", spec=spec_for(f"http://127.0.0.1:{port}/m"), progress=False)
    finally:
        thread.join(5)
        listener.close()
    assert leftovers(tmp_path) == []


def test_command_line(http_server, tmp_path, refused_url, capsys):
    assert w.main(["--dest", str(tmp_path / "g.caffemodel"), "--url", refused_url, "--quiet"]) == 1
    assert "error: could not download" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_resolve_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("BREAKING_NN_WEIGHTS", str(tmp_path / "env.caffemodel"))
    with pytest.raises(WeightsError, match="not at .*env.caffemodel"):
        w.resolve_weights(download=False)
    (tmp_path / "env.caffemodel").write_bytes(b"x")
    assert w.resolve_weights(download=False) == tmp_path / "env.caffemodel"


def test_googlenet_mirrors_serve_the_same_file_and_match_the_model_file():
    from breaking_nn import paths
    from breaking_nn.model_file import read_model_file

    assert w.GOOGLENET.urls[0] == w.GOOGLENET.url
    assert [u.split("://")[1].split("/")[0] for u in w.GOOGLENET.urls] == [
        "dl.caffe.berkeleyvision.org", "apache-mxnet.s3-accelerate.dualstack.amazonaws.com", "www.deepdetect.com"]
    download = read_model_file(paths.googlenet_model_file()).download
    assert download.urls == w.GOOGLENET.urls and download.sha1 == w.GOOGLENET.sha1 and download.size == w.GOOGLENET.size


def test_sources_are_tried_in_order_until_one_serves_the_right_file(http_server, refused_url, tmp_path):
    """The first source is dead, the second serves a wrong file, the third the right one."""
    http_server.routes["/wrong.caffemodel"] = (200, BODY[::-1], {})
    http_server.routes["/right.caffemodel"] = (200, BODY, {})
    spec = w.WeightsFile(url=refused_url, mirrors=(http_server.url("/wrong.caffemodel"), http_server.url("/right.caffemodel")),
                         size=len(BODY), sha1=hashlib.sha1(BODY).hexdigest())
    dest = tmp_path / "m.caffemodel"
    assert w.download_weights(dest, spec=spec, progress=False, timeout=5) == dest
    assert dest.read_bytes() == BODY
    assert http_server.hits == {"/wrong.caffemodel": 1, "/right.caffemodel": 1}
    assert leftovers(tmp_path) == ["m.caffemodel"]


def test_when_no_source_answers_the_error_names_every_url_tried(http_server, refused_url, tmp_path):
    http_server.routes["/wrong.caffemodel"] = (200, BODY[::-1], {})
    urls = [refused_url, http_server.url("/wrong.caffemodel"), http_server.url("/gone.caffemodel")]
    spec = w.WeightsFile(url=urls[0], mirrors=tuple(urls[1:]), size=len(BODY), sha1=hashlib.sha1(BODY).hexdigest())
    with pytest.raises(WeightsError) as info:
        w.download_weights(tmp_path / "m.caffemodel", spec=spec, progress=False, timeout=5)
    message = str(info.value)
    assert "from any of its 3 sources" in message
    positions = [message.index(url) for url in urls]
    assert positions == sorted(positions)  # in the order they were tried
    assert "ConnectionError" in message and "SHA-1" in message and "HTTP 404" in message
    assert "Nothing was saved" in message and 'load_googlenet("generated")' in message
    assert leftovers(tmp_path) == []


def test_the_how_to_names_the_python_argument_beside_the_commands(tmp_path):
    text = w.how_to_get(tmp_path / "g.caffemodel")
    assert "make weights" in text and "--weights generated" in text and 'load_googlenet("generated")' in text
