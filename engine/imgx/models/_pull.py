"""Fetching a model's files into the cache: try each source in order, verify, install; say what to do on failure.

Order for each file: the cache (if its sha256 matches), then the folders of ``IMGX_MODELS_PATH``, then the spec's
sources in order. Offline (``pull=False`` or ``IMGX_OFFLINE=1``) only what is on this machine is used: the cache,
``IMGX_MODELS_PATH`` and ``file:``/plain-path sources.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError
from ..io.atomic import file_lock
from . import _cache
from .spec import ModelSpec, WeightFile

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["Fetched", "FileStatus", "fetch_model", "file_statuses", "one_line", "scheme_of"]

LOCAL_SCHEMES = frozenset({"file", ""})
# Downloads are announced here at INFO (a first run may wait minutes for weights); `imgx run` shows this logger on
# stderr, a program shows it with logging.basicConfig(level=logging.INFO) or its own handler.
log = logging.getLogger("imgx.models")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def scheme_of(uri: str) -> str:
    """The scheme that picks a source: ``"pip"``, ``"https"``, ``"file"``...; ``""`` for a plain path (``C:\\x``
    too: a one-letter scheme is a Windows drive)."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match and len(match.group(1)) > 1 else ""


def one_line(text: str) -> str:
    """Whitespace (newlines and tabs of a third-party message) collapsed: errors stay one line."""
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class FileStatus:
    """One weight file of a model as the cache sees it. ``state``: ``cached``, ``missing`` or ``wrong hash``;
    ``size`` is the cached file's size, else the spec's, else ``None``."""

    role: str
    filename: str
    path: Path
    sha256: str
    size: int | None
    state: str
    sources: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A file that is now in the cache. ``origin``: the source it came from, ``None`` if it was cached already."""

    role: str
    path: Path
    origin: str | None
    size: int


def file_statuses(spec: ModelSpec) -> list[FileStatus]:
    """The cache state of each of ``spec``'s files; reads and hashes, never fetches."""
    statuses = []
    for role, weight in spec.files.items():
        path = _cache.cache_path(spec.name, weight.filename)
        state = _cache.file_state(path, weight.sha256)
        size = path.stat().st_size if state != "missing" else weight.size
        statuses.append(FileStatus(role, weight.filename, path, weight.sha256.lower(), size, state, weight.sources))
    return statuses


def fetch_model(spec: ModelSpec, *, registry: Registry, pull: bool = True) -> list[Fetched]:
    """Make every file of ``spec`` present and verified in the cache; raise :class:`ModelError` for the first that
    cannot be had."""
    remote = pull and not _cache.offline()
    fetched = []
    for role, weight in spec.files.items():
        if not _SHA256.fullmatch(weight.sha256):
            raise ModelError(
                f"got sha256 {weight.sha256!r} for {weight.filename} of model {spec.name!r}; expected 64 hex digits; "
                "fix the ModelSpec in the plugin that registers it"
            )
        target = _cache.cache_path(spec.name, weight.filename)
        if _cache.file_state(target, weight.sha256) == "cached":
            fetched.append(Fetched(role, target, None, target.stat().st_size))
            continue
        with file_lock(target):
            fetched.append(_fetch_file(spec, role, weight, target, registry, remote=remote))
    return fetched


def _fetch_file(
    spec: ModelSpec, role: str, weight: WeightFile, target: Path, registry: Registry, *, remote: bool
) -> Fetched:
    state = _cache.file_state(target, weight.sha256)  # another process may have fetched it while we waited
    if state == "cached":
        return Fetched(role, target, None, target.stat().st_size)
    tried: list[str] = []
    if state == "wrong hash":
        tried.append(f"the cached file has sha256 {_cache.sha256_of(target)}")
    local, notes = _cache.search_models_path(weight.filename, weight.sha256)
    tried += [f"{_cache.MODELS_PATH_ENV}: {note}" for note in notes]
    uris = ([str(local)] if local else []) + list(weight.sources)
    skipped = []
    for uri in uris:
        scheme = scheme_of(uri)
        if not remote and scheme not in LOCAL_SCHEMES:
            skipped.append(uri)
            continue
        source_cls = registry.source_for_scheme(scheme)
        if source_cls is None:
            known = ", ".join(repr(s) for s in sorted(registry.model_sources)) or "none"
            tried.append(f"{uri}: no model source handles scheme {scheme!r} (known: {known}; is a plugin missing?)")
            continue
        started = time.perf_counter()
        if scheme not in LOCAL_SCHEMES:
            log.info("model %s: fetching %s from %s (first use; cached in %s)", spec.name, weight.filename, uri, target)
        with _cache.temporary_file(target) as temp:
            try:
                source_cls().fetch(uri, temp)
                _cache.install(temp, target, weight.sha256, what=weight.filename)
            except Exception as exc:  # a plugin's source may raise anything; each source's failure is one clause
                reason = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
                tried.append(f"{uri}: {one_line(reason)}")
                if scheme not in LOCAL_SCHEMES:
                    log.info("model %s: %s failed: %s", spec.name, uri, one_line(reason))
                continue
        size = target.stat().st_size
        if scheme not in LOCAL_SCHEMES:
            seconds = time.perf_counter() - started
            log.info("model %s: %s verified, %.1f MB in %.1f s", spec.name, weight.filename, size / 1e6, seconds)
        return Fetched(role, target, uri, size)
    if skipped:
        why = f"{_cache.OFFLINE_ENV} is set" if _cache.offline() else "pulling is off"
        tried.append(f"not tried ({why}): {', '.join(skipped)}")
    raise ModelError(_failure_line(spec, weight, target, tried, remote=remote))


def _failure_line(spec: ModelSpec, weight: WeightFile, target: Path, tried: list[str], *, remote: bool) -> str:
    what = f"{weight.filename} of model {spec.name!r}"
    found = "; ".join(tried) if tried else "no sources are listed"
    pull_hint = f"run `imgx models pull {spec.name}`" + (" where its source is reachable" if remote else "")
    return (
        f"got no verified copy of {what} ({found}); expected a file with sha256 {weight.sha256.lower()}. To fix: "
        f"{pull_hint}, or place the file by hand at {target} (or in a folder listed in {_cache.MODELS_PATH_ENV})"
    )
