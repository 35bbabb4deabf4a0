"""The results ledger: one row per item x output, a Parquet dataset under ``<output.dir>/_imgx/ledger/``.

Rows are durable as soon as an item finishes: each writer appends them to its own JSON-lines journal
(``_imgx/journal/``) with one ``write`` per row, so a process killed with SIGKILL keeps every row it finished (a torn
last line is dropped on recovery). Every ``compact_rows`` rows, and when the writer closes, the journal becomes a
Parquet part (written to a temp file, then renamed) and is deleted. A run starts by turning journals that a killed
run left behind into parts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .io.atomic import atomic_path

__all__ = [
    "LEDGER_SCHEMA",
    "LedgerRow",
    "LedgerWriter",
    "StatePaths",
    "completed_outputs",
    "read_ledger",
    "recover_journals",
]

Status = Literal["ok", "failed", "skipped"]

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
    ]
)


@dataclasses.dataclass(frozen=True)
class StatePaths:
    """The run-state folders inside an output folder (``_imgx`` is reserved; SKUs can never write there)."""

    out_dir: Path

    @property
    def root(self) -> Path:
        return self.out_dir / "_imgx"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def workers_lock(self) -> Path:
        """Held shared by every worker process of a run for its whole life (see :mod:`imgx.executors.liveness`)."""
        return self.root / "workers.lock"

    def make(self) -> None:
        for folder in (self.ledger, self.journal, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)


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
        row.update(flags=",".join(self.flags), metrics=self.metrics)
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


def _write_part(table: pa.Table, path: Path, tmp_dir: Path) -> None:
    with atomic_path(path, tmp_dir=tmp_dir) as tmp:
        pq.write_table(table, tmp, compression="zstd")


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
    """

    def __init__(self, paths: StatePaths, run_id: str, worker: str, *, compact_rows: int = 5000) -> None:
        self.paths = paths
        self.run_id = run_id
        self.worker = worker
        self.compact_rows = compact_rows
        self._seq = 0
        self._records: list[dict[str, Any]] = []
        self._handle: Any = None

    def _stem(self) -> str:
        return f"{self.run_id}-{self.worker}-{self._seq:05d}"

    def write(self, rows: Iterable[LedgerRow]) -> None:
        """Append rows; each is in the journal (durable against a process kill) when this returns."""
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
        """Turn the current journal into a Parquet part and start a new journal."""
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        journal = self.paths.journal / f"{self._stem()}.jsonl"
        if self._records:
            _write_part(_to_table(self._records), self.paths.ledger / f"part-{self._stem()}.parquet", self.paths.tmp)
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
    if not paths.journal.is_dir():
        return 0
    paths.make()
    for journal in sorted(paths.journal.glob("*.jsonl")):
        part = paths.ledger / f"part-{journal.stem}.parquet"
        if not part.exists():
            records = _read_journal(journal)
            if records:
                _write_part(_to_table(records), part, paths.tmp)
                recovered += len(records)
        journal.unlink(missing_ok=True)
    return recovered


def read_ledger(out_dir: Path, *, columns: list[str] | None = None) -> pa.Table:
    """Every row of the ledger (Parquet parts plus any live or left-over journal), as one table."""
    paths = StatePaths(out_dir)
    tables = []
    parts = sorted(paths.ledger.glob("part-*.parquet")) if paths.ledger.is_dir() else []
    if parts:
        # the full schema: columns added since a part was written read as null there
        tables.append(pq.ParquetDataset(parts, schema=LEDGER_SCHEMA).read(columns=columns).cast(_schema(columns)))
    stems = {p.stem.removeprefix("part-") for p in parts}
    for journal in sorted(paths.journal.glob("*.jsonl")) if paths.journal.is_dir() else []:
        if journal.stem not in stems:
            table = _to_table(_read_journal(journal))
            tables.append(table.select(columns) if columns else table)
    if not tables:
        return _schema(columns).empty_table()
    return pa.concat_tables(tables)


def _schema(columns: list[str] | None) -> pa.Schema:
    return LEDGER_SCHEMA if columns is None else pa.schema([LEDGER_SCHEMA.field(c) for c in columns])


def completed_outputs(out_dir: Path, hashes: Mapping[str, str]) -> dict[str, set[str]]:
    """SKU -> output ids recorded ``ok`` with the current hash whose file still exists (what ``--resume`` skips)."""
    table = read_ledger(out_dir, columns=["sku", "output", "path", "status", "recipe_hash"])
    done: dict[str, set[str]] = {}
    if table.num_rows == 0:
        return done
    rows = table.filter(pc.equal(table["status"], "ok")).to_pydict()
    for sku, output, path, digest in zip(rows["sku"], rows["output"], rows["path"], rows["recipe_hash"], strict=True):
        if hashes.get(output) == digest and path and (out_dir / path).is_file():
            done.setdefault(sku, set()).add(output)
    return done
