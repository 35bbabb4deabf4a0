"""imgx.io.fs against the real local file system and a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import http.server
import io
import os
import pathlib
import stat
import threading
import time
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from _s3 import MotoS3
from imgx import InputError, OutputError
from imgx.io import fs
from imgx.io.fs import RetryPolicy

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5)


@pytest.fixture(scope="module")
def coffee_jpeg() -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# ---------------------------------------------------------------- local


def test_local_round_trip(tmp_path: pathlib.Path, coffee_jpeg: bytes) -> None:
    target = tmp_path / "out" / "food" / "coffee.jpg"
    fs.write_bytes_atomic(str(target), coffee_jpeg)
    assert target.read_bytes() == coffee_jpeg
    assert fs.read_bytes(str(target)) == coffee_jpeg
    assert fs.read_bytes(target.as_uri()) == coffee_jpeg
    assert fs.exists(str(target)) and fs.exists(str(tmp_path / "out"))
    assert not fs.exists(str(tmp_path / "nope.jpg"))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["coffee.jpg"]  # no temp file left


def test_local_write_keeps_umask_mode(tmp_path: pathlib.Path) -> None:
    old = os.umask(0o027)
    try:
        fs.write_bytes_atomic(str(tmp_path / "a.bin"), b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640


def test_local_failed_write_leaves_nothing(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.jpg").mkdir()  # the rename onto a folder fails after the temp file is written
    with pytest.raises(OutputError, match=r"^could not write .*a\.jpg: "):
        fs.write_bytes_atomic(str(tmp_path / "a.jpg"), b"payload")
    assert [p.name for p in tmp_path.iterdir()] == ["a.jpg"]


def test_local_read_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InputError, match=r"^source not found: "):
        fs.read_bytes(str(tmp_path / "nope.jpg"))
    with pytest.raises(InputError, match=r"^source is a directory: "):
        fs.read_bytes(str(tmp_path))


def test_local_walk_streams_files_in_order(tmp_path: pathlib.Path) -> None:
    for name in ("b/2.jpg", "b/1.jpg", "a.jpg", "c/d/3.jpg", ".hidden.tmp", "_imgx/run.lock"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    walked = fs.walk(str(tmp_path))
    assert next(walked).base_name == "a.jpg"  # a generator: the first file comes before the rest is listed
    rest = [os.path.relpath(info.path, tmp_path) for info in walked]
    assert rest == ["b/1.jpg", "b/2.jpg", "c/d/3.jpg"]
    with pytest.raises(InputError, match="source not found"):
        list(fs.walk(str(tmp_path / "missing")))


@pytest.mark.parametrize(
    ("relative", "problem"),
    [
        ("../x.jpg", "'..'"),
        ("a/../../x.jpg", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/x.jpg", "absolute"),
        ("a\x00b.jpg", "NUL"),
        ("a\\..\\b.jpg", "backslash"),
        ("s3://other/x.jpg", "URI"),
        ("", "empty"),
        ("./", "base itself"),
    ],
)
def test_join_refuses_to_escape(relative: str, problem: str) -> None:
    with pytest.raises(OutputError, match=f"to put under 's3://b/out'; .*{problem}"):
        fs.join("s3://b/out", relative)
    with pytest.raises(InputError):
        fs.join("/data", relative, error=InputError)


def test_join() -> None:
    assert fs.join("s3://b/out/", "food/./coffee.jpg") == "s3://b/out/food/coffee.jpg"
    assert fs.join("/data/out", "a//b.jpg") == "/data/out/a/b.jpg"
    assert fs.join("out", "..a.jpg") == "out/..a.jpg"  # a name that starts with dots is not '..'


def test_unknown_scheme() -> None:
    with pytest.raises(InputError, match=r"with scheme foo://; expected a local path, file://, or a scheme"):
        fs.read_bytes("foo://bucket/a.jpg")


def test_local_checks(tmp_path: pathlib.Path) -> None:
    fs.check_writable(str(tmp_path / "new" / "out"))
    assert list((tmp_path / "new" / "out" / "_imgx").iterdir()) == []  # the probe is gone
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"^got output.dir '.*file/out': "):
        fs.check_writable(str(tmp_path / "file" / "out"))
    fs.check_readable(str(tmp_path / "file"))
    with pytest.raises(InputError, match=r"^got input.path '.*nope': nothing exists there; fix the path$"):
        fs.check_readable(str(tmp_path / "nope"))


def test_local_run_marker(tmp_path: pathlib.Path) -> None:
    marker = fs.acquire_run_marker(str(tmp_path), "run-1")
    with pytest.raises(
        OutputError, match=r"run run-1 on .* is writing into it; .*delete .*run.lock if that run is dead"
    ):
        fs.acquire_run_marker(str(tmp_path), "run-2")
    fs.release_run_marker(marker, "run-2")  # not ours: kept
    assert fs.exists(marker)
    fs.release_run_marker(marker, "run-1")
    assert not fs.exists(marker)
    fs.release_run_marker(fs.acquire_run_marker(str(tmp_path), "run-2"), "run-2")


# ---------------------------------------------------------------- retries and the classifier


def test_retries_transient_then_succeeds() -> None:
    calls = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionResetError(104, "Connection reset by peer")
        return "ok"

    assert fs.with_retries(flaky, uri="s3://b/k", policy=FAST) == "ok"
    assert len(calls) == 3


def test_retries_are_bounded_and_name_the_uri() -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise OSError("AWS Error SLOW_DOWN during GetObject operation: Please reduce your request rate.")

    with pytest.raises(
        InputError, match=r"^could not read s3://b/k: AWS Error SLOW_DOWN .* \(gave up after 3 attempts"
    ):
        fs.with_retries(down, uri="s3://b/k", policy=FAST)
    assert len(calls) == 3
    with pytest.raises(OutputError, match="gave up after 1 attempts"):
        fs.with_retries(down, uri="s3://b/k", action="write", error=OutputError, policy=RetryPolicy(total_seconds=0))


def test_permanent_errors_are_not_retried() -> None:
    calls = []

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("nope")

    with pytest.raises(FileNotFoundError):
        fs.with_retries(missing, uri="s3://b/k", policy=FAST)
    assert calls == [1]


# ---------------------------------------------------------------- S3 (moto on loopback)


def test_s3_round_trip(s3_bucket: str, coffee_jpeg: bytes) -> None:
    uri = f"s3://{s3_bucket}/catalog/food/coffee.jpg"
    assert not fs.exists(uri)
    fs.write_bytes_atomic(uri, coffee_jpeg)
    assert fs.read_bytes(uri) == coffee_jpeg
    assert fs.exists(uri) and fs.exists(f"s3://{s3_bucket}/catalog")
    decoded = np.asarray(Image.open(io.BytesIO(fs.read_bytes(uri))))
    assert decoded.shape == (400, 600, 3)
    with pytest.raises(InputError, match=f"^source not found: s3://{s3_bucket}/catalog/nope.jpg$"):
        fs.read_bytes(f"s3://{s3_bucket}/catalog/nope.jpg")


def test_s3_client_is_cached_per_bucket(s3_bucket: str) -> None:
    first, path = fs.resolve(f"s3://{s3_bucket}/a/b.jpg")
    second, _ = fs.resolve(f"s3://{s3_bucket}/c.jpg")
    assert first is second and path == f"{s3_bucket}/a/b.jpg"


def test_s3_walk(s3_bucket: str) -> None:
    for key in ("cat/b/2.jpg", "cat/b/1.jpg", "cat/a.jpg", "cat/_imgx/run.lock", "other.jpg"):
        fs.write_bytes_atomic(f"s3://{s3_bucket}/{key}", b"x")
    assert [info.path for info in fs.walk(f"s3://{s3_bucket}/cat")] == [
        f"{s3_bucket}/cat/a.jpg",
        f"{s3_bucket}/cat/b/1.jpg",
        f"{s3_bucket}/cat/b/2.jpg",
    ]
    assert [info.size for info in fs.walk(f"s3://{s3_bucket}/cat/b/")] == [1, 1]


def test_s3_reader_never_sees_a_partial_object(s3_bucket: str) -> None:
    """Versions of 6 MiB (a multipart upload) overwrite each other while a reader polls: every read is whole."""
    uri = f"s3://{s3_bucket}/big.bin"
    versions = [bytes([i]) * (6 << 20) for i in range(1, 4)]
    seen: list[bytes] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                seen.append(fs.read_bytes(uri, policy=FAST))
            except InputError as exc:
                assert str(exc).startswith("source not found")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in versions:
            fs.write_bytes_atomic(uri, version)
    finally:
        done.set()
        thread.join(timeout=30)
    assert all(data in versions for data in seen)
    assert fs.read_bytes(uri) == versions[-1]


def test_s3_failed_write_leaves_no_object(s3_server: MotoS3, s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/never.jpg"
    s3_server.stop()
    try:
        with pytest.raises(
            OutputError, match=rf"^could not write {uri}: .*Could not connect.*gave up after 3 attempts"
        ):
            fs.write_bytes_atomic(uri, b"x" * (6 << 20), policy=FAST)
    finally:
        s3_server.start()
    assert not fs.exists(uri)
    assert s3_server.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_s3_read_retries_while_the_server_is_down(s3_server: MotoS3, s3_bucket: str, coffee_jpeg: bytes) -> None:
    uri = f"s3://{s3_bucket}/coffee.jpg"
    fs.write_bytes_atomic(uri, coffee_jpeg)
    s3_server.stop()
    restart = threading.Timer(2.0, s3_server.start)
    restart.start()
    try:
        start = time.monotonic()
        assert fs.read_bytes(uri, policy=RetryPolicy(attempts=30, base_delay=0.1, max_delay=0.5)) == coffee_jpeg
        assert time.monotonic() - start >= 1.5
    finally:
        restart.join()


def test_s3_read_gives_up_with_one_error(s3_server: MotoS3, s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/coffee.jpg"
    s3_server.stop()
    try:
        with pytest.raises(InputError) as caught:
            fs.read_bytes(uri, policy=FAST)
    finally:
        s3_server.start()
    message = str(caught.value)
    assert message.startswith(f"could not read {uri}: ") and "gave up after 3 attempts" in message
    assert "\n" not in message and "Request ID" not in message


def test_classifier_on_real_moto_messages(s3_server: MotoS3, s3_bucket: str) -> None:
    """The messages pyarrow raises for real failures against the server, classified."""
    filesystem, _ = fs.resolve(f"s3://{s3_bucket}/x")
    with pytest.raises(OSError) as missing_bucket, filesystem.open_output_stream("no-such-bucket-imgx/x") as out:
        out.write(b"x")
    assert "NO_SUCH_BUCKET" in str(missing_bucket.value) and not fs.is_transient(missing_bucket.value)
    with pytest.raises(FileNotFoundError) as missing_key:
        filesystem.open_input_stream(f"{s3_bucket}/nope").read()
    assert not fs.is_transient(missing_key.value)
    s3_server.stop()
    try:
        with pytest.raises(OSError) as down:
            filesystem.open_input_stream(f"{s3_bucket}/nope").read()
    finally:
        s3_server.start()
    assert "NETWORK_CONNECTION" in str(down.value) and fs.is_transient(down.value)


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("AWS Error SLOW_DOWN during PutObject operation: Please reduce your request rate.", True),
        ("AWS Error UNKNOWN (HTTP status 503) during GetObject operation: Service Unavailable", True),
        ("AWS Error UNKNOWN (HTTP status 500) during HeadObject operation: No response body.", True),
        ("AWS Error UNKNOWN (HTTP status 403) during HeadObject operation: No response body.", False),
        ("AWS Error ACCESS_DENIED during HeadObject operation: No response body.", False),
        ("AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 56, Failure when receiving data", True),
        ("AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 28, Timeout was reached", True),
        ("google::cloud::Status(UNAVAILABLE: Retry policy exhausted in ReadObject)", True),
        ("google::cloud::Status(NOT_FOUND: No such object: b/k)", False),
    ],
)
def test_classifier_on_messages(message: str, transient: bool) -> None:
    assert fs.is_transient(OSError(message)) is transient


def test_check_readable_and_writable_ok(s3_server: MotoS3, s3_bucket: str) -> None:
    s3_client = s3_server.client()
    fs.write_bytes_atomic(f"s3://{s3_bucket}/cat/a.jpg", b"x")
    fs.check_readable(f"s3://{s3_bucket}/cat")
    fs.check_readable(f"s3://{s3_bucket}/cat/a.jpg")
    fs.check_writable(f"s3://{s3_bucket}/out")
    # The probe was deleted (pyarrow leaves an empty "out/_imgx/" folder marker in its place).
    assert [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="out/")["Contents"]] == ["out/_imgx/"]


def test_checks_name_a_missing_bucket(s3_bucket: str) -> None:
    with pytest.raises(
        OutputError, match=r"^got output.dir 's3://no-such-bucket-imgx/x': the bucket does not exist; create it or fix"
    ):
        fs.check_writable("s3://no-such-bucket-imgx/x")
    with pytest.raises(
        InputError, match=r"^got input.path 's3://no-such-bucket-imgx/x': the bucket does not exist; create it or fix"
    ):
        fs.check_readable("s3://no-such-bucket-imgx/x")
    with pytest.raises(InputError, match=rf"^got input.path 's3://{s3_bucket}/nope': nothing exists there"):
        fs.check_readable(f"s3://{s3_bucket}/nope")


@pytest.fixture
def enforced_auth(s3_server: MotoS3, s3_bucket: str):
    """moto checking signatures and IAM policies; users made before it is switched on."""
    reader = s3_server.create_user(f"reader-{s3_bucket[-6:]}", ["s3:GetObject", "s3:ListBucket"])
    s3_server.client().put_object(Bucket=s3_bucket, Key="cat/a.jpg", Body=b"x")
    s3_server.set_auth(True)
    try:
        yield reader
    finally:
        s3_server.set_auth(False)


def test_checks_name_wrong_credentials(s3_bucket: str, enforced_auth, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNIMGXTEST")
    with pytest.raises(
        OutputError,
        match=rf"^got output.dir 's3://{s3_bucket}/out': the access key from AWS_ACCESS_KEY_ID is unknown to the "
        r"server; fix the key",
    ):
        fs.check_writable(f"s3://{s3_bucket}/out")
    key, _ = enforced_auth
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(OutputError, match=r"the secret key does not match the access key .*fix AWS_SECRET_ACCESS_KEY"):
        fs.check_writable(f"s3://{s3_bucket}/out")


def test_checks_name_a_read_only_prefix(s3_bucket: str, enforced_auth, monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = enforced_auth
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    fs.check_readable(f"s3://{s3_bucket}/cat/a.jpg")
    assert fs.read_bytes(f"s3://{s3_bucket}/cat/a.jpg") == b"x"
    with pytest.raises(
        OutputError,
        match=rf"^got output.dir 's3://{s3_bucket}/out': access denied with the credentials from AWS_ACCESS_KEY_ID; "
        r"grant them s3:PutObject",
    ):
        fs.check_writable(f"s3://{s3_bucket}/out")


def test_s3_run_marker_is_exclusive(s3_bucket: str) -> None:
    prefix = f"s3://{s3_bucket}/out"
    marker = fs.acquire_run_marker(prefix, "run-1")
    assert marker == f"{prefix}/_imgx/run.lock"
    with pytest.raises(OutputError, match=r"run run-1 on .* is writing into it"):
        fs.acquire_run_marker(prefix, "run-2")
    fs.release_run_marker(marker, "run-1")
    assert not fs.exists(marker)
    fs.release_run_marker(fs.acquire_run_marker(prefix, "run-3"), "run-3")


class _Throttling(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request with 503 SlowDown, as S3 does under load."""

    requests: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).requests.append(self.command)
        body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        body += b"<Message>Please reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_throttling_is_retried_then_reported(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real pyarrow messages for 503 SlowDown are transient: retried as the policy allows, then one clear error."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    _Throttling.requests = []
    try:
        with pytest.raises(
            InputError, match=rf"^could not read s3://{s3_bucket}/a.jpg: .*503.*gave up after 3 attempts"
        ):
            fs.read_bytes(f"s3://{s3_bucket}/a.jpg", policy=FAST)
        assert _Throttling.requests == ["HEAD"] * 3
        with pytest.raises(OutputError, match=r"SLOW_DOWN.*gave up after 3 attempts"):
            fs.write_bytes_atomic(f"s3://{s3_bucket}/a.jpg", b"x", policy=FAST)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
