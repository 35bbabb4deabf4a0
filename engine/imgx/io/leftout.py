"""What a folder catalog's patterns leave out: files under the folder that no ``input.pattern`` takes, counted per
extension with a few examples, so a run never drops ``.jpeg`` files (or any others) without a word.

The folder (a local folder or an object-store prefix) is walked with :func:`folder_files`, the walk the folder
catalog itself uses, and memory stays bounded however large it is: one counter per extension and at most
``examples`` paths. Folders and files are skipped exactly as the catalog skips them (hidden entries, ``_imgx``, the
output folder), and files that ``input.exclude`` leaves out on purpose are counted apart.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import urllib.parse
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..errors import ImgxError, InputError
from . import fs

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow.fs as pafs

__all__ = ["IMAGE_EXTENSIONS", "FolderListing", "LeftOut", "folder_files", "left_out"]

# What imgx decodes (the extensions of the default input.pattern).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})


@dataclasses.dataclass
class LeftOut:
    """Files of a folder catalog that its patterns did not take.

    :param by_extension: lower-case extension (``".jpeg"``, ``""`` for none) -> files left out.
    :param examples: up to a few relative paths, images first.
    :param excluded: files that a pattern took but ``input.exclude`` left out (on purpose; files under an excluded
        glob are never counted as left out by the patterns).
    """

    by_extension: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: list[str] = dataclasses.field(default_factory=list)
    excluded: int = 0

    @property
    def images(self) -> int:
        """Left-out files with an extension imgx decodes: the ones a user most likely wanted."""
        return sum(n for ext, n in self.by_extension.items() if ext in IMAGE_EXTENSIONS)

    @property
    def total(self) -> int:
        return sum(self.by_extension.values())

    def describe(self) -> str:
        """One line for ``imgx plan``, ``--dry-run`` and the run summary; ``""`` when nothing was left out."""
        if not self.total:
            return ""
        counts = ", ".join(
            f"{ext or '(no extension)'} {n:,}"
            for ext, n in sorted(
                self.by_extension.items(), key=lambda kv: (kv[0] not in IMAGE_EXTENSIONS, -kv[1], kv[0])
            )
        )
        text = f"input.pattern left out {self.total:,} file(s) of the folder"
        if self.images:
            text += f", {self.images:,} of them images imgx can read"
        text += f" ({counts}), e.g. {', '.join(self.examples)}"
        if self.images:
            text += "; widen input.pattern (or remove it: every image extension is the default) to take them"
        return text


def left_out(
    root: str | os.PathLike[str],
    patterns: Iterable[re.Pattern[str]],
    excludes: Iterable[re.Pattern[str]] = (),
    *,
    skip_dirs: Iterable[str | os.PathLike[str]] = (),
    examples: int = 5,
    names: Iterable[str] | None = None,
) -> LeftOut:
    """Walk ``root`` as the folder catalog does and count what ``patterns`` do not take (see :class:`LeftOut`).

    :param root: the folder: a local path or an object-store prefix (``s3://bucket/photos``).
    :param patterns: the compiled ``input.pattern`` globs (``imgx.io.catalog.glob_to_regex``).
    :param excludes: the compiled ``input.exclude`` globs.
    :param skip_dirs: folders never walked (the output folder inside the catalog): local paths or URIs.
    :param examples: the most example paths kept.
    :param names: the walk's relative paths when the caller has them already (:class:`FolderListing`).
    :raises InputError: an object-store prefix that cannot be listed (see :func:`folder_files`).
    """
    patterns, excludes = tuple(patterns), tuple(excludes)
    found = LeftOut()
    other_examples: list[str] = []
    for relative in folder_files(root, skip_dirs) if names is None else names:
        if any(p.match(relative) for p in excludes):  # left out on purpose, whatever the patterns say
            found.excluded += any(p.match(relative) for p in patterns)
            continue
        if any(p.match(relative) for p in patterns):
            continue
        name = relative.rsplit("/", 1)[-1]
        ext = os.path.splitext(name)[1].lower()
        found.by_extension[ext] = found.by_extension.get(ext, 0) + 1
        if ext in IMAGE_EXTENSIONS and len(found.examples) < examples:
            found.examples.append(relative)
        elif ext not in IMAGE_EXTENSIONS and len(other_examples) < examples:
            other_examples.append(relative)
    found.examples += other_examples[: examples - len(found.examples)]
    return found


# -- the walk of a folder catalog ------------------------------------------------------------------------------------


def folder_files(root: str | os.PathLike[str], skip_dirs: Iterable[str | os.PathLike[str]] = ()) -> Iterator[str]:
    """The files under ``root`` (a local folder or an object-store prefix) as ``/``-separated paths relative to it,
    in the folder catalog's order: each folder's entries sorted by name, a sub-folder walked where its name sorts
    (``a/x.jpg`` comes before ``b.jpg``), the same order for the same tree wherever it is stored.

    Names starting with ``.`` and the name ``_imgx`` (run state) are skipped, files and folders alike, and so is each
    folder of ``skip_dirs`` (local folders compared by real path, prefixes by their URI with the scheme in lower
    case, percent-escapes decoded and empty parts dropped). One folder is listed at a time (a delimited listing on
    object stores), so memory is bounded by the largest folder times the depth, not by the catalog.

    :raises InputError: an object-store prefix whose listing fails (access denied, retries spent), naming it: a
        prefix that cannot be listed is not an empty one. (A local folder that cannot be listed is skipped, as
        ``os.scandir`` failing always was.)
    """
    text = os.fspath(root)
    skip = {_skip_key(location) for location in skip_dirs}
    if fs.is_local(text):
        return _walk_local(fs.absolute(text, os.curdir) if fs.scheme_of(text) else text, "", skip)
    return _walk_store(text, skip)


class FolderListing:
    """One walk of a folder catalog (:func:`folder_files`), kept for the passes of a run that follow it.

    The first walk that runs to its end writes the relative paths to an Arrow IPC file in a temp folder (streamed, 64k
    names a batch); later walks read that file. A run walks its folder four or five times (left-out count, count,
    duplicate scan, items): on an object store each walk is one LIST request per 1,000 keys, and the folder may change
    meanwhile. With the listing kept, every pass sees the same files and the store is listed once. A walk stopped
    early (``input.limit``) keeps nothing. The temp folder goes when the listing is garbage-collected or
    :meth:`close` is called.
    """

    BATCH = 65_536

    def __init__(self, root: str | os.PathLike[str], skip_dirs: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.root = os.fspath(root)
        self.skip_dirs = tuple(skip_dirs)
        self._kept: str | None = None
        self._cleanup: weakref.finalize | None = None

    def names(self) -> Iterator[str]:
        """The relative paths, in :func:`folder_files` order."""
        import pyarrow as pa

        if self._kept is not None:
            with pa.OSFile(self._kept, "rb") as source, pa.ipc.open_stream(source) as reader:
                for batch in reader:
                    yield from batch.column(0).to_pylist()
            return
        folder = tempfile.mkdtemp(prefix="imgx-listing-")
        path = os.path.join(folder, "names.arrows")
        schema = pa.schema([("name", pa.string())])
        complete = False
        pending: list[str] = []
        try:
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:

                def flush() -> None:
                    writer.write_batch(pa.record_batch([pa.array(pending, pa.string())], schema=schema))
                    pending.clear()

                for name in folder_files(self.root, self.skip_dirs):
                    pending.append(name)
                    if len(pending) >= self.BATCH:
                        flush()
                    yield name
                if pending:
                    flush()
            complete = True
        finally:
            if complete:
                self._kept = path
                self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)
            else:  # stopped early or failed: nothing is kept
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Delete the kept listing now (the next walk lists the folder again)."""
        if self._cleanup is not None:
            self._cleanup()
        self._kept = self._cleanup = None


def _skip_key(location: str | os.PathLike[str]) -> str:
    """What a folder is compared by (see :func:`folder_files`)."""
    text = os.fspath(location)
    if fs.is_local(text):
        return os.path.realpath(fs.absolute(text, os.curdir) if fs.scheme_of(text) else text)
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    key = "/".join(part for part in urllib.parse.unquote(parts.path).split("/") if part not in ("", "."))
    return f"{'gs' if scheme == 'gcs' else scheme}://{parts.netloc}" + (f"/{key}" if key else "")


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "_imgx"


def _walk_local(folder: str, prefix: str, skip: set[str]) -> Iterator[str]:
    try:
        with os.scandir(folder) as entries:
            listed = sorted((e.name, e.path, e.is_dir(follow_symlinks=True)) for e in entries)  # one folder's
    except OSError:
        return
    for name, path, is_dir in listed:
        if _skipped(name):
            continue
        if is_dir:
            if os.path.realpath(path) not in skip:
                yield from _walk_local(path, f"{prefix}{name}/", skip)
        else:
            yield prefix + name


def _walk_store(root: str, skip: set[str]) -> Iterator[str]:
    import pyarrow.fs as pafs

    filesystem, path = fs.resolve(root)
    root_key = _skip_key(root)

    def walk(folder: str, prefix: str) -> Iterator[str]:
        listed = sorted(
            (entry.base_name, entry.path, entry.type == pafs.FileType.Directory)
            for entry in _listing(filesystem, folder, f"{root}/{prefix}" if prefix else root)
            if entry.type in (pafs.FileType.File, pafs.FileType.Directory)
        )
        for name, path, is_dir in listed:
            if _skipped(name):
                continue
            if is_dir:
                if f"{root_key}/{prefix}{name}" not in skip:
                    yield from walk(path, f"{prefix}{name}/")
            else:
                yield prefix + name

    return walk(path, "")


def _listing(filesystem: pafs.FileSystem, folder: str, uri: str) -> list[pafs.FileInfo]:
    """One folder's entries (not recursive), retried on transient errors."""
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(folder, recursive=False, allow_not_found=True)
    try:
        return fs.with_retries(lambda: filesystem.get_file_info(selector), uri=uri, action="list")
    except ImgxError:
        raise
    except Exception as exc:
        reason = re.sub(r"\s*\(Request ID: [^)]*\)", "", str(exc) or type(exc).__name__).strip()
        raise InputError(f"could not list {uri}: {reason}") from exc
