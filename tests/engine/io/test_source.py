"""read_source against the real file system and a real HTTP server on loopback."""

from __future__ import annotations

import functools
import http.server
import io
import ipaddress
import pathlib
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from imgx import InputError
from imgx.io.source import read_source

PAYLOAD = b"\xff\xd8\xff\xe0 not really a jpeg, bytes are bytes"
LOOPBACK = ["127.0.0.1"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(2.5)
        if self.path.startswith("/redirect/"):  # /redirect/<percent-encoded target>
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(self.path[len("/redirect/") :]))
            self.end_headers()
            return
        if self.path.startswith("/stream/"):  # /stream/<n>: n bytes with no Content-Length, until the connection ends
            self.send_response(200)
            self.end_headers()
            remaining = int(self.path.rsplit("/", 1)[1])
            try:
                while remaining > 0:
                    self.wfile.write(b"x" * min(remaining, 1 << 16))
                    remaining -= 1 << 16
            except OSError:  # the client stopped reading at its cap
                pass
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Safety net: a test here may connect to loopback only, so a guard bug cannot reach a real internal address."""
    connect = socket.socket.connect

    def checked(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]  # type: ignore[index]
            assert ipaddress.ip_address(host.split("%")[0]).is_loopback, f"test tried to connect to {host}"
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", checked)


@pytest.fixture
def files(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "a.jpg").write_bytes(PAYLOAD)
    (tmp_path / "café 靴.jpg").write_bytes(PAYLOAD)
    (tmp_path / "folder").mkdir()
    return tmp_path


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # the timeout test hangs up on a slow handler
        pass


@pytest.fixture
def server(files: pathlib.Path) -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(files))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_local_path(files: pathlib.Path) -> None:
    assert read_source(str(files / "a.jpg")) == PAYLOAD
    assert read_source(str(files / "café 靴.jpg")) == PAYLOAD


def test_relative_local_path(files: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files)
    assert read_source("a.jpg") == PAYLOAD


def test_file_uri(files: pathlib.Path) -> None:
    assert read_source((files / "a.jpg").as_uri()) == PAYLOAD
    assert read_source((files / "café 靴.jpg").as_uri()) == PAYLOAD  # percent-encoded
    assert read_source("file://localhost" + urllib.parse.quote(str(files / "a.jpg"))) == PAYLOAD


def test_file_uri_on_another_host_is_refused(files: pathlib.Path) -> None:
    with pytest.raises(InputError, match="expected file:///absolute/path"):
        read_source("file://fileserver" + str(files / "a.jpg"))


def test_missing_path(files: pathlib.Path) -> None:
    missing = files / "nope.jpg"
    with pytest.raises(InputError, match=f"^source not found: {missing}$"):
        read_source(str(missing))
    with pytest.raises(InputError, match="source not found"):
        read_source(missing.as_uri())
    with pytest.raises(InputError, match="source not found"):
        read_source(str(files / "a.jpg" / "child.jpg"))


def test_directory(files: pathlib.Path) -> None:
    with pytest.raises(InputError, match=f"^source is a directory: {files / 'folder'}$"):
        read_source(str(files / "folder"))


def test_empty_and_nul_sources() -> None:
    with pytest.raises(InputError, match="source is empty"):
        read_source("")
    with pytest.raises(InputError, match="could not read"):
        read_source("a\x00b.jpg")


def test_http(server: str) -> None:
    assert read_source(f"{server}/a.jpg", allowed_hosts=LOOPBACK) == PAYLOAD
    assert read_source(f"{server}/{urllib.parse.quote('café 靴.jpg')}", allowed_hosts=LOOPBACK) == PAYLOAD


def test_http_404(server: str) -> None:
    with pytest.raises(InputError, match=rf"^could not fetch {server}/nope.jpg: HTTP 404"):
        read_source(f"{server}/nope.jpg", allowed_hosts=LOOPBACK)


def test_http_timeout(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match=r"could not fetch .*/slow: timed out after 0.2 s"):
        read_source(f"{server}/slow", timeout=0.2, allowed_hosts=LOOPBACK)
    assert time.monotonic() - start < 1.5  # the handler answers after 2.5 s: the 0.2 s timeout cut it short


def test_http_connection_refused() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError, match=rf"could not fetch http://127.0.0.1:{port}/a.jpg: .*refused"):
        read_source(f"http://127.0.0.1:{port}/a.jpg", timeout=5, allowed_hosts=LOOPBACK)


def test_pyarrow_scheme(files: pathlib.Path) -> None:
    """Any other scheme goes through pyarrow.fs (s3://, gs://, hdfs:// in production; local:// here, offline)."""
    assert read_source(f"local://{files / 'a.jpg'}") == PAYLOAD
    with pytest.raises(InputError, match="source not found"):
        read_source(f"local://{files / 'nope.jpg'}")
    with pytest.raises(InputError, match="source is a directory"):
        read_source(f"local://{files / 'folder'}")


def test_unknown_scheme() -> None:
    with pytest.raises(InputError, match=r"with scheme foo://; expected a local path, file://, http\(s\)://"):
        read_source("foo://bucket/a.jpg")


def test_paths_with_colons_are_local(files: pathlib.Path) -> None:
    (files / "sku:42.jpg").write_bytes(PAYLOAD)
    assert read_source(str(files / "sku:42.jpg")) == PAYLOAD


# ---------------------------------------------------------------- the guard against internal addresses (SSRF)


@pytest.fixture(scope="module")
def coffee_jpeg() -> bytes:
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_loopback_is_refused_by_default_and_allowed_explicitly(
    server: str, files: pathlib.Path, coffee_jpeg: bytes
) -> None:
    (files / "coffee.jpg").write_bytes(coffee_jpeg)
    with pytest.raises(
        InputError,
        match=rf"^could not fetch {server}/coffee.jpg: refused 127.0.0.1, a loopback address; list it in "
        r"input.allowed_hosts to allow it$",
    ):
        read_source(f"{server}/coffee.jpg")
    assert read_source(f"{server}/coffee.jpg", allowed_hosts=["127.0.0.1"]) == coffee_jpeg
    assert read_source(f"{server}/coffee.jpg", allowed_hosts=["127.0.0.0/8"]) == coffee_jpeg


def test_names_are_checked_after_resolution(server: str) -> None:
    port = urllib.parse.urlsplit(server).port
    with pytest.raises(InputError, match=r"refused localhost \((127.0.0.1|::1)\), a loopback address"):
        read_source(f"http://localhost:{port}/a.jpg")
    assert read_source(f"http://LOCALHOST:{port}/a.jpg", allowed_hosts=["localhost"]) == PAYLOAD


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a private address"),
        ("http://10.0.0.7/a.jpg", "a private address"),
        ("http://172.16.3.4/a.jpg", "a private address"),
        ("http://192.168.1.1/a.jpg", "a private address"),
        ("http://100.64.0.1/a.jpg", "a non-public address"),
        ("http://0.0.0.0/a.jpg", "an unspecified address"),
        ("http://224.0.0.1/a.jpg", "a multicast address"),
        ("http://[::1]/a.jpg", "a loopback address"),
        ("http://[fe80::1]/a.jpg", "a link-local address"),
        ("http://[::ffff:169.254.169.254]/a.jpg", "a link-local address"),
        ("http://2130706433/a.jpg", "a loopback address"),  # 127.0.0.1 as one decimal number
    ],
)
def test_internal_addresses_are_refused_before_connecting(url: str, kind: str) -> None:
    with pytest.raises(InputError, match=rf"^could not fetch {re.escape(url)}: refused .*, {kind}; list it in"):
        read_source(url, timeout=2)


