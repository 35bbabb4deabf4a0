"""Read the bytes of one catalog image from a local path, ``file://``, ``http(s)://`` or an object store.

Every failure is an :class:`imgx.InputError` whose message the results ledger shows as is: ``source not found:
<path>``, ``source is a directory: <path>``, ``permission denied: <path>``, ``could not fetch <url>: HTTP 404 Not
Found``, ``could not fetch <url>: timed out after 30 s``.
"""

from __future__ import annotations

import functools
import socket
import urllib.error
import urllib.parse
import urllib.request

from ..errors import InputError

__all__ = ["read_source"]

_USER_AGENT = "imgx (+https://pypi.org/project/imgx/)"
# Object stores whose pyarrow paths are "<bucket>/<key>": their FileSystem (client, credentials, bucket region) is
# built once per bucket and reused; other schemes (hdfs://, viewfs://, ...) go through from_uri on every call.
_BUCKET_SCHEMES = frozenset({"s3", "gs", "gcs"})


def read_source(source: str, *, timeout: float = 30.0) -> bytes:
    """The bytes at ``source``.

    :param source: a local path, a ``file://`` URI, an ``http(s)://`` URL (fetched with ``urllib``), or any URI
        ``pyarrow.fs.FileSystem.from_uri`` understands (``s3://bucket/key``, ``gs://``, ``hdfs://`` ...).
    :param timeout: seconds for an HTTP connection or read to stall before giving up (ignored for files).
    :raises InputError: missing, a directory, unreadable, HTTP error, unreachable host, unsupported scheme.
    """
    if not source:
        raise InputError("source is empty; expected a path or a URI")
    scheme = _scheme(source)
    if scheme == "":
        return _read_local(source)
    if scheme == "file":
        parts = urllib.parse.urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"got file URI {source!r} on host {parts.netloc!r}; expected file:///absolute/path")
        return _read_local(urllib.request.url2pathname(parts.path))
    if scheme in ("http", "https"):
        return _fetch(source, timeout=timeout)
    return _read_arrow(source, scheme)


def _scheme(source: str) -> str:
    """The URI scheme in lower case, or ``""`` for a plain path (incl. ``C:\\...`` and names containing ':')."""
    head, sep, _ = source.partition("://")
    if sep and len(head) > 1 and head.isascii() and head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return head.lower()
    return "file" if source.lower().startswith("file:/") else ""


def _read_local(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError as exc:
        raise InputError(f"source not found: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"source is a directory: {path}") from exc
    except PermissionError as exc:
        raise InputError(f"permission denied: {path}") from exc
    except NotADirectoryError as exc:  # a parent component is a file
        raise InputError(f"source not found: {path} (a parent is not a directory)") from exc
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL
        raise InputError(f"could not read {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _fetch(url: str, *, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise InputError(f"could not fetch {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise InputError(f"could not fetch {url}: timed out after {timeout:g} s") from exc
        raise InputError(f"could not fetch {url}: {exc.reason}") from exc
    except TimeoutError as exc:  # a stalled read after the headers
        raise InputError(f"could not fetch {url}: timed out after {timeout:g} s") from exc
    except (OSError, ValueError) as exc:  # connection reset mid-body, malformed URL, ...
        raise InputError(f"could not fetch {url}: {exc}") from exc


def _read_arrow(uri: str, scheme: str) -> bytes:
    try:
        import pyarrow.fs as pafs
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise InputError(f"cannot read {uri}: pyarrow is not installed (pip install pyarrow)") from exc
    try:
        if scheme in _BUCKET_SCHEMES:
            parts = urllib.parse.urlsplit(uri)
            root = f"{parts.scheme}://{parts.netloc}/" + (f"?{parts.query}" if parts.query else "")
            filesystem, path = _bucket_filesystem(root), parts.netloc + urllib.parse.unquote(parts.path)
        else:
            filesystem, path = pafs.FileSystem.from_uri(uri)
        with filesystem.open_input_stream(path) as stream:  # no stat first: one request per object, not two
            return stream.read()
    except FileNotFoundError as exc:
        raise InputError(f"source not found: {uri}") from exc
    except PermissionError as exc:
        raise InputError(f"permission denied: {uri}") from exc
    except ValueError as exc:  # pyarrow.ArrowInvalid: "Unrecognized filesystem type in URI"
        raise InputError(
            f"got source {uri!r} with scheme {scheme}://; expected a local path, file://, http(s):// or a scheme "
            f"pyarrow.fs understands (s3://, gs://, hdfs://): {exc}"
        ) from exc
    except Exception as exc:  # pyarrow.ArrowException and OSError from the object store client
        if "is a directory" in str(exc):
            raise InputError(f"source is a directory: {uri}") from exc
        raise InputError(f"could not read {uri}: {exc}") from exc


@functools.lru_cache(maxsize=32)
def _bucket_filesystem(root: str):  # -> pyarrow.fs.FileSystem
    import pyarrow.fs as pafs

    filesystem, _ = pafs.FileSystem.from_uri(root)
    return filesystem
