"""read_source against the real file system and a real HTTP server on loopback."""

from __future__ import annotations

import functools
import http.server
import pathlib
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from imgx import InputError
from imgx.io.source import read_source

PAYLOAD = b"\xff\xd8\xff\xe0 not really a jpeg, bytes are bytes"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(1.0)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


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
    assert read_source(f"{server}/a.jpg") == PAYLOAD
    assert read_source(f"{server}/{urllib.parse.quote('café 靴.jpg')}") == PAYLOAD


def test_http_404(server: str) -> None:
    with pytest.raises(InputError, match=rf"^could not fetch {server}/nope.jpg: HTTP 404"):
        read_source(f"{server}/nope.jpg")


def test_http_timeout(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match=r"could not fetch .*/slow: timed out after 0.2 s"):
        read_source(f"{server}/slow", timeout=0.2)
    assert time.monotonic() - start < 0.9


def test_http_connection_refused() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError, match=rf"could not fetch http://127.0.0.1:{port}/a.jpg: .*refused"):
        read_source(f"http://127.0.0.1:{port}/a.jpg", timeout=5)


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
