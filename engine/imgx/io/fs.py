"""One file-system layer for local folders and object stores (``s3://``, ``gs://`` and any ``pyarrow.fs`` scheme).

Every catalog, image, output, ledger and run-state path is a URI, so a Ray cluster needs no shared file system:

- a plain path or ``file://`` URI is the local file system;
- ``s3://bucket/key`` and ``gs://bucket/key`` (also ``gcs://``) are object stores, with credentials and endpoints
  taken the standard way: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_PROFILE`` and ``~/.aws``; for GCS,
  ``GOOGLE_APPLICATION_CREDENTIALS`` and the metadata server. Options that ``pyarrow.fs.FileSystem.from_uri``
  reads from a URI's query (``?endpoint_override=...&region=...``) work too;
- any other scheme ``pyarrow.fs.FileSystem.from_uri`` knows (``hdfs://``, ``local://``) goes through it as is.

Object-store clients are built once per (scheme, bucket, query, credential environment) per process and reused.
The S3 client's own retries are turned off: :func:`with_retries` retries transient errors (5xx, throttling,
connection refused or reset, timeouts) with exponential backoff and full jitter, within a bounded number of
attempts and seconds, then raises :class:`imgx.InputError` (reads) or :class:`imgx.OutputError` (writes) naming
the URI and the last error. Permanent errors (a missing object or bucket, access denied) are not retried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import functools
import json
import os
import random
import re
import socket
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ImgxError, InputError, OutputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = [
    "DEFAULT_RETRY",
    "RUN_MARKER",
    "SINGLE_PUT_BYTES",
    "RetryPolicy",
    "absolute",
    "acquire_run_marker",
    "atomic_output",
    "check_readable",
    "check_writable",
    "create_exclusive",
    "delete",
    "delete_tree",
    "exists",
    "is_local",
    "is_transient",
    "join",
    "names",
    "open_input",
    "read_bytes",
    "release_run_marker",
    "resolve",
    "scheme_of",
    "walk",
    "with_retries",
    "write_bytes_atomic",
]

T = TypeVar("T")

#: Where :func:`acquire_run_marker` puts its marker, relative to the output prefix.
RUN_MARKER = "_imgx/run.lock"

# Object stores whose pyarrow paths are "<bucket>/<key>": one client per bucket, reused.
_BUCKET_SCHEMES = frozenset({"s3", "gs", "gcs"})
# Environment that changes which endpoint or credentials a client uses: part of the cache key, so a process that
# changes it (tests, a notebook) gets a new client instead of a stale one.
_CLIENT_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "STORAGE_EMULATOR_HOST",
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How transient errors are retried: at most ``attempts`` tries and ``total_seconds`` of waiting.

    The n-th wait is a random time in ``[0, min(max_delay, base_delay * 2**n)]`` ("full jitter", so thousands of
    workers hitting a throttled bucket do not retry in step); a wait that would pass ``total_seconds`` since the
    first try is not taken.
    """

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 8.0
    total_seconds: float = 60.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2**retry))


#: The policy every function here uses unless given another.
DEFAULT_RETRY = RetryPolicy()

# Error codes in pyarrow's messages ("AWS Error SLOW_DOWN during GetObject operation: ...", "AWS Error UNKNOWN
# (HTTP status 503) during ...") and curl's ("curlCode: 7, Could not connect to server").
_AWS_CODE = re.compile(r"AWS Error (\w+)(?: \(HTTP status (\d+)\))?")
_TRANSIENT_AWS = frozenset(
    {
        "NETWORK_CONNECTION",
        "SLOW_DOWN",
        "THROTTLING",
        "THROTTLING_EXCEPTION",
        "REQUEST_LIMIT_EXCEEDED",
        "REQUEST_TIMEOUT",
        "SERVICE_UNAVAILABLE",
        "INTERNAL_FAILURE",
        "INTERNAL_ERROR",
        "REQUEST_TIMEOUT_EXCEPTION",
        "PROVISIONED_THROUGHPUT_EXCEEDED",
    }
)
_DENIED_AWS = frozenset(
    {"ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "MISSING_AUTHENTICATION_TOKEN",
     "INVALID_CLIENT_TOKEN_ID", "EXPIRED_TOKEN", "UNRECOGNIZED_CLIENT", "INVALID_SIGNATURE", "ACCESS_DENIED_EXCEPTION"}
)  # fmt: skip
_TRANSIENT_TEXT = re.compile(
    r"curlCode: (6|7|18|28|52|55|56)\b|connection (reset|refused|aborted)|timed? ?out|temporarily unavailable"
    r"|broken pipe|\b(500|502|503|504)\b|UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|too many requests|\b429\b",
    re.IGNORECASE,
)
_TRANSIENT_ERRNO = frozenset(
    {errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE, errno.EAGAIN}
)


