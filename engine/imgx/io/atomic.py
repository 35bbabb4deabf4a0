"""Atomic file writes: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import uuid

from ..errors import OutputError

__all__ = ["atomic_write"]


def atomic_write(path: pathlib.Path, data: bytes, *, tmp_dir: pathlib.Path, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a unique temp file in ``tmp_dir`` and an ``os.replace``.

    The temp file is created with mode ``0o666`` minus the umask (like a plain ``open``), not ``mkstemp``'s ``0o600``,
    so outputs are readable by whoever reads the catalog folder. ``tmp_dir`` and ``path``'s parent are created when
    missing. ``tmp_dir`` must be on the same file system as ``path`` (a rename cannot cross file systems); the
    executor uses ``<out_dir>/_imgx/tmp``.

    :param path: the final file; replaced if it exists (a symlink at ``path`` is replaced, not followed).
    :param data: the bytes to write.
    :param tmp_dir: where the temp file lives until the rename.
    :param fsync: also ``fsync`` the file before and the folder after the rename, so the write survives a power loss
        (slower: off by default; a killed process never leaves a partial file either way).
    :raises OutputError: naming ``path`` and the reason (disk full, permission, not a folder, ...); the temp file is
        removed first.
    """
    tmp: str | None = None
    try:
        os.makedirs(tmp_dir, exist_ok=True)
        os.makedirs(path.parent, exist_ok=True)
        name = os.path.join(tmp_dir, f".imgx-{uuid.uuid4().hex}.tmp")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        tmp = name
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(tmp, path)
        tmp = None
        if fsync:
            _fsync_dir(path.parent)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename and os.fspath(exc.filename) != os.fspath(path) and exc.filename != tmp:
            reason += f": {os.fsdecode(exc.filename)}"
        if exc.errno == errno.EXDEV:
            reason += f" (tmp_dir {tmp_dir} must be on the same file system as the output)"
        raise OutputError(f"could not write {path}: {reason}") from exc
    finally:  # also on KeyboardInterrupt: never leave a temp file behind
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
