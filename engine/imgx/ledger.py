"""The results ledger: one row per item x output, a Parquet dataset under ``<output.dir>/_imgx/ledger/``.

Rows are durable as soon as an item finishes: each writer appends them to its own JSON-lines journal
(``_imgx/journal/``) with one ``write`` per row, so a process killed with SIGKILL keeps every row it finished (a torn
last line is dropped on recovery). Every ``compact_rows`` rows, and when the writer closes, the journal becomes a
Parquet part (written to a temp file, then renamed) and is deleted. A run starts by turning journals that a killed
run left behind into parts.

At scale (see :func:`compact_ledger`, :func:`scan_ledger`, :class:`DoneSet`):

- A run ends by merging small parts into ``part-merged-*.parquet`` files of up to ~10^6 rows, so 10^7 rows are tens
  of files, not thousands. A merged part names the parts it replaces in its Parquet metadata (``imgx.replaces``);
  it is renamed into place before they are deleted, and a reader skips any part a merged part replaces, so a reader
  at any moment sees each row exactly once.
- Readers stream the parts with column projection; nothing loads every row into Python.
- ``--resume`` asks a :class:`DoneSet`: per output, the sorted 64-bit hashes of the SKUs recorded ``ok`` with the
  current recipe hash, plus a second independent 64-bit hash of each to confirm a match (a false skip needs both to
  collide). 16 bytes per done (sku, output) in numpy arrays, no Python object per SKU.
- An output still counts as done only if its file is there, but the driver does not stat each one (10^7 stats, or
  10^7 HEAD requests on object storage): it lists the output tree once (:func:`listed_outputs`: one ``scandir`` per
  folder, or one LIST per 1000 keys on an object store) into the same kind of sorted 64-bit path hashes, and an
  ``ok`` row counts only if its path is in the listing. An output deleted by hand is therefore redone.
- On object storage (``output.dir: s3://...``) there is no append: a writer keeps its rows in memory and writes a
  Parquet part every ``compact_rows`` rows or ``flush_seconds`` seconds (at the next row after that) and when it
  closes; a part is one PUT, whole or absent. A writer killed in between loses at most those seconds of rows: their
  outputs are written, and ``--resume`` writes them again (same bytes) rather than trusting a row that is not there.
  Merged parts are streamed to a temp key under ``_imgx/tmp/`` and copied into place (see
  :func:`imgx.io.fs.atomic_output`).
- Skipped outputs are counted in the run's summary (``outputs_skipped``), not written as ledger rows: one row per
  skipped output would grow the ledger by the catalog's size on every resume. ``skipped`` rows written by older
  versions are still read (and ignored by the current state).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import ImgxError
from .io import fs
from .io.catalog import sku_hash_pair, sorted_positions
from .io.naming import split_output

__all__ = [
    "LEDGER_SCHEMA",
    "DoneSet",
    "LedgerRow",
    "LedgerSnapshot",
    "LedgerWriter",
    "StatePaths",
    "compact_ledger",
    "ledger_parts",
    "listed_outputs",
    "read_ledger",
    "recover_journals",
    "scan_ledger",
]

Status = Literal["ok", "failed", "skipped"]
#: A local folder or file (``Path``) or an object-store URI (``str``).
Location = Path | str

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("sku", pa.string()),
        pa.field("source", pa.string()),
        pa.field("output", pa.string()),
        pa.field("path", pa.string()),
        pa.field("status", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("error", pa.string()),
        pa.field("duration_ms", pa.float64()),
        pa.field("recipe_hash", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("worker", pa.string()),
        pa.field("finished_at", pa.timestamp("ms", tz="UTC")),
        # added after the first ledgers were written: parts without them read as null. flags is text, not a list:
        # the reports take the latest row per (sku, output) with Arrow's hash "first", which has no list kernel
        pa.field("flags", pa.string()),
        pa.field("metrics", pa.string()),
        # the variants row an output was made for ("" for none): its output is "<node>@<variant>"
        pa.field("variant", pa.string()),
    ]
)


@dataclasses.dataclass(frozen=True)
class StatePaths:
    """The run-state folders inside an output folder (``_imgx`` is reserved; SKUs can never write there).

    :param out_dir: a local folder or an object-store URI (``s3://bucket/prefix``). Each location below is a ``Path``
        for a local folder and a URI ``str`` for an object store (journals, the lock file and the workers' lock exist
        only locally: object stores get the run marker of :func:`imgx.io.fs.acquire_run_marker`).
    """

    out_dir: Location

    def __post_init__(self) -> None:
        local = fs.is_local(self.out_dir)
        object.__setattr__(self, "out_dir", Path(fs.absolute(self.out_dir, ".")) if local else str(self.out_dir))

    @property
    def local(self) -> bool:
        """Whether the output folder is on the local file system."""
        return isinstance(self.out_dir, Path)

    def _at(self, relative: str) -> Location:
        return self.out_dir / relative if isinstance(self.out_dir, Path) else fs.join(self.out_dir, relative)

    @property
    def root(self) -> Location:
        return self._at("_imgx")

    @property
    def ledger(self) -> Location:
        return self._at("_imgx/ledger")

    @property
    def journal(self) -> Path:
        return self._local("_imgx/journal")

    @property
    def tmp(self) -> Location:
        return self._at("_imgx/tmp")

    def variants_manifest(self, suffix: str) -> Location:
        """``_imgx/variants.parquet`` or ``.csv``: the outputs made per variants row (see
        :func:`imgx.ledger_report.write_variants_manifest`)."""
        return self._at(f"_imgx/variants{suffix}")

    @property
    def lock(self) -> Path:
        return self._local("_imgx/lock")

    @property
    def workers_lock(self) -> Path:
        """Held shared by every worker process of a run for its whole life (see :mod:`imgx.executors.liveness`)."""
        return self._local("_imgx/workers.lock")

    def _local(self, relative: str) -> Path:
        if not isinstance(self.out_dir, Path):
            raise TypeError(f"{relative} exists only in a local output folder, not in {self.out_dir}")
        return self.out_dir / relative

    def make(self) -> None:
        """Create the local state folders (object stores need none)."""
        if isinstance(self.out_dir, Path):
            for folder in (self.ledger, self.journal, self.tmp):
                Path(folder).mkdir(parents=True, exist_ok=True)


def _child(folder: Location, name: str) -> Location:
    return folder / name if isinstance(folder, Path) else f"{folder}/{name}"


def _name(location: Location) -> str:
    return location.name if isinstance(location, Path) else location.rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class LedgerRow:
    """One item x output result.

    :param sku: the item's SKU.
    :param source: where the image came from.
    :param output: the output node id.
    :param path: the written file, relative to the output folder ("" when nothing was written).
    :param status: ``ok``, ``failed`` or ``skipped`` (done by an earlier run; ``--resume``).
    :param stage: where it failed: ``read``, ``decode``, ``catalog``, a node id, ``encode`` or ``write``.
    :param error: the reason, for failed rows.
    :param duration_ms: time spent on this item's lineage for this output (read, decode, stages, encode, write).
    :param recipe_hash: hash of the output's lineage and encoding settings (see :class:`imgx.plan.Plan`).
    :param flags: ``node:flag`` for what the output's stages flagged (``centred:fill_below_min``), comma-separated
        in the ledger ("" for none).
    :param metrics: JSON object of what its stages measured, keys ``node.name`` (``{"centred.fill": 0.62}``); "".

    The ledger's ``variant`` column is the variants row of ``output`` (``hero@vintage`` -> ``vintage``; "" for none).
    """

    sku: str
    source: str
    output: str
    path: str
    status: Status
    stage: str
    error: str
    duration_ms: float
    recipe_hash: str
    flags: tuple[str, ...] = ()
    metrics: str = ""

    def record(self, run_id: str, worker: str) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row.update(run_id=run_id, worker=worker, finished_at=dt.datetime.now(dt.timezone.utc).isoformat())
        row.update(flags=",".join(self.flags), metrics=self.metrics, variant=split_output(self.output)[1])
        return row


def _to_table(records: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in LEDGER_SCHEMA.names}
    for record in records:
        for name in LEDGER_SCHEMA.names:
            value = record.get(name)
            if name == "finished_at" and isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=LEDGER_SCHEMA)


def _write_part(table: pa.Table, location: Location, tmp_dir: Location) -> None:
    """One Parquet part, whole or absent (a part is at most ``compact_rows`` rows: written from memory)."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    fs.write_bytes_atomic(str(location), buffer.getvalue().to_pybytes(), tmp_dir=tmp_dir)


def _read_journal(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # torn last line of a killed writer: that item's output is redone on --resume
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class LedgerWriter:
    """Appends rows for one writer (a worker process) of one run.

    :param paths: the output folder's state paths.
    :param run_id: the run's id.
    :param worker: this writer's name, unique within the run.
    :param compact_rows: journal rows per Parquet part.
    :param flush_seconds: object stores only (no journal): a part is also written at the first row this long after
        the oldest row not yet in a part.
    """

    def __init__(
        self, paths: StatePaths, run_id: str, worker: str, *, compact_rows: int = 5000, flush_seconds: float = 5.0
    ) -> None:
        self.paths = paths
        self.run_id = run_id
        self.worker = worker
        self.compact_rows = compact_rows
        self.flush_seconds = flush_seconds
        self._seq = 0
        self._records: list[dict[str, Any]] = []
        self._handle: Any = None
        self._oldest = 0.0

    def _stem(self) -> str:
        return f"{self.run_id}-{self.worker}-{self._seq:05d}"

    def write(self, rows: Iterable[LedgerRow]) -> None:
        """Append rows; each is in the journal (durable against a process kill) when this returns. On an object
        store, rows are durable once their part is written (see the class docs)."""
        if not self.paths.local:
            for row in rows:
                if not self._records:
                    self._oldest = time.monotonic()
                self._records.append(row.record(self.run_id, self.worker))
            if len(self._records) >= self.compact_rows or (
                self._records and time.monotonic() - self._oldest >= self.flush_seconds
            ):
                self.compact()
            return
        for row in rows:
            if self._handle is None:
                self.paths.journal.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.paths.journal / f"{self._stem()}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            record = row.record(self.run_id, self.worker)
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()
            self._records.append(record)
            if len(self._records) >= self.compact_rows:
                self.compact()

    def compact(self) -> None:
        """Turn the current journal (on an object store: the rows held) into a Parquet part and start a new one."""
        journal = None
        if self.paths.local:
            if self._handle is None:
                return
            self._handle.close()
            self._handle = None
            journal = self.paths.journal / f"{self._stem()}.jsonl"
        elif not self._records:
            return
        if self._records:
            part = _child(self.paths.ledger, f"part-{self._stem()}.parquet")
            _write_part(_to_table(self._records), part, self.paths.tmp)
        if journal is not None:
            journal.unlink(missing_ok=True)
        self._records = []
        self._seq += 1

    def close(self) -> None:
        self.compact()


def recover_journals(paths: StatePaths) -> int:
    """Turn journals left by killed writers into Parquet parts; returns how many rows were recovered.

    Call only while holding the output folder's run lock (no live writer).
    """
    recovered = 0
    if not paths.local or not paths.journal.is_dir():
        return 0
    paths.make()
    for journal in sorted(paths.journal.glob("*.jsonl")):
        part = Path(paths.ledger) / f"part-{journal.stem}.parquet"
        if not part.exists():
            records = _read_journal(journal)
            if records:
                _write_part(_to_table(records), part, paths.tmp)
                recovered += len(records)
        journal.unlink(missing_ok=True)
    return recovered


_MERGED = "part-merged-"
_REPLACES = b"imgx.replaces"


def _replaced(part: Location) -> list[str]:
    """The part names a merged part replaces (from its Parquet metadata; empty for a plain part)."""
    if not _name(part).startswith(_MERGED):
        return []
    with _open_part(part) as handle:
        metadata = pq.ParquetFile(handle).schema_arrow.metadata or {}
    return json.loads(metadata.get(_REPLACES, b"[]"))


def _open_part(part: Location) -> pa.NativeFile:
    """A reader for a part; ``FileNotFoundError`` if it is gone (on every store)."""
    if isinstance(part, Path):
        return pa.OSFile(str(part))
    try:
        return fs.open_input(part)
    except ImgxError as exc:
        if str(exc).startswith("source not found"):
            raise FileNotFoundError(part) from exc
        raise


def _part_names(folder: Location) -> list[Location]:
    if isinstance(folder, Path):
        return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    return [_child(folder, n) for n in fs.names(folder) if n.startswith("part-") and n.endswith(".parquet")]


def ledger_parts(paths: StatePaths) -> list[Location]:
    """The Parquet parts a reader reads now: every part, less those a merged part replaces (sorted by name)."""
    parts = _part_names(paths.ledger)
    replaced: set[str] = set()
    for part in parts:
        try:
            replaced.update(_replaced(part))
        except FileNotFoundError:  # merged again and deleted since the listing: the newer merged part is listed
            continue
    return [p for p in parts if _name(p) not in replaced]  # a part gone since the listing fails its open: retried


def _snapshot(paths: StatePaths, columns: list[str]) -> tuple[list[pa.NativeFile], list[pa.Table]]:
    """Open every part now (an open file survives a concurrent compaction deleting it) and read the journals of live
    writers whose rows are not in a part yet. Retried from the listing when a file vanishes between listing and
    opening, or when a second listing after the opens differs (a ``readdir`` racing a rename may miss the new merged
    part and an old part at once), so each row is seen exactly once."""
    for _ in range(20):
        handles: list[pa.NativeFile] = []
        try:
            journals = sorted(paths.journal.glob("*.jsonl")) if paths.local and paths.journal.is_dir() else []
            parts = ledger_parts(paths)
            for part in parts:
                handles.append(_open_part(part))
            if ledger_parts(paths) != parts:  # a directory listing racing a rename can miss entries: list again
                raise FileNotFoundError(paths.ledger)
            stems = {_name(p).removeprefix("part-").removesuffix(".parquet") for p in parts}
            tables = []
            for journal in journals:
                if journal.stem not in stems:
                    records = _read_journal(journal)
                    if records:
                        tables.append(_to_table(records).select(columns))
            return handles, tables
        except FileNotFoundError:
            for handle in handles:
                handle.close()
    raise OSError(f"the ledger in {paths.ledger} kept changing while being read; try again")


class LedgerSnapshot:
    """The ledger as of one moment: its parts opened (an open file survives a compaction deleting it) and the live
    journals read. :meth:`batches` can be called several times and streams the same rows each time.

    :param out_dir: the output folder (a local folder or an object-store URI).
    """

    def __init__(self, out_dir: Location) -> None:
        self._handles, self._journals = _snapshot(StatePaths(out_dir), list(LEDGER_SCHEMA.names))

    @property
    def num_rows(self) -> int:
        """How many rows :meth:`batches` yields (from the Parquet footers and the journals read)."""
        return sum(pq.ParquetFile(h).metadata.num_rows for h in self._handles) + sum(t.num_rows for t in self._journals)

    def batches(self, columns: list[str] | None = None, *, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Stream the rows (parts, then journals) as record batches of ``columns`` (Parquet column projection)."""
        columns = list(LEDGER_SCHEMA.names) if columns is None else columns
        schema = _schema(columns)
        for handle in self._handles:
            file = pq.ParquetFile(handle)
            available = [c for c in columns if c in file.schema_arrow.names]
            for batch in file.iter_batches(batch_size=batch_rows, columns=available):
                yield _conform(batch, schema)
        for table in self._journals:
            yield from table.select(columns).cast(schema).to_batches(batch_rows)

    def close(self) -> None:
        for handle in self._handles:
            handle.close()

    def __enter__(self) -> LedgerSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scan_ledger(
    out_dir: Location, *, columns: list[str] | None = None, batch_rows: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Stream the ledger's rows (Parquet parts, then journals of live writers) as record batches of ``columns``.

    Only ``columns`` are read (Parquet column projection); memory is one batch plus one row group.
    """
    with LedgerSnapshot(out_dir) as snapshot:
        yield from snapshot.batches(columns, batch_rows=batch_rows)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns and types (a column an older part lacks is null)."""
    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        column = batch.column(index) if index >= 0 else pa.nulls(batch.num_rows, field.type)
        arrays.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def read_ledger(out_dir: Location, *, columns: list[str] | None = None) -> pa.Table:
    """Every row of the ledger (Parquet parts plus any live or left-over journal), as one table.

    For small ledgers and tests; code that must scale streams with :func:`scan_ledger`.
    """
    schema = _schema(columns)
    return pa.Table.from_batches(list(scan_ledger(out_dir, columns=columns)), schema=schema)


def _schema(columns: list[str] | None) -> pa.Schema:
    return LEDGER_SCHEMA if columns is None else pa.schema([LEDGER_SCHEMA.field(c) for c in columns])


class DoneSet:
    """What ``--resume`` skips: the (sku, output) pairs the ledger records ``ok`` with the output's current hash.

    Per output, two numpy arrays sorted together: a 64-bit hash of each done SKU and a second, independent 64-bit
    hash of it. :meth:`mask` looks a batch of SKUs up with ``searchsorted`` and confirms with the second hash, so a
    catalog SKU is skipped only when both hashes match (~2^-128 per pair by chance). Memory: 16 bytes per done
    (sku, output). Built by streaming the ledger's ``sku, output, status, recipe_hash`` columns.

    :param outputs: the output ids, in the plan's order; bit ``i`` of a mask is ``outputs[i]``.
    """

    def __init__(self, outputs: tuple[str, ...], keys: list[np.ndarray], checks: list[np.ndarray]) -> None:
        self.outputs = outputs
        self._keys = keys
        self._checks = checks

    @property
    def size(self) -> int:
        """How many (sku, output) pairs are done."""
        return sum(len(k) for k in self._keys)

    @classmethod
    def empty(cls, outputs: tuple[str, ...]) -> DoneSet:
        return cls(outputs, [np.empty(0, np.uint64) for _ in outputs], [np.empty(0, np.uint64) for _ in outputs])

    @classmethod
    def from_ledger(cls, out_dir: Location, hashes: Mapping[str, str], *, check_files: bool = True) -> DoneSet:
        """The done pairs of ``out_dir``'s ledger for the current ``hashes`` (output id -> recipe hash).

        :param check_files: count a pair only if its output file is in a listing of ``out_dir`` (one pass over the
            tree, hashed like the SKUs; no stat per output). ``False`` trusts the ledger alone.
        """
        outputs = tuple(hashes)
        keys: list[list[np.ndarray]] = [[] for _ in outputs]
        checks: list[list[np.ndarray]] = [[] for _ in outputs]
        listing = listed_outputs(out_dir) if check_files else None
        columns = ["sku", "output", "status", "recipe_hash", *(["path"] if check_files else [])]
        for batch in scan_ledger(out_dir, columns=columns):
            ok = pc.equal(batch.column("status"), "ok")
            if listing is not None:
                ok = pc.and_(ok, pa.array(_contains(listing, batch.column("path"))))
            for index, output in enumerate(outputs):
                current = pc.and_(
                    pc.equal(batch.column("output"), output), pc.equal(batch.column("recipe_hash"), hashes[output])
                )
                skus = batch.column("sku").filter(pc.fill_null(pc.and_(ok, current), False))
                if len(skus):
                    key, check = sku_hash_pair(skus)
                    keys[index].append(key)
                    checks[index].append(check)
        del listing  # before the sorts: the two peaks do not add up
        done = cls.empty(outputs)
        for index in range(len(outputs)):
            if keys[index]:
                done._keys[index], done._checks[index] = _sorted_unique(keys[index], checks[index])
            keys[index] = checks[index] = []  # free as we go
        return done

    def mask(self, skus: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Per SKU, an ``int64`` bit mask of its done outputs (bit ``i``: ``outputs[i]``)."""
        if isinstance(skus, pa.ChunkedArray):
            skus = skus.combine_chunks()
        result = np.zeros(len(skus), dtype=np.int64)
        if not self.size or not len(skus):
            return result
        key, check = sku_hash_pair(skus)
        for index, (keys, checks) in enumerate(zip(self._keys, self._checks, strict=True)):
            if not len(keys):
                continue
            position = sorted_positions(keys, key)
            found = (keys[position] == key) & (checks[position] == check)
            result |= found.astype(np.int64) << index
        return result


def _contains(listing: tuple[np.ndarray, np.ndarray], values: pa.Array) -> np.ndarray:
    """Per value, whether it is in a sorted ``(keys, checks)`` hash listing (both hashes must match)."""
    keys, checks = listing
    if not len(keys) or not len(values):
        return np.zeros(len(values), dtype=bool)
    key, check = sku_hash_pair(values)
    position = sorted_positions(keys, key)
    return (keys[position] == key) & (checks[position] == check)


def listed_outputs(out_dir: Location, *, batch_rows: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """The files under ``out_dir`` (paths relative to it, ``_imgx`` left out) as sorted ``(hash, second hash)``
    arrays: 16 bytes per file, no Python object kept per file. An object store is listed one prefix at a time
    (:func:`imgx.io.fs.walk`: memory is bounded by the largest single folder's listing)."""
    keys: list[np.ndarray] = []
    checks: list[np.ndarray] = []
    names: list[str] = []

    def flush() -> None:
        key, check = sku_hash_pair(pa.array(names, pa.string()))
        keys.append(key)
        checks.append(check)
        names.clear()

    if not fs.is_local(out_dir):
        root = fs.resolve(str(out_dir))[1].rstrip("/") + "/"
        for info in fs.walk(str(out_dir)):  # a prefix with nothing under it lists nothing
            names.append(info.path[len(root) :])
            if len(names) >= batch_rows:
                flush()
    pending = [(str(out_dir), "")] if fs.is_local(out_dir) else []
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = os.scandir(folder)  # streamed: a folder of 10^6 files is never a list of DirEntry objects
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not (prefix == "" and entry.name == "_imgx"):
                        pending.append((entry.path, prefix + entry.name + "/"))
                else:
                    names.append(prefix + entry.name)
                    if len(names) >= batch_rows:
                        flush()
    if names:
        flush()
    if not keys:
        return np.empty(0, np.uint64), np.empty(0, np.uint64)
    return _sorted_unique(keys, checks)


def _sorted_unique(keys: list[np.ndarray], checks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sort (key, check) pairs by key and drop repeats. A key seen with two different checks (two SKUs whose first
    hashes collide) is dropped: those SKUs are redone rather than one of them wrongly skipped."""
    key = np.concatenate(keys)
    keys.clear()  # the caller's lists: their arrays go as soon as they are copied
    check = np.concatenate(checks)
    checks.clear()
    order = np.argsort(key)
    key = key[order]
    check = check[order]
    del order
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    conflict = np.zeros(len(key), dtype=bool)
    conflict[1:] = ~first[1:] & (check[1:] != check[:-1])
    if conflict.any():
        bad = np.unique(key[conflict])
        keep = ~np.isin(key[starts], bad)
        starts = starts[keep]
    return key[starts].copy(), check[starts].copy()


def compact_ledger(paths: StatePaths, *, target_rows: int = 1_000_000) -> int:
    """Merge small parts into ``part-merged-*`` parts of up to ``target_rows`` rows; returns how many parts went.

    Call only while holding the output folder's run lock (no other compaction, no writer turning journals into
    parts). Each merged part is written whole (:func:`imgx.io.fs.atomic_output`: a temp file renamed, or a temp key
    copied, into place), and names the parts it replaces in its metadata, before those are deleted: a reader at any
    moment sees each row exactly once (see :func:`ledger_parts`). A part is small below half ``target_rows``; a merged
    part that is small is merged again.
    """
    parts = _part_names(paths.ledger)
    for part in parts:  # a compaction killed before its deletions
        if _name(part).startswith(_MERGED):
            for name in _replaced(part):
                _delete(_child(paths.ledger, name))
    small = []
    for part in ledger_parts(paths):
        with _open_part(part) as handle:
            rows = pq.ParquetFile(handle).metadata.num_rows
        if rows < target_rows // 2:
            small.append((part, rows))
    groups: list[list[Location]] = [[]]
    rows_in_group = 0
    for part, rows in small:
        if groups[-1] and rows_in_group + rows > target_rows:
            groups.append([])
            rows_in_group = 0
        groups[-1].append(part)
        rows_in_group += rows
    removed = 0
    paths.make()
    for group in groups:
        if len(group) < 2:
            continue
        schema = LEDGER_SCHEMA.with_metadata({_REPLACES: json.dumps([_name(p) for p in group]).encode()})
        merged = _child(
            paths.ledger, f"{_MERGED}{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        )
        with (
            fs.atomic_output(str(merged), tmp_dir=paths.tmp) as stream,
            pq.ParquetWriter(stream, schema, compression="zstd") as writer,
        ):
            for part in group:
                with _open_part(part) as handle:
                    for batch in pq.ParquetFile(handle).iter_batches(batch_size=65_536):
                        writer.write_batch(_conform(batch, LEDGER_SCHEMA), row_group_size=131_072)
        for part in group:
            _delete(part)
            removed += 1
    return removed


def _delete(location: Location) -> None:
    if isinstance(location, Path):
        location.unlink(missing_ok=True)
    else:
        fs.delete(location)
