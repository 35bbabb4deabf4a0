"""atomic_write on the real file system: right bytes, no temp files left, no partial file ever visible."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import threading

import pytest

from imgx import OutputError
from imgx.io.atomic import atomic_write


def test_writes_creates_parents_and_leaves_no_temp(tmp_path: pathlib.Path) -> None:
    target, tmp_dir = tmp_path / "out/shoes/red-1/enhanced.webp", tmp_path / "out/_imgx/tmp"
    atomic_write(target, b"first", tmp_dir=tmp_dir)
    assert target.read_bytes() == b"first"
    atomic_write(target, b"second, longer", tmp_dir=tmp_dir, fsync=True)
    assert target.read_bytes() == b"second, longer"
    assert list(tmp_dir.iterdir()) == []


def test_file_mode_follows_the_umask_not_mkstemp(tmp_path: pathlib.Path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.png", b"x", tmp_dir=tmp_path / "tmp")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644


def test_replaces_a_symlink_instead_of_writing_through_it(tmp_path: pathlib.Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.png").symlink_to(outside)
    atomic_write(tmp_path / "out/a.png", b"new", tmp_dir=tmp_path / "tmp")
    assert outside.read_bytes() == b"keep me"
    assert not (tmp_path / "out/a.png").is_symlink() and (tmp_path / "out/a.png").read_bytes() == b"new"


def test_parent_is_a_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "shoes").write_bytes(b"a file where a folder should be")
    tmp_dir = tmp_path / "tmp"
    with pytest.raises(OutputError, match=r"could not write .*shoes/red-1\.png: "):
        atomic_write(tmp_path / "shoes/red-1.png", b"data", tmp_dir=tmp_dir)
    assert list(tmp_dir.iterdir()) == []


def test_target_is_a_directory_fails_after_writing_and_cleans_up(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "out/a.png"
    (target / "child").mkdir(parents=True)  # a non-empty folder: os.replace must fail after the temp is written
    tmp_dir = tmp_path / "tmp"
    with pytest.raises(OutputError, match="could not write"):
        atomic_write(target, b"data" * 1000, tmp_dir=tmp_dir)
    assert list(tmp_dir.iterdir()) == []
    assert target.is_dir()


def test_tmp_dir_is_a_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tmp").write_bytes(b"")
    with pytest.raises(OutputError):
        atomic_write(tmp_path / "a.png", b"data", tmp_dir=tmp_path / "tmp")
    assert not (tmp_path / "a.png").exists()


def test_disk_full_style_write_error_removes_the_temp_file(tmp_path: pathlib.Path) -> None:
    """RLIMIT_FSIZE makes write() fail with EFBIG even for root: the same path as a full disk (ENOSPC)."""
    script = textwrap.dedent(
        f"""
        import pathlib, resource, signal
        from imgx import OutputError
        from imgx.io.atomic import atomic_write
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
        root = pathlib.Path({str(tmp_path)!r})
        atomic_write(root / "a.png", b"old", tmp_dir=root / "tmp")
        try:
            atomic_write(root / "a.png", b"x" * (1 << 20), tmp_dir=root / "tmp")
        except OutputError as exc:
            print("OutputError:", exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "OutputError: could not write" in result.stdout and "too large" in result.stdout.lower()
    assert (tmp_path / "a.png").read_bytes() == b"old"  # the old output is untouched
    assert list((tmp_path / "tmp").iterdir()) == []


def test_cross_file_system_tmp_dir_says_so(tmp_path: pathlib.Path) -> None:
    shm = pathlib.Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a different file system than tmp_path")
    tmp_dir = shm / f"imgx-test-{os.getpid()}"
    try:
        with pytest.raises(OutputError, match="must be on the same file system"):
            atomic_write(tmp_path / "a.png", b"data", tmp_dir=tmp_dir)
        assert list(tmp_dir.iterdir()) == []
    finally:
        if tmp_dir.exists():
            tmp_dir.rmdir()


def test_concurrent_reader_never_sees_a_partial_file(tmp_path: pathlib.Path) -> None:
    target, tmp_dir = tmp_path / "out/a.png", tmp_path / "tmp"
    size = 512 * 1024
    payloads = [bytes([i]) * size for i in range(1, 60)]
    atomic_write(target, payloads[0], tmp_dir=tmp_dir)
    done = threading.Event()
    seen: list[tuple[int, int]] = []
    bad: list[tuple[int, set[int]]] = []

    def read() -> None:
        while not done.is_set():
            data = target.read_bytes()
            values = set(data[::4096]) | {data[-1]} if data else set()
            if len(data) != size or len(values) != 1:
                bad.append((len(data), values))
            seen.append((len(data), data[0]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(4):
            for payload in payloads:
                atomic_write(target, payload, tmp_dir=tmp_dir)
    finally:
        done.set()
        reader.join(timeout=30)
    assert not bad
    assert len(seen) > 10 and len({first for _, first in seen}) > 1  # the reader really raced the writer
    assert target.read_bytes() == payloads[-1]
    assert list(tmp_dir.iterdir()) == []
