"""What runs inside Ray workers: the stage groups of :mod:`imgx.executors.ray_layout` over chunks of work units.

Every group reuses :class:`~imgx.executors.processor.BatchProcessor`, so reading, decoding, per-item isolation,
encoding, atomic writes and ledger rows are those of the local executor, byte for byte. CPU groups are plain
functions (Ray tasks) that keep one processor per worker process and run; model groups are classes (an actor pool)
whose stages, and so their models, load once per actor. Batches are ``pyarrow`` tables of ``chunk`` ids and pickled
payloads: work units into the first group, :class:`~imgx.executors.processor.ItemState` lists between groups, a
:class:`~imgx.executors.processor.BatchResult` per chunk out of the last.

Killed workers. Ray retries a task whose worker died; the last group claims a marker file per chunk before it writes
anything, so a retried chunk is recognised and redoes only the outputs the dead worker had not journaled, and returns
the rows it had. Nothing is lost and no ledger row is written twice. Workers hold ``_imgx/workers.lock`` shared for the
length of each call, so a new run on the folder (a ``--resume``) waits for calls of a dead run to end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pickle
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..io import fs
from ..item import freeze
from ..ledger import LedgerRow, StatePaths, read_ledger
from ..plan import Node
from ..registry import PluginConfig, load_registry
from .processor import BatchProcessor, BatchResult, ItemState, WorkUnit, add_work, io_measured, pixel_groups
from .ray_layout import StageGroup

__all__ = ["ModelGroup", "Payload", "chunk_markers", "run_cpu_group"]

_PROCESSORS: dict[tuple[str, int], BatchProcessor] = {}


@dataclasses.dataclass(frozen=True)
class Payload:
    """What every worker needs to rebuild its part of the run; small and picklable.

    :param spec_bytes: the pickled :class:`~imgx.executors.processor.RunSpec` (unpickled after the plugins load,
        so stages of ``--plugins-dir`` modules resolve).
    :param plugin_config: how to load the plugins.
    :param run_id: the run's id.
    :param out_dir: the resolved output folder (chunk markers live in its ``_imgx``).
    :param groups: the plan's stage groups.
    """

    spec_bytes: bytes
    plugin_config: PluginConfig
    run_id: str
    out_dir: str
    groups: tuple[StageGroup, ...]


def chunk_markers(out_dir: str | Path, run_id: str) -> str:
    """The folder (or prefix) of a run's chunk markers: one empty file or object per chunk the last group has
    started, created with :func:`imgx.io.fs.create_exclusive` (``O_EXCL`` locally, a conditional put on S3), so
    exactly one attempt of a chunk, on any node, sees it new."""
    return f"{StatePaths(out_dir).root}/ray-chunks/{run_id}"


def _worker_name() -> str:
    """Unique across the cluster: a node prefix and the process id (ledger parts are named after it)."""
    try:
        import ray

        node = ray.get_runtime_context().get_node_id()[:8]
    except Exception:
        node = "local"
    return f"ray-{node}-{os.getpid()}"


def _limit_threads(cpus: float) -> None:
    """One task per reserved CPU: keep OpenCV's and torch's own thread pools from oversubscribing the node."""
    import cv2

    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, int(cpus)))


def _build(payload: Payload, index: int, cpus: float) -> BatchProcessor:
    _limit_threads(cpus)
    # loaded before the plan is unpickled, so one-off plugin modules are importable; stages look names up in it
    registry = load_registry(payload.plugin_config)
    spec = dataclasses.replace(pickle.loads(payload.spec_bytes), threads=max(1, int(cpus)))
    return BatchProcessor(spec, worker=_worker_name(), registry=registry, nodes=payload.groups[index].nodes)


def _cached_processor(payload: Payload, index: int) -> BatchProcessor:
    """This process's processor for a CPU group of this run; those of earlier runs are released."""
    key = (payload.run_id, index)
    found = _PROCESSORS.get(key)
    if found is not None:
        return found
    for stale in [k for k in _PROCESSORS if k[0] != payload.run_id]:
        for stage in _PROCESSORS.pop(stale).stages.values():
            stage.close()  # its ledger was compacted at the end of its last call: nothing is left open
    processor = _PROCESSORS[key] = _build(payload, index, 1.0)
    return processor


