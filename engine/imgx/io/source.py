"""Read the bytes of one catalog image from a local path, ``file://``, ``http(s)://`` or an object store.

Every failure is an :class:`imgx.InputError` whose message the results ledger shows as is: ``source not found:
<path>``, ``source is a directory: <path>``, ``permission denied: <path>``, ``could not fetch <url>: HTTP 404 Not
Found``, ``could not fetch <url>: timed out after 30 s``, ``could not fetch <url>: refused 169.254.169.254, a
link-local address; ...``, ``could not fetch <url>: larger than the cap of 67108864 bytes ...``.

HTTP(S) URLs come from suppliers' manifests and are untrusted: by default they may only reach public addresses.
The host is resolved and every address checked (loopback, link-local incl. 169.254.169.254, private, shared,
reserved, multicast and unspecified ranges, IPv4 and IPv6, IPv4-mapped IPv6 included); the connection goes to the
address that was checked (no second DNS lookup to rebind) and the peer address is checked again after connecting;
every redirect hop goes through the same check, and a redirect may only lead to http(s). ``allowed_hosts`` opens
chosen hosts or ranges explicitly. Environment proxies (``HTTP_PROXY``) are not used, since a proxy would resolve
the host itself.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection

from ..errors import InputError
from . import fs

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "read_source"]

_USER_AGENT = "imgx (+https://pypi.org/project/imgx/)"
#: The largest image read_source takes from HTTP(S) or an object store unless told otherwise: 64 MiB.
DEFAULT_MAX_DOWNLOAD_BYTES = 64 << 20
_CHUNK = 1 << 16
_MAX_REDIRECTS = 5


def read_source(
    source: str,
    *,
    timeout: float = 30.0,
    allowed_hosts: Collection[str] = (),
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    retry: fs.RetryPolicy = fs.DEFAULT_RETRY,
) -> bytes:
    """The bytes at ``source``.

    :param source: a local path, a ``file://`` URI, an ``http(s)://`` URL (fetched with ``urllib``), or any URI
        ``pyarrow.fs.FileSystem.from_uri`` understands (``s3://bucket/key``, ``gs://``, ``hdfs://`` ...), read
        through :mod:`imgx.io.fs` with its retries.
    :param timeout: seconds for an HTTP connection or read to stall before giving up (ignored for files); a whole
        download may take at most ten times this.
    :param allowed_hosts: HTTP(S) hosts that may resolve to internal addresses: exact host names
        (``"images.intra"``), addresses or CIDR ranges (``"10.2.0.0/16"``, ``"::1"``). Empty: public addresses only.
    :param max_bytes: the largest HTTP(S) download or object-store object taken; larger ones fail (the
        ``Content-Length`` is checked first, and the download is cut at the cap when there is none).
    :param retry: how transient object-store errors are retried.
    :raises InputError: missing, a directory, unreadable, HTTP error, unreachable or refused host, over the size
        cap, timed out, unsupported scheme.
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
        return _fetch(source, timeout=timeout, guard=_Guard(allowed_hosts), max_bytes=max_bytes)
    try:
        return fs.read_bytes(source, max_bytes=max_bytes, policy=retry)
    except InputError as exc:
        if isinstance(exc.__cause__, (ValueError, TypeError)):  # pyarrow.ArrowInvalid: an unknown scheme
            raise InputError(
                f"got source {source!r} with scheme {scheme}://; expected a local path, file://, http(s):// or a "
                f"scheme pyarrow.fs understands (s3://, gs://, hdfs://): {exc.__cause__}"
            ) from exc.__cause__
        raise


_scheme = fs.scheme_of


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


def _fetch(url: str, *, timeout: float, guard: _Guard, max_bytes: int) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # a proxy would resolve the host itself, past the guard
        _GuardedHTTPHandler(guard),
        _GuardedHTTPSHandler(guard),
        _GuardedRedirectHandler(guard),
    )
    total_timeout = 10 * timeout
    deadline = time.monotonic() + total_timeout
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise InputError(f"could not fetch {url}: {length} bytes is over the cap of {max_bytes} bytes")
            chunks, total = [], 0
            while chunk := response.read(min(_CHUNK, max_bytes + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise InputError(f"could not fetch {url}: larger than the cap of {max_bytes} bytes (stopped there)")
                if time.monotonic() > deadline:
                    raise InputError(
                        f"could not fetch {url}: timed out after {total_timeout:g} s for the whole download"
                    )
            return b"".join(chunks)
    except InputError:
        raise
    except _Refused as exc:
        raise InputError(f"could not fetch {url}: {exc}") from None
    except urllib.error.HTTPError as exc:
        raise InputError(f"could not fetch {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise InputError(f"could not fetch {url}: timed out after {timeout:g} s") from exc
        raise InputError(f"could not fetch {url}: {exc.reason}") from exc
    except TimeoutError as exc:  # a stalled read after the headers
        raise InputError(f"could not fetch {url}: timed out after {timeout:g} s") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:  # reset mid-body, malformed URL, bad status line
        raise InputError(f"could not fetch {url}: {exc}") from exc


class _Refused(Exception):
    """An address the guard refuses; not an OSError, so urllib passes it through instead of wrapping it."""


def _address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes ``ip`` internal (``"a link-local address"``), or ``None`` for a public address."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        return _address_kind(mapped)
    for test, kind in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, test):
            return kind
    return None if ip.is_global else "a non-public address"


class _Guard:
    """Resolves a host, refuses internal addresses unless allowed, and connects to the address it checked."""

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed_hosts:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    def refusal(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why ``host`` at ``ip`` may not be fetched, or ``None``."""
        if host.lower().rstrip(".") in self.names:
            return None
        mapped = getattr(ip, "ipv4_mapped", None)
        if any(candidate in network for network in self.networks for candidate in (ip, mapped) if candidate):
            return None
        kind = _address_kind(ip)
        if kind is None:
            return None
        shown = f"{host} ({ip})" if host.strip("[]") != str(ip) else str(ip)
        return f"refused {shown}, {kind}; list it in input.allowed_hosts to allow it"

    def addresses(self, host: str, port: int) -> list[tuple[int, tuple]]:
        """Every address ``host`` resolves to, all checked; raises :class:`_Refused` if one is internal."""
        checked = []
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            reason = self.refusal(host, ipaddress.ip_address(sockaddr[0].split("%")[0]))
            if reason:
                raise _Refused(reason)
            checked.append((family, sockaddr))
        return checked

    def connect(self, address: tuple[str, int], timeout: object = None, source_address: object = None) -> socket.socket:
        """``socket.create_connection`` for http.client, to the checked addresses only (no second lookup)."""
        host, port = address
        last: OSError = OSError(f"{host} resolved to no address")
        for family, sockaddr in self.addresses(host, port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                if isinstance(timeout, (int, float)):
                    sock.settimeout(timeout)
                sock.connect(sockaddr)
                reason = self.refusal(host, ipaddress.ip_address(sock.getpeername()[0].split("%")[0]))
                if reason:
                    raise _Refused(reason)
                return sock
            except _Refused:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                last = exc
        raise last


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, guard: _Guard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = guard.connect


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, guard: _Guard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = guard.connect  # TLS is wrapped around it with server_hostname = the URL's host


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def http_open(self, req: urllib.request.Request):
        return self.do_open(functools.partial(_GuardedHTTPConnection, guard=self.guard), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def https_open(self, req: urllib.request.Request):
        return self.do_open(functools.partial(_GuardedHTTPSConnection, guard=self.guard), req, context=self._context)


class _GuardedRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows at most a few redirects, to http(s) only, checking each hop's host before following it."""

    max_redirections = _MAX_REDIRECTS

    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self.guard = guard

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        parts = urllib.parse.urlsplit(newurl)
        if parts.scheme.lower() not in ("http", "https"):
            raise _Refused(f"refused a redirect to {newurl}: only http(s) redirects are followed")
        try:
            self.guard.addresses(parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80))
        except _Refused as exc:
            raise _Refused(f"redirected to {newurl}; {exc}") from None
        except OSError:
            pass  # unresolvable: the connection attempt reports it
        return super().redirect_request(req, fp, code, msg, headers, newurl)
