"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Every temp-then-rename writer of imgx goes through this module: outputs, the ledger's Parquet parts, reports, the
model cache, exported ONNX graphs, TensorRT engines and the sample catalogs.

- :func:`atomic_write` writes bytes.
- :func:`atomic_path` is a context manager for writers that write by path (``pyarrow.parquet.write_table``,
  ``torch.onnx.export``): it yields a temp path and renames it onto the target when the block ends without an error.
- :func:`create_temp` and :func:`publish` are its two halves, for a writer that decides after writing whether to keep
  the file (the model cache checks a sha256 first).
- :func:`file_lock` makes concurrent writers of one costly file (a model download, a compiled package) make it once.

The file ends with mode ``0o666`` minus the umask, like a plain ``open`` (``0o644`` under umask ``022``), not
``mkstemp``'s ``0o600``: outputs and a shared model cache stay readable by whoever the umask allows. The temp file
lives in the target's folder, or in a given ``tmp_dir`` that must be on the same file system (a rename cannot cross
file systems); its name starts with a dot, so catalog scans skip it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import uuid
from collections.abc import Iterator

from ..errors import OutputError

__all__ = ["atomic_path", "atomic_write", "create_temp", "file_lock", "publish"]

_PathLike = str | os.PathLike[str]


def atomic_write(path: _PathLike, data: bytes, *, tmp_dir: _PathLike | None = None, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a unique temp file and an ``os.replace``.

    :param path: the final file; replaced if it exists (a symlink at ``path`` is replaced, not followed). Its folder
        is created when missing.
    :param data: the bytes to write.
    :param tmp_dir: where the temp file lives until the rename (created when missing; the executor uses
        ``<out_dir>/_imgx/tmp``); default: ``path``'s folder.
    :param fsync: also ``fsync`` the file before and the folder after the rename, so the write survives a power loss
        (slower: off by default; a killed process never leaves a partial file either way).
    :raises OutputError: naming ``path`` and the reason (disk full, permission, not a folder, ...); the temp file is
        removed first.
    """
    path = pathlib.Path(path)
    with atomic_path(path, tmp_dir=tmp_dir, fsync=fsync) as tmp:
        try:
            with open(tmp, "wb") as file:
                file.write(data)
        except OSError as exc:
            raise _output_error(path, exc, tmp=tmp, tmp_dir=tmp_dir) from exc


@contextlib.contextmanager
def atomic_path(path: _PathLike, *, tmp_dir: _PathLike | None = None, fsync: bool = False) -> Iterator[pathlib.Path]:
    """Yield a fresh, empty temp path for ``path``; when the block ends without an error, rename it onto ``path``.

    Write the file at the yielded path (the writer may truncate or recreate it). On an error inside the block, or an
    interrupt, the temp file is removed, ``path`` is left as it was and the error propagates unchanged.

    :param path: the final file (see :func:`atomic_write`).
    :param tmp_dir: see :func:`atomic_write`.
    :param fsync: see :func:`atomic_write`.
    :raises OutputError: when the temp file cannot be created or renamed onto ``path``.
    """
    path = pathlib.Path(path)
    tmp = create_temp(path, tmp_dir=tmp_dir)
    try:
        yield tmp
        publish(tmp, path, fsync=fsync, tmp_dir=tmp_dir)
    finally:  # also on KeyboardInterrupt: never leave a temp file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def create_temp(path: _PathLike, *, tmp_dir: _PathLike | None = None) -> pathlib.Path:
    """Create an empty, uniquely named temp file for ``path`` and return its path; the caller removes it unless it
    :func:`publish` es it. The folders are created when missing.

    :param path: the final file the temp file will replace.
    :param tmp_dir: see :func:`atomic_write`.
    :raises OutputError: when a folder or the file cannot be created.
    """
    path = pathlib.Path(path)
    folder = pathlib.Path(tmp_dir) if tmp_dir is not None else path.parent
    tmp = folder / f".imgx-{uuid.uuid4().hex}.tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        if tmp_dir is not None:
            os.makedirs(path.parent, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise _output_error(path, exc, tmp=tmp, tmp_dir=tmp_dir) from exc
    os.close(fd)
    return tmp


def publish(tmp: _PathLike, path: _PathLike, *, fsync: bool = False, tmp_dir: _PathLike | None = None) -> None:
    """Give the written temp file ``tmp`` mode ``0o666`` minus the umask and rename it onto ``path`` (atomic).

    :param tmp: a file from :func:`create_temp` for ``path`` (or any file on ``path``'s file system).
    :param path: the final file; replaced if it exists.
    :param fsync: ``fsync`` the file before and ``path``'s folder after the rename.
    :param tmp_dir: only named in the error when the rename crosses file systems.
    :raises OutputError: naming ``path`` and the reason; ``tmp`` is left for the caller to remove.
    """
    path = pathlib.Path(path)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        if fsync:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        if fsync:
            _fsync(path.parent, os.O_RDONLY)
    except OSError as exc:
        raise _output_error(path, exc, tmp=tmp, tmp_dir=tmp_dir) from exc


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it (``os.umask`` sets it: racy in threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: _PathLike, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _output_error(path: pathlib.Path, exc: OSError, *, tmp: _PathLike | None, tmp_dir: _PathLike | None) -> OutputError:
    reason = exc.strerror or str(exc)
    if exc.filename and os.fspath(exc.filename) not in (os.fspath(path), os.fspath(tmp) if tmp else None):
        reason += f": {os.fsdecode(exc.filename)}"
    if exc.errno == errno.EXDEV:
        where = f"tmp_dir {tmp_dir}" if tmp_dir is not None else "the temp file"
        reason += f" ({where} must be on the same file system as the output)"
    return OutputError(f"could not write {path}: {reason}")


@contextlib.contextmanager
def file_lock(target: _PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``<folder>/.<name>.lock`` while making ``target`` (a no-op without fcntl), so of
    several processes that would make the same file (a model download, a compiled package) one makes it and the
    others, once they hold the lock, find it made."""
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache correct
        yield
        return
    with (target.parent / f".{target.name}.lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