@contextlib.contextmanager
def _shared_lock(paths: StatePaths) -> Iterator[None]:
    """Hold the output folder's workers' lock shared for one call (local output folders only: an object store has no
    temp files or journals for a later run's clean-up to race)."""
    if not paths.local:
        yield
        return
    path = paths.workers_lock
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def _load_states(blob: bytes) -> list[ItemState]:
    states: list[ItemState] = pickle.loads(blob)
    for state in states:  # unpickled arrays are writable again; stages must not write into shared inputs
        for item in state.values.values():
            freeze(item.image)
            freeze(item.alpha)
    return states


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _table(chunks: Sequence[int], column: str, blobs: Sequence[bytes]) -> pa.Table:
    return pa.table({"chunk": pa.array(chunks, pa.int64()), column: pa.array(blobs, pa.large_binary())})


def run_cpu_group(batch: pa.Table, payload: Payload, index: int) -> pa.Table:
    """A Ray task: run CPU group ``index`` on every chunk of ``batch`` (one block)."""
    group = payload.groups[index]
    processor = _cached_processor(payload, index)
    nodes = [processor.plan.node(node_id) for node_id in group.nodes]
    chunks = batch.column("chunk").to_pylist()
    blobs = batch.column("units" if group.first else "states").to_pylist()
    out: list[bytes] = []
    with _shared_lock(processor.paths):
        writer = _ChunkWriter(processor, payload) if group.last else None
        try:
            for chunk, blob in zip(chunks, blobs, strict=True):
                if writer is not None and group.first:
                    out.append(_dump(writer.run_units(chunk, pickle.loads(blob))))
                elif writer is not None:
                    out.append(_dump(writer.run_states(chunk, _load_states(blob), nodes)))
                else:
                    states = processor.prepare(pickle.loads(blob)) if group.first else _load_states(blob)
                    processor.run_nodes(states, nodes)
                    out.append(_dump(states))
        finally:
            processor.ledger.compact()  # this call's rows become a Parquet part: no journal stays open between calls
    return _table(chunks, "result" if group.last else "states", out)