def test_allowed_hosts_do_not_open_other_addresses(server: str) -> None:
    with pytest.raises(InputError, match=r"refused 169\.254\.169\.254, a link-local address"):
        read_source(
            "http://169.254.169.254/latest/meta-data/", allowed_hosts=["127.0.0.1", "10.0.0.0/8", "cdn.example"]
        )


def test_a_redirect_to_an_internal_address_is_refused(server: str) -> None:
    target = urllib.parse.quote("http://169.254.169.254/latest/meta-data/iam/", safe="")
    with pytest.raises(
        InputError,
        match=rf"^could not fetch {server}/redirect/{target}: redirected to http://169.254.169.254/latest/meta-data/"
        r"iam/; refused 169.254.169.254, a link-local address",
    ):
        read_source(f"{server}/redirect/{target}", allowed_hosts=LOOPBACK)


def test_a_redirect_to_another_scheme_is_refused(server: str, files: pathlib.Path) -> None:
    ftp = urllib.parse.quote("ftp://127.0.0.1/a.jpg", safe="")  # urllib alone would follow this one
    with pytest.raises(InputError, match=r"refused a redirect to ftp://127.0.0.1/a.jpg: only http\(s\) redirects"):
        read_source(f"{server}/redirect/{ftp}", allowed_hosts=LOOPBACK)
    local = urllib.parse.quote((files / "a.jpg").as_uri(), safe="")
    with pytest.raises(InputError, match=r"Redirection to url 'file:///.*' is not allowed"):
        read_source(f"{server}/redirect/{local}", allowed_hosts=LOOPBACK)


def test_an_allowed_redirect_is_followed(server: str) -> None:
    assert read_source(f"{server}/redirect/%2Fa.jpg", allowed_hosts=LOOPBACK) == PAYLOAD


def test_content_length_over_the_cap(server: str, files: pathlib.Path) -> None:
    (files / "huge.jpg").write_bytes(b"x" * 300_000)
    with pytest.raises(
        InputError, match=r"^could not fetch .*/huge.jpg: 300000 bytes is over the cap of 100000 bytes$"
    ):
        read_source(f"{server}/huge.jpg", allowed_hosts=LOOPBACK, max_bytes=100_000)
    assert len(read_source(f"{server}/huge.jpg", allowed_hosts=LOOPBACK, max_bytes=300_000)) == 300_000


def test_a_stream_without_length_is_cut_at_the_cap(server: str) -> None:
    with pytest.raises(InputError, match=r"^could not fetch .*/stream/5000000: larger than the cap of 100000 bytes"):
        read_source(f"{server}/stream/5000000", allowed_hosts=LOOPBACK, max_bytes=100_000)
    assert len(read_source(f"{server}/stream/1000", allowed_hosts=LOOPBACK, max_bytes=1000)) == 1000


def test_object_store_source(s3_bucket: str, coffee_jpeg: bytes) -> None:
    from imgx.io import fs

    fs.write_bytes_atomic(f"s3://{s3_bucket}/food/coffee.jpg", coffee_jpeg)
    assert read_source(f"s3://{s3_bucket}/food/coffee.jpg") == coffee_jpeg
    with pytest.raises(InputError, match=rf"^source not found: s3://{s3_bucket}/food/nope.jpg$"):
        read_source(f"s3://{s3_bucket}/food/nope.jpg")
    with pytest.raises(
        InputError, match=rf"could not read s3://{s3_bucket}/food/coffee.jpg: \d+ bytes is over the cap"
    ):
        read_source(f"s3://{s3_bucket}/food/coffee.jpg", max_bytes=1000)
