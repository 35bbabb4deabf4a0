"""atomic_write and atomic_path on the real file system: right bytes and mode, no temp files left, no partial file
ever visible."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imgx import OutputError
from imgx.io.atomic import atomic_path, atomic_write, create_temp, publish


@pytest.fixture
def umask_027() -> Iterator[None]:
    """Run under umask 027 (not the usual 022), so a mode that merely happens to be 0644 does not pass by luck."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


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


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_path_mode_follows_the_umask_even_when_the_writer_made_a_0600_file(tmp_path, umask) -> None:
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "a.bin") as tmp:
            os.unlink(tmp)  # a writer that recreates the file privately, as mkstemp would
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"data")
            os.close(fd)
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_path_writes_by_path_in_the_targets_folder(tmp_path, umask_027) -> None:
    target = tmp_path / "ledger/part-1.parquet"
    table = pa.table({"sku": ["a", "b"]})
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and tmp.is_file() and not target.exists()
        pq.write_table(table, tmp)
    assert pq.read_table(target).equals(table)
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["part-1.parquet"]


def test_atomic_path_with_tmp_dir_and_fsync(tmp_path) -> None:
    target, tmp_dir = tmp_path / "out/a.bin", tmp_path / "out/_imgx/tmp"
    with atomic_path(target, tmp_dir=tmp_dir, fsync=True) as tmp:
        assert tmp.parent == tmp_dir
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("error", [ValueError("the writer failed"), KeyboardInterrupt()])
def test_an_error_inside_atomic_path_keeps_the_old_file_and_removes_the_temp(tmp_path, error) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(error)), atomic_path(target) as tmp:  # the block's own error comes out unchanged
        tmp.write_bytes(b"half of the new")
        raise error
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_create_temp_and_publish_let_a_writer_decide_after_writing(tmp_path, umask_027) -> None:
    target = tmp_path / "models/small/net.pt"
    rejected = create_temp(target)
    rejected.write_bytes(b"wrong")
    rejected.unlink()  # verification failed: never published
    assert not target.exists()
    kept = create_temp(target)
    assert kept.stat().st_mode & 0o777 == 0o640  # created with the umask's mode, not mkstemp's 0600
    kept.write_bytes(b"right")
    publish(kept, target)
    assert target.read_bytes() == b"right" and not kept.exists()
    assert [p.name for p in target.parent.iterdir()] == ["net.pt"]


def test_atomic_path_rename_failure_is_an_output_error_and_cleans_up(tmp_path) -> None:
    target = tmp_path / "a.bin"
    (target / "child").mkdir(parents=True)  # a non-empty folder where the file should go
    with pytest.raises(OutputError, match=r"could not write .*a\.bin"), atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"] and target.is_dir()


def test_a_reader_never_sees_a_partial_file_written_by_path(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "a.bin"
    size = 256 * 1024
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"\x01" * size)
    done = threading.Event()
    bad: list[int] = []
    seen: set[int] = set()

    def read() -> None:
        while not done.is_set():
            data = target.read_bytes()
            if len(data) != size or data.count(data[:1]) != size:
                bad.append(len(data))
            seen.add(data[0])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for value in range(2, 80):
            with atomic_path(target) as tmp, open(tmp, "wb") as file:
                for _ in range(4):  # written in pieces, as a streaming writer would
                    file.write(bytes([value]) * (size // 4))
    finally:
        done.set()
        reader.join(timeout=30)
    assert not bad and len(seen) > 1
    assert target.read_bytes() == bytes([79]) * size
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_without_tmp_dir_uses_the_targets_folder(tmp_path, umask_027) -> None:
    target = tmp_path / "cache/tensorrt/abc.engine"
    atomic_write(target, b"engine")
    atomic_write(target, b"engine 2", fsync=True)
    assert target.read_bytes() == b"engine 2" and target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["abc.engine"]
