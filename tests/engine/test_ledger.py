"""The ledger: rows durable as soon as written, compacted to Parquet, recovered after a kill."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from imgx.ledger import (
    DoneSet,
    LedgerRow,
    LedgerWriter,
    StatePaths,
    compact_ledger,
    ledger_parts,
    read_ledger,
    recover_journals,
    scan_ledger,
)


def row(sku: str, output: str = "a", status: str = "ok", digest: str = "h1", path: str = "") -> LedgerRow:
    return LedgerRow(sku, f"/src/{sku}.jpg", output, path or f"{sku}/{output}.png", status, "", "", 1.0, digest)


def test_rows_are_readable_while_the_writer_is_open_then_compacted(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    writer = LedgerWriter(paths, "run1", "w0", compact_rows=3)
    writer.write([row("a"), row("b")])
    # Not compacted yet: the rows are in the journal, and the reader sees them.
    assert not list(paths.ledger.glob("*.parquet"))
    assert read_ledger(tmp_path)["sku"].to_pylist() == ["a", "b"]
    writer.write([row("c"), row("d")])  # the third row triggers a part
    assert len(list(paths.ledger.glob("*.parquet"))) == 1
    writer.close()
    parts = sorted(paths.ledger.glob("*.parquet"))
    assert len(parts) == 2 and not list(paths.journal.glob("*"))
    table = read_ledger(tmp_path)
    assert sorted(table["sku"].to_pylist()) == ["a", "b", "c", "d"]
    assert set(table.column_names) >= {
        "sku",
        "source",
        "output",
        "path",
        "status",
        "stage",
        "error",
        "duration_ms",
        "recipe_hash",
        "run_id",
        "worker",
        "finished_at",
    }
    assert pq.read_table(parts[0]).num_rows == 3


def test_a_killed_writer_leaves_a_journal_that_recovery_turns_into_a_part(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    writer = LedgerWriter(paths, "run1", "w0")
    writer.write([row("a"), row("b")])
    journal = next(paths.journal.glob("*.jsonl"))
    with journal.open("a") as handle:  # a SIGKILL in the middle of a write leaves a torn last line
        handle.write('{"sku": "c", "outp')
    writer._handle = None  # the process is gone: nothing closes or compacts
    assert recover_journals(paths) == 2
    assert not list(paths.journal.glob("*"))
    assert sorted(read_ledger(tmp_path)["sku"].to_pylist()) == ["a", "b"]
    assert recover_journals(paths) == 0  # idempotent


def done_pairs(out: Path, hashes: dict[str, str], skus: list[str]) -> set[tuple[str, str]]:
    done = DoneSet.from_ledger(out, hashes)
    masks = done.mask(pa.array(skus)).tolist()
    return {(sku, o) for sku, m in zip(skus, masks, strict=True) for i, o in enumerate(done.outputs) if m >> i & 1}


def test_done_pairs_need_ok_status_the_same_hash_and_the_file(tmp_path: Path) -> None:
    for name in ("a/x.png", "b/x.png", "c/x.png", "d/y.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"png")
    writer = LedgerWriter(StatePaths(tmp_path), "run1", "w0")
    writer.write(
        [
            row("a", "x", path="a/x.png"),
            row("b", "x", status="failed", path="b/x.png"),
            row("c", "x", digest="old", path="c/x.png"),
            row("d", "y", path="d/y.png"),
            row("e", "x", path="e/x.png"),  # recorded, but the file is gone
        ]
    )
    writer.close()
    skus = ["a", "b", "c", "d", "e", "f", "a "]
    assert done_pairs(tmp_path, {"x": "h1", "y": "h1"}, skus) == {("a", "x"), ("d", "y")}
    trusting = DoneSet.from_ledger(tmp_path, {"x": "h1"}, check_files=False)
    assert trusting.mask(pa.array(skus)).tolist() == [1, 0, 0, 0, 1, 0, 0]
    assert DoneSet.from_ledger(tmp_path / "empty", {"x": "h1"}).size == 0


def test_parts_are_written_atomically_with_the_umasks_mode(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    old = os.umask(0o027)
    try:
        writer = LedgerWriter(paths, "run1", "w0", compact_rows=2)
        writer.write([row("a"), row("b")])
        writer.close()
    finally:
        os.umask(old)
    (part,) = paths.ledger.glob("*.parquet")
    assert part.stat().st_mode & 0o777 == 0o640 and pq.read_table(part).num_rows == 2
    assert [p.name for p in paths.ledger.iterdir()] == [part.name]
    assert not paths.tmp.exists() or list(paths.tmp.iterdir()) == []  # no temp file left


# -- compaction --------------------------------------------------------------------------------------------------------


def small_parts(paths: StatePaths, rows: int, per_part: int) -> list[str]:
    writer = LedgerWriter(paths, "run1", "w0", compact_rows=per_part)
    writer.write([row(f"s{i:04d}") for i in range(rows)])
    writer.close()
    return [f"s{i:04d}" for i in range(rows)]


def test_compaction_merges_small_parts_and_keeps_each_row_once(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    skus = small_parts(paths, 100, 3)  # 34 parts
    assert len(list(paths.ledger.glob("*.parquet"))) == 34
    assert compact_ledger(paths, target_rows=40) == 34
    parts = sorted(p.name for p in paths.ledger.glob("*.parquet"))
    assert len(parts) == 3 and all(p.startswith("part-merged-") for p in parts)
    assert sorted(read_ledger(tmp_path)["sku"].to_pylist()) == skus
    # parts of at least half the target are left alone; small merged parts merge again
    assert compact_ledger(paths, target_rows=40) == 0
    assert compact_ledger(paths, target_rows=1000) == 3
    assert len(ledger_parts(paths)) == 1 and sorted(read_ledger(tmp_path)["sku"].to_pylist()) == skus


def test_a_reader_between_the_merged_part_and_the_deletions_sees_each_row_once(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    skus = small_parts(paths, 30, 4)
    saved = {p.name: p.read_bytes() for p in paths.ledger.glob("*.parquet")}
    compact_ledger(paths, target_rows=100)
    for name, data in saved.items():  # the small parts back: a compaction killed before it deleted them
        (paths.ledger / name).write_bytes(data)
    assert sorted(read_ledger(tmp_path)["sku"].to_pylist()) == skus
    assert DoneSet.from_ledger(tmp_path, {"a": "h1"}, check_files=False).size == 30
    compact_ledger(paths, target_rows=100)  # finishes the deletions first
    assert sorted(p.name for p in paths.ledger.glob("*.parquet")) == [p.name for p in ledger_parts(paths)]
    assert len(ledger_parts(paths)) == 1 and sorted(read_ledger(tmp_path)["sku"].to_pylist()) == skus


def test_readers_running_during_compaction_always_see_every_row_once(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    skus = small_parts(paths, 600, 5)  # 120 parts
    seen: list[list[str]] = []
    stop = threading.Event()

    def read_repeatedly() -> None:
        while not stop.is_set():
            seen.append(sorted(read_ledger(tmp_path, columns=["sku"])["sku"].to_pylist()))

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for target in (20, 60, 200, 2000):
            compact_ledger(paths, target_rows=target)
    finally:
        stop.set()
        reader.join()
    assert seen and all(s == skus for s in seen)
    assert len(ledger_parts(paths)) == 1


def test_ledger_batches_are_streamed_with_only_the_columns_asked(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    small_parts(paths, 20, 7)
    batches = list(scan_ledger(tmp_path, columns=["sku", "status"], batch_rows=4))
    assert all(b.num_rows <= 4 and b.schema.names == ["sku", "status"] for b in batches)
    assert sum(b.num_rows for b in batches) == 20
