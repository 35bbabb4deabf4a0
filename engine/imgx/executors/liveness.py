"""No process of a dead run may keep writing into an output folder while a new run (a ``--resume``) starts.

- Every worker process holds a shared ``flock`` on ``_imgx/workers.lock`` for its whole life; a new run takes it
  exclusively before it recovers journals and cleans temp files, so it starts only once every process of an earlier
  run on that folder has exited (the kernel drops the lock when a process dies, even by SIGKILL).
- A watchdog thread in every worker exits the process as soon as the run's main process is gone. Workers started by
  a forkserver are not the main process's children, so the parent-death signal alone cannot reach them.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import IO

from ..errors import ImgxError

__all__ = ["hold_worker_lock", "process_identity", "wait_for_earlier_workers", "watch_main_process"]

_HELD: list[IO[str]] = []


def process_identity(pid: int) -> tuple[int, str]:
    """``(pid, start time)``: a pid alone can be reused by another process after the first one dies."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return pid, handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return pid, ""


def _alive(identity: tuple[int, str]) -> bool:
    pid, started = identity
    if started:
        return process_identity(pid) == identity
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_main_process(identity: tuple[int, str], *, interval: float = 0.2) -> None:
    """Start a daemon thread that ends this worker at once when the run's main process is gone."""

    def watch() -> None:
        while _alive(identity):
            time.sleep(interval)
        os._exit(70)

    threading.Thread(target=watch, name="imgx-main-watchdog", daemon=True).start()


def hold_worker_lock(path: Path) -> None:
    """Take a shared lock on the run's worker lock file, held until this process exits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the process
    fcntl.flock(handle, fcntl.LOCK_SH)
    _HELD.append(handle)


def wait_for_earlier_workers(path: Path, *, timeout: float = 60.0) -> None:
    """Block until no process of an earlier run holds ``path`` (they exit within a watchdog interval of their run's
    death); raise :class:`ImgxError` after ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ImgxError(
                        f"worker processes of an earlier run still hold {path}; stop them (they exit when their run "
                        "has ended) and try again"
                    ) from None
                time.sleep(0.05)