def scheme_of(uri: str) -> str:
    """The URI scheme in lower case, or ``""`` for a plain path (incl. ``C:\\...`` and names containing ':')."""
    head, sep, _ = uri.partition("://")
    if sep and len(head) > 1 and head.isascii() and head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return head.lower()
    return "file" if uri.lower().startswith("file:/") else ""


def is_local(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is on the local file system (a plain path or a ``file://`` URI)."""
    return scheme_of(os.fspath(location)) in ("", "file")


def absolute(location: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """``location`` from a recipe or the command line, made absolute: an object-store URI as written (less a
    trailing ``/``); a ``file://`` URI as its local path; a local path with ``~`` expanded and resolved against
    ``base`` (symlinks resolved)."""
    text = os.fspath(location)
    scheme = scheme_of(text)
    if scheme == "file":
        return resolve(text)[1]
    if scheme:
        head, _, rest = text.partition("://")
        return f"{head}://{rest.rstrip('/')}" if rest.strip("/") else text
    path = os.path.expanduser(text)
    return os.path.realpath(os.path.join(os.fspath(base), path))


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: 5xx, throttling, a refused/reset connection, a timeout.

    pyarrow raises plain ``OSError`` for object-store failures with the AWS error code (or the HTTP status) and the
    curl error in the message; those are classified by their text. A missing object, a missing bucket and access
    denied are permanent.
    """
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return False
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNO:
        return True
    text = str(exc)
    match = _AWS_CODE.search(text)
    if match:
        code, status = match.group(1), match.group(2)
        if code in _TRANSIENT_AWS:
            return True
        if code in _DENIED_AWS or code.startswith(("NO_SUCH", "INVALID", "RESOURCE_NOT_FOUND")):
            return False
        if status:
            return status.startswith("5") or status == "429"
    return bool(_TRANSIENT_TEXT.search(text))


def with_retries(
    call: Callable[[], T],
    *,
    uri: str,
    action: str = "read",
    error: type[ImgxError] = InputError,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> T:
    """``call()``, retried on transient errors (:func:`is_transient`) as ``policy`` allows.

    :param call: the operation; its exceptions are classified, never swallowed.
    :param uri: named in the error.
    :param action: the verb for the message: ``could not <action> <uri>: <last error> (gave up after N attempts in
        S s)``.
    :param error: the imgx error raised once the retries are spent (``InputError`` for reads, ``OutputError`` for
        writes). A permanent error is re-raised unchanged for the caller to word.
    :raises error: transient errors to the end, with ``__cause__`` the last one.
    """
    start = time.monotonic()
    for attempt in range(max(1, policy.attempts)):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            elapsed = time.monotonic() - start
            wait = policy.delay(attempt)
            if attempt + 1 >= policy.attempts or elapsed + wait > policy.total_seconds:
                raise error(
                    f"could not {action} {uri}: {_reason(exc)} (gave up after {attempt + 1} attempts in "
                    f"{elapsed:.1f} s)"
                ) from exc
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The ``pyarrow.fs.FileSystem`` for ``uri`` and the path inside it.

    Local paths become absolute (``LocalFileSystem``); ``s3://``/``gs://`` give ``bucket/key`` on a client cached
    per bucket; other schemes go through ``pyarrow.fs.FileSystem.from_uri``.

    :raises InputError: an unknown scheme or a URI pyarrow cannot parse, naming the URI and what is understood.
    """
    import pyarrow.fs as pafs

    scheme = scheme_of(uri)
    if "\x00" in uri:
        raise InputError(f"got {uri!r}: a path may not contain NUL")
    if scheme == "":
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    if scheme == "file":
        parts = urllib.parse.urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"got file URI {uri!r} on host {parts.netloc!r}; expected file:///absolute/path")
        return pafs.LocalFileSystem(), urllib.request.url2pathname(parts.path)
    try:
        if scheme in _BUCKET_SCHEMES:
            parts = urllib.parse.urlsplit(uri)
            if not parts.netloc:
                raise ValueError("no bucket name")
            root = f"{parts.scheme}://{parts.netloc}/" + (f"?{parts.query}" if parts.query else "")
            env = tuple(os.environ.get(name) for name in _CLIENT_ENV)
            path = parts.netloc + urllib.parse.unquote(parts.path)
            return _bucket_filesystem(root, env), path.rstrip("/")
        return pafs.FileSystem.from_uri(uri)
    except OSError as exc:  # from_uri asks S3 for the bucket's region when none is configured
        raise InputError(f"got {uri!r}: {_explain(uri, exc, 'read')}") from exc
    except (ValueError, TypeError) as exc:  # pyarrow.ArrowInvalid: "Unrecognized filesystem type in URI"
        raise InputError(
            f"got {uri!r} with scheme {scheme}://; expected a local path, file://, or a scheme pyarrow.fs "
            f"understands (s3://bucket/key, gs://bucket/key, hdfs://): {exc}"
        ) from exc


@functools.lru_cache(maxsize=64)
def _bucket_filesystem(root: str, env: tuple[str | None, ...]) -> pafs.FileSystem:
    """One client per bucket root and credential environment (``env`` only keys the cache)."""
    import pyarrow.fs as pafs

    filesystem, _ = pafs.FileSystem.from_uri(root)
    if isinstance(filesystem, pafs.S3FileSystem):
        # Rebuild with the same options (endpoint, region, credentials as resolved by from_uri) but without the SDK's
        # own retries, so with_retries alone bounds attempts and time, and with delayed open, so an object smaller
        # than one part is written with a single PutObject at close instead of a multipart upload.
        options = filesystem.__reduce__()[1][0]
        options.update(
            region=filesystem.region,
            allow_delayed_open=True,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        )
        if not options.get("proxy_options", {}).get("host"):
            options.pop("proxy_options", None)
        filesystem = pafs.S3FileSystem(**options)
    return filesystem


def read_bytes(uri: str, *, max_bytes: int | None = None, policy: RetryPolicy = DEFAULT_RETRY) -> bytes:
    """The bytes of the file or object at ``uri``, retried on transient errors.

    On object stores this is a HEAD and a single GET of the whole object, so concurrent overwrites never mix two
    versions. (An overwrite with a *larger* object between the two requests could still return a prefix of the new
    one: imgx never overwrites a source during a run, and the decoder refuses a truncated image.)

    :param max_bytes: refuse a file or object larger than this before reading it (``None``: no cap).
    :raises InputError: ``source not found: <uri>``, ``source is a directory: <uri>``, ``permission denied: <uri>
        (...)``, ``could not read <uri>: ... (gave up after N attempts in S s)``, ``could not read <uri>: N bytes is
        over the cap of M bytes``.
    """
    filesystem, path = resolve(uri)

    def read() -> bytes:
        # One request for the whole object (a stream would issue one ranged GET per chunk, and a reader racing an
        # overwrite could then mix two versions). The size comes from the open; a shorter body means the object
        # was replaced by a smaller one in between: retried as transient.
        with filesystem.open_input_file(path) as file:
            size = file.size()
            if max_bytes is not None and size > max_bytes:
                raise _TooLarge(f"could not read {uri}: {size} bytes is over the cap of {max_bytes} bytes")
            data = file.read_at(size, 0) if size else b""
        if len(data) != size:
            raise ConnectionError(f"the object changed while being read ({len(data)} of {size} bytes)")
        return data

    try:
        return with_retries(read, uri=uri, action="read", error=InputError, policy=policy)
    except ImgxError:
        raise
    except _TooLarge as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:
        raise _read_error(uri, exc) from exc


#: Objects smaller than this go up as one PUT (atomic for readers); larger ones through a temp key (see
#: :func:`atomic_output`). Below pyarrow's upload part size (10 MiB), so a small object is never a multipart upload.
SINGLE_PUT_BYTES = 8 << 20


def write_bytes_atomic(
    uri: str, data: bytes, *, tmp_dir: str | os.PathLike[str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> None:
    """Write ``data`` to ``uri`` so that a reader sees the old content or the new, never a partial one.

    - Local: :func:`imgx.io.atomic.atomic_write` (a temp file in ``tmp_dir`` or the target's folder, then
      ``os.replace``); missing folders are created.
    - Object stores: an object under :data:`SINGLE_PUT_BYTES` is one PUT, which readers see whole or not at all.
      A larger one goes through :func:`atomic_output` (a temp key, then a server-side copy).

    Transient errors are retried (the whole write, which is idempotent).

    :param tmp_dir: local writes: where the temp file lives (same file system as ``uri``); object stores: the prefix
        for temp keys of large objects (default: a dot-named key next to the target, which catalog listings skip).
    :raises OutputError: ``could not write <uri>: <reason>``.
    """
    filesystem, path = resolve(uri)
    import pyarrow.fs as pafs

    if isinstance(filesystem, pafs.LocalFileSystem):
        from .atomic import atomic_write

        atomic_write(path, data, tmp_dir=tmp_dir)
        return
    if len(data) >= SINGLE_PUT_BYTES:
        with atomic_output(uri, tmp_dir=tmp_dir, policy=policy) as stream:
            stream.write(data)
        return

    def write() -> None:
        with filesystem.open_output_stream(path) as stream:  # delayed open: the PUT is sent at close, whole
            stream.write(data)

    try:
        with_retries(write, uri=uri, action="write", error=OutputError, policy=policy)
    except ImgxError:
        raise
    except Exception as exc:
        raise OutputError(f"could not write {uri}: {_explain(uri, exc, 'write')}") from exc


@contextlib.contextmanager
def atomic_output(
    uri: str, *, tmp_dir: str | os.PathLike[str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> Iterator[Any]:
    """A writable binary stream for ``uri`` whose content appears at ``uri`` whole when the block ends without an error,
    and not at all otherwise; for writers that stream (``pyarrow.parquet.ParquetWriter``) or large objects.

    - Local: a temp file (:func:`imgx.io.atomic.atomic_path`), renamed onto the target.
    - Object stores: the stream goes to a temp key (``<tmp_dir>/<random>`` or ``.<name>.imgx-<random>.tmp`` next to
      the target); at the end it is copied server-side onto ``uri`` (S3 ``CopyObject``: readers see the old object
      or the whole new one) and deleted. pyarrow cannot abort a multipart upload, so a stream that failed halfway
      may still be completed at close: that happens to the temp key, never to ``uri``. The copy is retried; the
      stream itself is not (the caller's data may not be replayable). A temp key left by a killed process is named
      ``.imgx-*`` (skipped by catalog listings) or lives under the run's ``_imgx/tmp/``.

    :raises OutputError: naming ``uri`` when the stream cannot be opened or the copy fails.
    """
    import pyarrow.fs as pafs

    filesystem, path = resolve(uri)
    if isinstance(filesystem, pafs.LocalFileSystem):
        from .atomic import atomic_path

        with atomic_path(path, tmp_dir=tmp_dir) as tmp, open(tmp, "wb") as file:
            yield file
        return
    if tmp_dir is not None:
        tmp_uri = join(os.fspath(tmp_dir), f".imgx-{uuid.uuid4().hex}.tmp")
    else:
        folder, _, name = uri.rpartition("/")
        tmp_uri = f"{folder}/.{name[:64]}.imgx-{uuid.uuid4().hex}.tmp"
    tmp_fs, tmp_path = resolve(tmp_uri)
    try:
        stream = tmp_fs.open_output_stream(tmp_path)
    except Exception as exc:
        raise OutputError(f"could not write {uri}: {_explain(uri, exc, 'write')}") from exc
    try:
        try:
            yield stream
        finally:
            stream.close()
        try:
            with_retries(lambda: filesystem.copy_file(tmp_path, path), uri=uri, action="write", error=OutputError,
                         policy=policy)  # fmt: skip
        except ImgxError:
            raise
        except Exception as exc:
            raise OutputError(f"could not write {uri}: {_explain(uri, exc, 'write')}") from exc
    finally:
        with contextlib.suppress(Exception):
            tmp_fs.delete_file(tmp_path)


def create_exclusive(uri: str, body: bytes = b"") -> bool:
    """Create ``uri`` with ``body`` only if nothing exists there: ``True`` if this call created it, ``False`` if it
    existed. The check and the write are one atomic step for every concurrent caller, on any node.

    Local: ``open(O_CREAT | O_EXCL)`` (folders created). S3: ``put_object(IfNoneMatch="*")`` through boto3 (pyarrow
    has no conditional write), which S3 and S3-compatible stores (moto, MinIO) answer with 412 when the key exists;
    needs ``boto3`` (``pip install 'imgx[s3]'``). Other schemes: not supported (GCS would be an upload with
    ``ifGenerationMatch=0``).

    :raises OutputError: an unsupported scheme, boto3 missing, or the write failed (retries spent).
    """
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        _, path = resolve(uri)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        except OSError as exc:
            raise OutputError(f"could not write {uri}: {exc.strerror or exc}") from exc
        with open(fd, "wb") as file:
            file.write(body)
        return True
    if scheme != "s3":
        raise OutputError(
            f"cannot create {uri} exclusively: that needs a conditional write, which imgx implements for local "
            f"folders and s3:// only (for gs:// it would be an upload with ifGenerationMatch=0)"
        )
    client, bucket, key = _boto3_client(uri)
    import botocore.exceptions

    try:
        with_retries(
            lambda: client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*"),
            uri=uri,
            action="write",
            error=OutputError,
        )
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            return False
        raise OutputError(f"could not write {uri}: {exc}") from exc
    return True


def delete(uri: str, *, policy: RetryPolicy = DEFAULT_RETRY) -> bool:
    """Delete the file or object at ``uri``; ``False`` if there was none.

    :raises OutputError: access denied, retries spent.
    """
    filesystem, path = resolve(uri)
    try:
        with_retries(lambda: filesystem.delete_file(path), uri=uri, action="delete", error=OutputError, policy=policy)
    except FileNotFoundError:
        return False
    except ImgxError:
        raise
    except Exception as exc:
        if "not found" in str(exc).lower() or "NO_SUCH_KEY" in str(exc):
            return False
        raise OutputError(f"could not delete {uri}: {_reason(exc)}") from exc
    return True


def delete_tree(prefix: str, *, policy: RetryPolicy = DEFAULT_RETRY) -> None:
    """Delete a folder or every object under a prefix, and the prefix itself; nothing there is not an error."""
    filesystem, path = resolve(prefix)
    try:
        with_retries(lambda: filesystem.delete_dir(path), uri=prefix, action="delete", error=OutputError,
                     policy=policy)  # fmt: skip
    except (FileNotFoundError, NotADirectoryError):
        pass
    except ImgxError:
        raise
    except Exception as exc:
        if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
            return
        raise OutputError(f"could not delete {prefix}: {_reason(exc)}") from exc


def names(folder: str, *, policy: RetryPolicy = DEFAULT_RETRY) -> list[str]:
    """The names of the files directly in ``folder`` (a folder or a prefix), sorted; ``[]`` if there is none.

    :raises InputError: access denied, retries spent.
    """
    import pyarrow.fs as pafs

    filesystem, path = resolve(folder)
    selector = pafs.FileSelector(path, recursive=False, allow_not_found=True)
    try:
        entries = with_retries(lambda: filesystem.get_file_info(selector), uri=folder, action="list", policy=policy)
    except ImgxError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        return []
    except Exception as exc:
        raise _read_error(folder, exc) from exc
    return sorted(entry.base_name for entry in entries if entry.type == pafs.FileType.File)


def open_input(uri: str, *, policy: RetryPolicy = DEFAULT_RETRY) -> pa.NativeFile:
    """A random-access reader for ``uri`` (for ``pyarrow.parquet.ParquetFile``): the object's size is read now, its
    bytes as they are asked for (ranged GETs on object stores).

    :raises InputError: as :func:`read_bytes`.
    """
    filesystem, path = resolve(uri)
    try:
        return with_retries(lambda: filesystem.open_input_file(path), uri=uri, action="read", policy=policy)
    except ImgxError:
        raise
    except Exception as exc:
        raise _read_error(uri, exc) from exc


def exists(uri: str, *, policy: RetryPolicy = DEFAULT_RETRY) -> bool:
    """Whether a file, object or folder (a non-empty prefix on object stores) exists at ``uri``.

    :raises InputError: when the store cannot say (access denied, retries spent).
    """
    import pyarrow.fs as pafs

    filesystem, path = resolve(uri)
    try:
        info = with_retries(lambda: filesystem.get_file_info(path), uri=uri, action="check", policy=policy)
    except ImgxError:
        raise
    except Exception as exc:
        raise _read_error(uri, exc) from exc
    return info.type != pafs.FileType.NotFound


def walk(prefix: str, *, policy: RetryPolicy = DEFAULT_RETRY) -> Iterator[pafs.FileInfo]:
    """The files under ``prefix`` (a folder or an object-store prefix), recursively, as ``pyarrow.fs.FileInfo``.

    Folders are listed one at a time (a delimited listing on object stores), in name order, and their files yielded
    before the walk goes down, so memory is bounded by the largest single folder, not the catalog. Paths in the
    ``FileInfo``s are file-system paths (``bucket/key`` on object stores); names starting with ``.`` or ``_imgx``
    (temp files, run state) are skipped.

    :raises InputError: the prefix does not exist or is a file, access denied, retries spent.
    """
    import pyarrow.fs as pafs

    filesystem, root = resolve(prefix)
    info = _checked(lambda: filesystem.get_file_info(root), prefix, policy)
    if info.type == pafs.FileType.File:
        raise InputError(f"got {prefix!r} to list; it is a file, expected a folder or prefix")
    if info.type == pafs.FileType.NotFound and not _is_bucket_scheme(prefix):
        raise InputError(f"source not found: {prefix}")
    stack = [root]
    while stack:
        folder = stack.pop()
        selector = pafs.FileSelector(folder, recursive=False, allow_not_found=True)
        entries = _checked(lambda s=selector: filesystem.get_file_info(s), prefix, policy)
        folders = []
        for entry in sorted(entries, key=lambda e: e.path):
            if entry.base_name.startswith((".", "_imgx")):
                continue
            if entry.type == pafs.FileType.Directory:
                folders.append(entry.path)
            elif entry.type == pafs.FileType.File:
                yield entry
        stack.extend(reversed(folders))


def join(base: str, relative: str, *, error: type[ImgxError] = OutputError) -> str:
    """``relative`` under ``base`` (a path or URI), refusing anything that would leave ``base``.

    ``relative`` uses ``/`` separators; ``.`` parts and repeated slashes are dropped.

    :raises error: ``relative`` is empty, absolute (``/x``, ``C:\\x``, ``\\\\host``), a URI, contains ``..``, a
        backslash or NUL. ``OutputError`` by default (output names built from untrusted SKUs); pass
        ``InputError`` for image paths in a manifest.
    """
    problem = None
    if not relative:
        problem = "it is empty"
    elif "\x00" in relative:
        problem = "it contains NUL"
    elif "\\" in relative:
        problem = "it contains a backslash"
    elif relative.startswith("/") or re.match(r"^[A-Za-z]:", relative):
        problem = "it is absolute"
    elif scheme_of(relative):
        problem = "it is a URI"
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if problem is None and ".." in parts:
        problem = "it contains '..'"
    if problem is None and not parts:
        problem = "it names the base itself"
    if problem is not None:
        raise error(f"got {relative!r} to put under {base!r}; {problem}: expected a relative path inside it")
    if scheme_of(base) or "/" in base or os.sep != "\\":
        return base.rstrip("/") + "/" + "/".join(parts)
    return os.path.join(base, *parts)  # pragma: no cover - Windows paths


def check_readable(uri: str, *, setting: str = "input.path", policy: RetryPolicy = DEFAULT_RETRY) -> None:
    """Fail fast, before a run starts, if ``uri`` (a file, object, folder or prefix) cannot be read.

    :param setting: the recipe key named in the message (``got input.path 's3://b/x': ...``).
    :raises InputError: one line naming the setting, the URI and what to fix: the bucket does not exist, the
        credentials were refused (and which ones), nothing exists at the URI, retries spent.
    """
    import pyarrow.fs as pafs

    filesystem, path = resolve(uri)
    try:
        info = with_retries(lambda: filesystem.get_file_info(path), uri=uri, action="reach", policy=policy)
        if info.type == pafs.FileType.NotFound and _is_bucket_scheme(uri):
            bucket = path.split("/", 1)[0]
            bucket_info = with_retries(lambda: filesystem.get_file_info(bucket), uri=uri, action="reach", policy=policy)
            if bucket_info.type == pafs.FileType.NotFound:
                raise InputError(f"got {setting} {uri!r}: the bucket does not exist; create it or fix the name")
    except ImgxError as exc:
        if str(exc).startswith("got "):
            raise
        raise InputError(f"got {setting} {uri!r}: {exc}") from exc
    except Exception as exc:
        raise InputError(f"got {setting} {uri!r}: {_explain(uri, exc, 'read')}") from exc
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"got {setting} {uri!r}: nothing exists there; fix the path")


def check_writable(prefix: str, *, setting: str = "output.dir", policy: RetryPolicy = DEFAULT_RETRY) -> None:
    """Fail fast, before a run starts, if nothing can be written under ``prefix``: a probe object
    ``<prefix>/_imgx/probe-<random>`` is written (one PUT) and deleted (a failed delete is ignored: the probe is a
    few bytes under the run-state folder; on S3, pyarrow leaves an empty ``_imgx/`` folder marker in its place).

    :param setting: the recipe key named in the message.
    :raises OutputError: ``got output.dir 's3://bucket/x': the bucket does not exist; create it or fix the name``,
        ``...: access denied with the credentials from AWS_ACCESS_KEY_ID; ...``, a local folder that cannot be made.
    """
    probe = join(prefix, f"_imgx/probe-{uuid.uuid4().hex}")
    filesystem, path = resolve(probe)
    import pyarrow.fs as pafs

    try:
        if isinstance(filesystem, pafs.LocalFileSystem):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as file:
                file.write(b"imgx write probe\n")
        else:

            def put() -> None:
                with filesystem.open_output_stream(path) as stream:
                    stream.write(b"imgx write probe\n")

            with_retries(put, uri=prefix, action="write to", error=OutputError, policy=policy)
    except ImgxError as exc:
        raise OutputError(f"got {setting} {prefix!r}: {exc}") from exc
    except Exception as exc:
        raise OutputError(f"got {setting} {prefix!r}: {_explain(prefix, exc, 'write')}") from exc
    with contextlib.suppress(Exception):  # a leftover probe is harmless
        filesystem.delete_file(path)


def acquire_run_marker(prefix: str, run_id: str) -> str:
    """Claim ``prefix`` for one run: create ``<prefix>/_imgx/run.lock`` only if it does not exist yet.

    Local: ``open(O_CREAT | O_EXCL)``. S3: ``put_object(IfNoneMatch="*")`` through boto3 (pyarrow has no
    conditional write), which S3 and S3-compatible stores (moto, MinIO) answer with 412 when the key exists; needs
    ``boto3`` (``pip install 'imgx[s3]'``). GCS would be an upload with ``ifGenerationMatch=0``; not implemented.
    The marker holds JSON (run id, host, pid, start time) so the refusal can say who holds it. A run that died keeps
    its marker: the message says to remove it.

    :returns: the marker's URI, for :func:`release_run_marker`.
    :raises OutputError: another run holds the prefix (naming it), boto3 missing, or the marker cannot be written.
    """
    marker = join(prefix, RUN_MARKER)
    body = json.dumps(
        {
            "run_id": run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    ).encode()
    try:
        created = create_exclusive(marker, body)
    except OutputError as exc:
        raise OutputError(f"got output prefix {prefix!r}: cannot refuse a second concurrent run: {exc}") from exc
    if not created:
        raise _held(prefix, marker)
    return marker


def release_run_marker(marker: str, run_id: str) -> None:
    """Remove the marker :func:`acquire_run_marker` wrote, if it still names ``run_id`` (never another run's)."""
    try:
        holder = json.loads(read_bytes(marker)).get("run_id")
    except (InputError, ValueError, AttributeError):
        return
    if holder != run_id:
        return
    filesystem, path = resolve(marker)
    try:
        with_retries(lambda: filesystem.delete_file(path), uri=marker, action="delete", error=OutputError)
    except FileNotFoundError:
        pass
    except ImgxError:
        raise
    except Exception as exc:
        raise OutputError(f"could not delete {marker}: {_reason(exc)}") from exc


def _held(prefix: str, marker: str) -> OutputError:
    try:
        holder = json.loads(read_bytes(marker))
        who = f"run {holder.get('run_id')} on {holder.get('host')} (pid {holder.get('pid')}, "
        who += f"since {holder.get('started')})"
    except (InputError, ValueError, AttributeError):
        who = "another run"
    return OutputError(
        f"got output prefix {prefix!r}: {who} is writing into it; wait for it to finish, use another output.dir, "
        f"or delete {marker} if that run is dead"
    )


def _boto3_client(uri: str):  # -> (botocore client, bucket, key)
    try:
        import boto3  # noqa: F401 - only checks that the extra is installed
    except ImportError as exc:
        raise OutputError(f"cannot lock {uri}: conditional writes to S3 need boto3 (pip install 'imgx[s3]')") from exc
    parts = urllib.parse.urlsplit(uri)
    client = _s3_client(tuple(os.environ.get(name) for name in _CLIENT_ENV))
    return client, parts.netloc, parts.path.lstrip("/")


@functools.lru_cache(maxsize=8)
def _s3_client(env: tuple[str | None, ...]):  # env only keys the cache
    import boto3

    return boto3.client("s3")  # honours AWS_ENDPOINT_URL, the credential chain and AWS_REGION itself


class _TooLarge(Exception):
    """A file over read_bytes' cap (not transient, not an OSError)."""


def _checked(call: Callable[[], T], uri: str, policy: RetryPolicy) -> T:
    try:
        return with_retries(call, uri=uri, action="list", policy=policy)
    except ImgxError:
        raise
    except Exception as exc:
        raise _read_error(uri, exc) from exc


def _is_bucket_scheme(uri: str) -> bool:
    return scheme_of(uri) in _BUCKET_SCHEMES


def _read_error(uri: str, exc: BaseException) -> InputError:
    """The InputError for a permanent read failure, in read_source's words."""
    if isinstance(exc, FileNotFoundError):
        return InputError(f"source not found: {uri}")
    if isinstance(exc, IsADirectoryError) or "is a directory" in str(exc).lower():
        return InputError(f"source is a directory: {uri}")
    if isinstance(exc, PermissionError):
        return InputError(f"permission denied: {uri}")
    match = _AWS_CODE.search(str(exc))
    if match and match.group(1) == "NO_SUCH_BUCKET":
        return InputError(f"source not found: {uri} (the bucket does not exist)")
    if match and match.group(1) in _DENIED_AWS:
        return InputError(f"permission denied: {uri} ({_explain(uri, exc, 'read')})")
    return InputError(f"could not read {uri}: {_reason(exc)}")


def _explain(uri: str, exc: BaseException, verb: str) -> str:
    """What went wrong with ``uri`` and what to fix, in a few words."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return "a parent is missing or is a file; fix the path"
    if isinstance(exc, PermissionError):
        return f"permission denied ({exc.strerror or exc}); pick a folder you can {verb} or fix its permissions"
    match = _AWS_CODE.search(str(exc))
    code = match.group(1) if match else ""
    credentials = _credential_source(uri)
    if code == "NO_SUCH_BUCKET" or re.search(r"Bucket '[^']*' not found", str(exc)):  # the latter: region lookup
        return "the bucket does not exist; create it or fix the name"
    if code == "INVALID_ACCESS_KEY_ID":
        return f"the access key {credentials} is unknown to the server; fix the key (or the profile)"
    if code == "SIGNATURE_DOES_NOT_MATCH":
        return f"the secret key does not match the access key {credentials}; fix AWS_SECRET_ACCESS_KEY (or the profile)"
    if code in _DENIED_AWS:
        action = "s3:PutObject" if verb == "write" else "s3:GetObject"
        return f"access denied with the credentials {credentials}; grant them {action} here or use other credentials"
    return _reason(exc)


def _credential_source(uri: str) -> str:
    if scheme_of(uri) in ("gs", "gcs"):
        path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return f"from GOOGLE_APPLICATION_CREDENTIALS ({path})" if path else "from the default Google credentials"
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return "from AWS_ACCESS_KEY_ID"
    if os.environ.get("AWS_PROFILE"):
        return f"of profile {os.environ['AWS_PROFILE']!r} (AWS_PROFILE)"
    return "from the default chain (~/.aws/credentials, instance role)"


def _reason(exc: BaseException) -> str:
    """The useful part of an exception's text: pyarrow's request ids and errno prefixes dropped."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"\s*\(Request ID: [^)]*\)", "", text)
    text = re.sub(r"^\[Errno \d+\] ", "", text)
    return text.strip()
