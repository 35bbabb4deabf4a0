"""The weights cache on disk: ``$IMGX_HOME/models/<model>/<filename>``, verified by sha256, written atomically.

A file enters the cache only through :func:`install`: it is fetched into a temporary file in the model's folder, its
sha256 checked, and renamed into place, so a reader never sees a partial or unverified file. A per-file lock
(``fcntl.flock`` where the platform has it) makes concurrent pulls from several worker processes fetch once; the
atomic rename keeps the cache correct even without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import ModelError
from ..io.atomic import create_temp, publish

__all__ = [
    "HOME_ENV",
    "MODELS_PATH_ENV",
    "OFFLINE_ENV",
    "cache_path",
    "file_state",
    "imgx_home",
    "install",
    "models_dir",
    "offline",
    "search_models_path",
    "sha256_of",
    "temporary_file",
]

HOME_ENV = "IMGX_HOME"
MODELS_PATH_ENV = "IMGX_MODELS_PATH"
OFFLINE_ENV = "IMGX_OFFLINE"

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def imgx_home() -> Path:
    """``$IMGX_HOME``, default ``~/.cache/imgx``: the root of imgx's caches (weights, engines)."""
    home = os.environ.get(HOME_ENV, "").strip()
    return Path(home).expanduser() if home else Path.home() / ".cache" / "imgx"


def models_dir() -> Path:
    """``$IMGX_HOME/models``: where verified weight files are cached, one folder per model."""
    return imgx_home() / "models"


def offline() -> bool:
    """``IMGX_OFFLINE=1``: never fetch from a remote source; use the cache and ``IMGX_MODELS_PATH`` only."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cache_path(model: str, filename: str) -> Path:
    """Where ``filename`` of ``model`` is cached. Both must be plain names: nothing may escape the cache folder."""
    for what, value in (("model name", model), ("file name", filename)):
        if not _SAFE_NAME.fullmatch(value) or ".." in value:
            raise ModelError(
                f"got {what} {value!r} for model {model!r}; expected a plain name of letters, digits and ._+- "
                "(no folders); fix the ModelSpec in the plugin that registers it"
            )
    return models_dir() / model / filename


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file. Not memoised: a cached file is checked each time it is used (about 2 ms per MB)."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def file_state(path: Path, sha256: str) -> str:
    """``"cached"`` (present with the pinned hash), ``"missing"`` or ``"wrong hash"``."""
    if not path.is_file():
        return "missing"
    return "cached" if sha256_of(path) == sha256.lower() else "wrong hash"


def search_models_path(filename: str, sha256: str) -> tuple[Path | None, list[str]]:
    """Look for ``filename`` in the folders of ``IMGX_MODELS_PATH`` (``os.pathsep``-separated), each also searched
    one level down (``<folder>/<model>/<filename>``, the cache's own layout, so a copied cache works as is).

    :return: the first file with the pinned hash, or ``None``, and a note per file found with another hash.
    """
    notes: list[str] = []
    for folder in filter(None, (p.strip() for p in os.environ.get(MODELS_PATH_ENV, "").split(os.pathsep))):
        root = Path(folder).expanduser()
        candidates = [root / filename]
        if root.is_dir():
            candidates += sorted(p / filename for p in root.iterdir() if p.is_dir())
        for candidate in candidates:
            if not candidate.is_file():
                continue
            digest = sha256_of(candidate)
            if digest == sha256.lower():
                return candidate, notes
            notes.append(f"{candidate} has sha256 {digest}")
    return None, notes


@contextlib.contextmanager
def temporary_file(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside ``target`` (same file system, so the rename is atomic), removed on exit unless
    it was installed."""
    temp = create_temp(target)  # the one atomic writer's temp file; publish() gives it the umask's mode
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def install(temp: Path, target: Path, sha256: str, *, what: str) -> None:
    """Verify ``temp`` against ``sha256`` and rename it onto ``target``; a mismatch raises and leaves the cache alone.

    :param what: names the model, file and source for the error (``"multistyle26.onnx of model multistyle26 from
        pip:..."``).
    """
    if not temp.is_file() or temp.stat().st_size == 0:
        raise ModelError(f"got no bytes for {what}; expected the file (is the source empty or truncated?)")
    digest = sha256_of(temp)
    if digest != sha256.lower():
        raise ModelError(
            f"got sha256 {digest} for {what}; expected {sha256.lower()} (the source holds a different file: a "
            "changed upload or a wrong pin)"
        )
    publish(temp, target)