class ModelGroup:
    """A Ray actor: a model stage built once (its model loaded once per actor), called on batches of chunks.

    :param payload: the run.
    :param index: the group's index in ``payload.groups``.
    :param cpus: CPUs reserved by the actor (sizes torch's thread pool).
    """

    def __init__(self, payload: Payload, index: int, cpus: float = 1.0) -> None:
        self.processor = _build(payload, index, cpus)
        self.nodes = [self.processor.plan.node(node_id) for node_id in payload.groups[index].nodes]

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Run the group's nodes on every chunk of ``batch``: on a GPU all its items at once (the inference batch),
        on the CPU in groups of at most :data:`~imgx.executors.processor.CPU_GROUP_PIXELS` decoded pixels, as the
        local executor runs them (a network runs one large image per call there anyway, and the stages' working
        copies of a whole batch of 4000 px photos would only hold memory)."""
        chunks = batch.column("chunk").to_pylist()
        per_chunk = [_load_states(blob) for blob in batch.column("states").to_pylist()]
        states = [state for chunk_states in per_chunk for state in chunk_states]
        for group in [states] if self.processor.spec.device != "cpu" else pixel_groups(states):
            self.processor.run_nodes(group, self.nodes)
        return _table(chunks, "states", [_dump(states) for states in per_chunk])


def _unit_key(unit: WorkUnit) -> tuple[str, bool]:
    return unit.ref.sku, unit.ref.error is not None


class _ChunkWriter:
    """The last group's side effects, made idempotent per chunk (see the module docstring)."""

    def __init__(self, processor: BatchProcessor, payload: Payload) -> None:
        self.processor = processor
        self.markers = chunk_markers(payload.out_dir, payload.run_id)
        self.run_id = payload.run_id
        self._recorded: dict[tuple[str, bool], dict[str, LedgerRow]] | None = None

    def _claim(self, chunk: int) -> bool:
        """True the first time chunk ``chunk`` is started in this run; False on a retry."""
        return fs.create_exclusive(f"{self.markers}/{chunk}")

    def _recorded_rows(self) -> dict[tuple[str, bool], dict[str, LedgerRow]]:
        """Rows this run has journaled (read once per call, and only when a chunk is retried)."""
        if self._recorded is None:
            table = read_ledger(self.processor.spec.out_dir)
            self._recorded = {}
            fields = [f.name for f in dataclasses.fields(LedgerRow)]
            for record in table.filter(pc.equal(table["run_id"], self.run_id)).to_pylist():
                row = LedgerRow(**{name: record[name] for name in fields})
                key = (row.sku, row.stage == "catalog")
                self._recorded.setdefault(key, {})[row.output] = row
        return self._recorded

    def _remaining(self, chunk: int, units: Sequence[WorkUnit]) -> tuple[list[WorkUnit], list[LedgerRow]]:
        """``(units with the outputs still to do, rows already recorded)`` for a chunk."""
        if self._claim(chunk):
            return list(units), []
        recorded = self._recorded_rows()
        remaining, rows = [], []
        for unit in units:
            done = recorded.get(_unit_key(unit), {})
            rows += [done[out] for out in unit.outputs if out in done]
            outputs = tuple(out for out in unit.outputs if out not in done)
            if outputs:
                remaining.append(WorkUnit(unit.ref, outputs))
        return remaining, rows

    def run_units(self, chunk: int, units: list[WorkUnit]) -> BatchResult:
        """A CPU-only plan: the whole DAG, exactly as the local executor's worker runs it."""
        remaining, recorded = self._remaining(chunk, units)
        result = self.processor(remaining)
        return _merge(
            units,
            recorded,
            result.rows,
            result.stage_seconds,
            result.work,
            (result.read_seconds, result.write_seconds, result.megapixels),
        )

    def run_states(self, chunk: int, states: list[ItemState], nodes: Sequence[Node]) -> BatchResult:
        """The last group of a plan with model stages: its CPU nodes, then encode, write and journal."""
        units = [state.unit for state in states]
        remaining, recorded = self._remaining(chunk, units)
        wanted = {_unit_key(unit): unit for unit in remaining}
        todo = []
        for state in states:
            unit = wanted.get(_unit_key(state.unit))
            if unit is not None:
                state.unit = unit
                todo.append(state)
        self.processor.run_nodes(todo, nodes)
        seconds: dict[str, float] = {}
        for state in states:
            for node_id, elapsed in state.elapsed.items():
                if node_id != "source":
                    seconds[node_id] = seconds.get(node_id, 0.0) + elapsed
        work: dict[str, float] = {}
        add_work(work, states)
        started = time.perf_counter()
        rows, _ = self.processor.finish(todo)
        return _merge(units, recorded, rows, seconds, work, io_measured(states, time.perf_counter() - started))


def _merge(
    units: Sequence[WorkUnit],
    recorded: list[LedgerRow],
    rows: list[LedgerRow],
    seconds: dict[str, float],
    work: dict[str, float],
    io: tuple[float, float, float],
) -> BatchResult:
    """One chunk's result: rows recorded by a dead attempt plus this attempt's rows, items counted once; ``io``:
    :func:`~imgx.executors.processor.io_measured` of this attempt."""
    failed: dict[tuple[str, bool], bool] = {_unit_key(unit): False for unit in units}
    for row in (*recorded, *rows):
        key = (row.sku, row.stage == "catalog")
        failed[key] = failed.get(key, False) or row.status == "failed"
    read_seconds, write_seconds, megapixels = io
    return BatchResult(
        [*recorded, *rows],
        seconds,
        len(units),
        sum(failed.values()),
        work,
        read_seconds=read_seconds,
        write_seconds=write_seconds,
        megapixels=megapixels,
    )
