"""Process one batch of items in a worker: read, decode, run the DAG, encode, write atomically, record.

This is the engine's inner loop, shared by every executor. One bad item never stops a batch: read and decode errors,
a stage raising on one item (the batch is retried item by item to find it), unsafe output names and encoder errors
each become a failed ledger row naming the stage and the reason, while the item's other outputs still go through when
they do not depend on the failed node.

Sources and outputs in an object store or behind HTTP wait on the network, not on a core: a batch's remote sources
are fetched :data:`IO_THREADS` at a time before it is decoded, and its outputs to an object store are written that
many at a time while the worker encodes the next, each item journaled once all its outputs are written (at the latest
when the batch ends). Local files are read and written in turn, as before: there the core does the work.

With ``RunSpec.overlap`` (a worker with a core to spare, or a GPU), decoding and encoding move off the stages' thread:
a helper thread reads and decodes the next group of items while the stages run on this one, another encodes and writes
the items already done (at most :data:`ENCODE_BEHIND` waiting), so the decoder, the network and the encoder each keep
a core busy; OpenCV, Pillow, ONNX Runtime and torch release the GIL in their heavy calls.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Collection, Generator, Iterable, Iterator, Sequence
from typing import TypeVar

from ..color import parse_color
from ..errors import ImgxError
from ..heap import return_large_frees
from ..io import fs
from ..io.decode import decode_image
from ..io.encode import FORMATS, encode_image
from ..io.naming import output_path, split_output
from ..io.source import read_source
from ..item import Item, ItemRef
from ..ledger import LedgerRow, LedgerWriter, Location, StatePaths
from ..plan import Node, Plan
from ..registry import Registry
from ..stage import Stage, StageContext

__all__ = [
    "BatchProcessor",
    "BatchResult",
    "ItemState",
    "RunSpec",
    "WorkUnit",
    "add_work",
    "describe_error",
    "io_measured",
]

T = TypeVar("T")

#: on the CPU, the decoded pixels a group of items holds while a batched plan's model nodes run on it together
#: (16 photos of 512 px, 4 of 1024 px, one 4000 px photo)
CPU_GROUP_PIXELS = 1 << 22
#: requests a worker keeps in flight to remote sources and outputs (object stores, HTTP): enough to hide a request's
#: latency (tens of milliseconds to a cloud store) behind the others, few enough for one worker's connections
IO_THREADS = 8
#: with overlap, items whose stages are done waiting for the encoder thread besides the one it encodes: enough to
#: ride out an item that encodes slowly, few enough that a worker holds at most that many more items' images
ENCODE_BEHIND = 1
#: with overlap, a group of items (or an item) of at least this many decoded pixels is neither decoded ahead of the one
#: before it nor encoded behind the one after it: a 4000 px photo's images are never held twice, so the peak memory
#: per worker stays that of a run without overlap (where the time goes to the stages anyway)
OVERLAP_MAX_PIXELS = CPU_GROUP_PIXELS


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to process batches of a run; picklable. The plan's settings say how (batch size,
    backend, precision, encodings); this says where and as which run.

    :param plan: the validated DAG with its resolved settings.
    :param out_dir: the resolved output folder: a local ``Path`` or an object-store URI (see
        :class:`imgx.ledger.StatePaths`).
    :param run_id: this run's id (names ledger parts).
    :param device: the device stages run on, resolved from the plan's ``auto`` (``cpu`` / ``cuda``).
    :param compact_rows: ledger rows per Parquet part.
    :param threads: CPU threads per worker for model inference (the cores divided among the workers); ``None``: all.
    :param overlap: decode the next items and encode the finished ones on helper threads while the stages run
        (resolved from ``execution.overlap``: :func:`imgx.runner.resolve_overlap`).
    """

    plan: Plan
    out_dir: Location
    run_id: str
    device: str = "cpu"
    compact_rows: int = 5000
    threads: int | None = None
    overlap: bool = False

    @property
    def batch_size(self) -> int:
        return self.plan.settings.batch_size


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    """An item and the outputs still to produce for it (all of them unless ``--resume`` found some done)."""

    ref: ItemRef
    outputs: tuple[str, ...]


@dataclasses.dataclass
class BatchResult:
    """What a batch produced: its ledger rows (already durable), the seconds each node took and the work each node
    did (:meth:`imgx.Stage.work` of the items it ran on, from their decoded sizes: what the ETA weighs items by)."""

    rows: list[LedgerRow]
    stage_seconds: dict[str, float]
    items: int
    failed_items: int
    work: dict[str, float] = dataclasses.field(default_factory=dict)
    #: seconds outside the stages: reading and decoding the sources (``megapixels``: what they decoded to), and
    #: encoding and writing the items' outputs (whose size the recipe mostly sets, whatever the source's); by keyword
    #: only, so that a caller written for the one ``io_seconds`` these replaced fails loudly instead of misfiling
    read_seconds: float = dataclasses.field(default=0.0, kw_only=True)
    write_seconds: float = dataclasses.field(default=0.0, kw_only=True)
    megapixels: float = dataclasses.field(default=0.0, kw_only=True)


def add_work(total: dict[str, float], states: Iterable[ItemState]) -> None:
    """Add the work each node did on ``states`` to ``total`` (node id -> :meth:`imgx.Stage.work` units)."""
    for state in states:
        for node_id, units in state.work.items():
            total[node_id] = total.get(node_id, 0.0) + units


def _pixels(states: Iterable[ItemState]) -> int:
    """The decoded pixels of ``states``' sources."""
    return sum(state.size[0] * state.size[1] for state in states)


def pixel_groups(states: Iterable[ItemState]) -> Iterator[list[ItemState]]:
    """``states`` in runs of consecutive items holding at most :data:`CPU_GROUP_PIXELS` decoded pixels (at least
    one item each), taken from ``states`` lazily: the item that would overflow a group is held while that group runs."""
    group: list[ItemState] = []
    pixels = 0
    for state in states:
        size = _pixels([state])
        if group and pixels + size > CPU_GROUP_PIXELS:
            yield group
            group, pixels = [], 0
        group.append(state)
        pixels += size
    if group:
        yield group


def io_measured(states: Iterable[ItemState], finish_seconds: float) -> tuple[float, float, float]:
    """``(read seconds, write seconds, megapixels)`` of ``states``' items: their read and decode time,
    ``finish_seconds`` of encoding and writing them, and their decoded megapixels (for the ETA)."""
    seconds = megapixels = 0.0
    for state in states:
        seconds += state.elapsed.get("source", 0.0)
        megapixels += state.size[0] * state.size[1] / 1e6
    return seconds, finish_seconds, megapixels


def describe_error(exc: BaseException) -> str:
    """A one-line reason for the ledger: imgx errors as they read, others with their type."""
    text = str(exc).strip().replace("\n", " ") or repr(exc)
    return text if isinstance(exc, ImgxError) else f"{type(exc).__name__}: {text}"


class ItemState:
    """One item on its way through the DAG: the images computed so far, failures, timings and output paths.

    Picklable, so an executor can hand it from one stage group to the next (the Ray executor does)."""

    __slots__ = ("elapsed", "failed", "needed", "paths", "size", "unit", "values", "work")

    def __init__(self, unit: WorkUnit) -> None:
        self.unit = unit
        self.values: dict[str, Item] = {}
        self.failed: dict[str, tuple[str, str]] = {}  # node id or "source" -> (stage, reason)
        self.elapsed: dict[str, float] = {}  # "source" / node id -> seconds for this item
        self.size: tuple[int, int] = (0, 0)  # (h, w) of the decoded source image
        self.work: dict[str, float] = {}  # node id -> Stage.work for this item (run or tried)
        self.paths: dict[str, Location] = {}  # output id -> where it will be written (names already checked)
        self.needed: set[str] = set()  # node ids to compute for the outputs still wanted


class BatchProcessor:
    """Holds one worker's stages (built once) and ledger writer; call it with batches of :class:`WorkUnit`."""

    def __init__(self, spec: RunSpec, worker: str, registry: Registry, nodes: Collection[str] | None = None) -> None:
        """Build the stages of ``nodes`` (node ids; ``None``: every node of the plan) and this worker's ledger.

        :param registry: the plugins loaded in this worker; stages find models and backends through it.
        """
        self.spec = spec
        self.plan = spec.plan
        _announce_model_downloads()
        return_large_frees()
        settings = self.plan.settings
        self.max_pixels = settings.max_pixels
        self.encoding = dict(settings.encodings)
        self.template = settings.naming
        self.paths = StatePaths(spec.out_dir)
        context = StageContext(
            device=spec.device,
            batch_size=settings.batch_size,
            worker_id=worker,
            backend=settings.backend,
            precision=settings.precision,
            threads=spec.threads,
            registry=registry,
        )
        self.stages: dict[str, Stage] = {}
        for node in self.plan.nodes:
            if nodes is not None and node.id not in nodes:
                continue
            try:
                self.stages[node.id] = node.stage(node.params, context)
            except Exception as exc:
                self.close()
                raise ImgxError(f"stage {node.uses} (node {node.id!r}) failed to start: {describe_error(exc)}") from exc
        self.ledger = LedgerWriter(self.paths, spec.run_id, worker, compact_rows=spec.compact_rows)
        self.remote_outputs = not fs.is_local(spec.out_dir)
        self._io: concurrent.futures.ThreadPoolExecutor | None = None  # started at the first remote read or write
        # with overlap: one thread decoding ahead, one encoding behind (started at the first batch)
        self._helpers: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        batchable = [i for i, node in enumerate(self.plan.nodes) if node.stage.batchable]
        self.batched = bool(batchable)
        # a batched plan runs its nodes up to the last batchable one on the whole batch, the rest item by item
        split = batchable[-1] + 1 if batchable else 0
        self.batch_nodes, self.item_nodes = self.plan.nodes[:split], self.plan.nodes[split:]
        self.released_after = self.plan.released_after()

    def close(self) -> None:
        for stage in self.stages.values():
            stage.close()
        if getattr(self, "_io", None) is not None:
            self._io.shutdown(wait=True)
            self._io = None
        helpers = getattr(self, "_helpers", {})  # absent when a stage failed to start
        while helpers:
            helpers.popitem()[1].shutdown(wait=True)
        if hasattr(self, "ledger"):
            self.ledger.close()

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._io is None:
            self._io = concurrent.futures.ThreadPoolExecutor(IO_THREADS, thread_name_prefix="imgx-io")
        return self._io

    def _helper(self, name: str) -> concurrent.futures.ThreadPoolExecutor:
        """The overlap's one-thread pool ``name`` (``decode`` or ``encode``)."""
        if name not in self._helpers:
            self._helpers[name] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"imgx-{name}")
        return self._helpers[name]

    def __call__(self, units: Sequence[WorkUnit]) -> BatchResult:
        """Process a batch. With a batchable stage in the plan (a model), the nodes up to the last batchable one run
        on a group of items at once: the whole batch on a GPU, where the batch is the inference batch; on the CPU as
        many items as hold :data:`CPU_GROUP_PIXELS` decoded pixels (at least one), since there a network runs one
        large image per call anyway and a batch of 4000 px photos would only hold their memory. Every other node
        runs item by item, each item written and released before the next, so only one item's later images are
        alive at a time (a batch of full-size images costs memory, page faults and cache misses, and nothing is
        gained from batching per-item stages).

        With ``RunSpec.overlap`` the next group is read and decoded, and the finished items encoded and written, on
        helper threads while the stages run; the ledger still journals items in order, each once it is written."""
        stage_seconds: dict[str, float] = {}
        work: dict[str, float] = {}
        rows: list[LedgerRow] = []
        failed_items = 0
        read_seconds = write_seconds = megapixels = 0.0
        pending: list[concurrent.futures.Future[_Pending]] = []
        fetched = self.fetch(units)
        groups = self._groups(units, fetched)
        if self.spec.overlap:
            groups = self._ahead(groups)
        try:
            for group in groups:
                if self.batched:
                    self._add_seconds(stage_seconds, self.run_nodes(group, self.batch_nodes))
                while group:
                    states = [group.pop(0)]  # released once written
                    self._add_seconds(stage_seconds, self.run_nodes(states, self.item_nodes))
                    add_work(work, states)
                    started = time.perf_counter()
                    pending.append(self._submit(states[0], pending))
                    group_rows, group_failed, encoded = self._journal(pending, wait=False)  # the items written
                    read, write, pixels = io_measured(states, time.perf_counter() - started + encoded)
                    read_seconds += read
                    write_seconds += write
                    megapixels += pixels
                    rows.extend(group_rows)
                    failed_items += group_failed
        except BaseException:  # Ctrl-C or an error: the items already encoded and written are journaled first
            with contextlib.suppress(Exception):
                self._journal(pending, wait=True)
            raise
        finally:
            groups.close()  # the decode-ahead thread stops
        started = time.perf_counter()
        group_rows, group_failed, encoded = self._journal(pending, wait=True)
        write_seconds += time.perf_counter() - started + encoded
        rows.extend(group_rows)
        failed_items += group_failed
        return BatchResult(
            rows,
            stage_seconds,
            len(units),
            failed_items,
            work,
            read_seconds=read_seconds,
            write_seconds=write_seconds,
            megapixels=megapixels,
        )

    def _ahead(self, groups: Iterator[list[ItemState]]) -> Generator[list[ItemState], None, None]:
        """``groups``, each read and decoded on the decode thread while the one before it is in the stages, unless
        that one holds :data:`OVERLAP_MAX_PIXELS` or more (then the next is decoded once it is done)."""
        helper = self._helper("decode")
        future = helper.submit(next, groups, None)
        try:
            while (group := future.result()) is not None:
                small = _pixels(group) < OVERLAP_MAX_PIXELS
                if small:
                    future = helper.submit(next, groups, None)
                yield group
                if not small:
                    future = helper.submit(next, groups, None)
        finally:
            concurrent.futures.wait([future])  # the generator is left alone before it is closed

    def _groups(self, units: Sequence[WorkUnit], fetched: Fetched) -> Generator[list[ItemState], None, None]:
        """``units`` prepared (read and decoded) in the groups :meth:`__call__` runs: one item at a time for a plan
        without a batchable stage; else the whole batch on a GPU, on the CPU up to :data:`CPU_GROUP_PIXELS` decoded
        pixels (the item that would overflow a group is held, decoded, while that group runs)."""
        if not self.batched:
            for unit in units:
                yield self.prepare([unit], fetched)
            return
        if self.spec.device != "cpu":
            yield self.prepare(units, fetched)
            return
        yield from pixel_groups(self.prepare([unit], fetched)[0] for unit in units)

    @staticmethod
    def _add_seconds(total: dict[str, float], seconds: dict[str, float]) -> None:
        for node_id, value in seconds.items():
            total[node_id] = total.get(node_id, 0.0) + value

    def prepare(self, units: Sequence[WorkUnit], fetched: Fetched | None = None) -> list[ItemState]:
        """Check output names, read and decode each unit (failures are recorded in its state, never raised).

        :param fetched: ``units``' remote sources, already fetched (:meth:`fetch`); ``None``: fetched here."""
        if fetched is None:
            fetched = self.fetch(units)
        states = [ItemState(unit) for unit in units]
        for state in states:
            self._prepare(state, fetched.get(state.unit.ref.source))
        return states

    def fetch(self, units: Sequence[WorkUnit]) -> Fetched:
        """The bytes (or the read's error) of ``units``' remote sources (object stores, HTTP), fetched
        :data:`IO_THREADS` at a time, each with its share of the wall time they took together; local files are left
        to :meth:`prepare`, which reads them as it decodes them."""
        sources = list(dict.fromkeys(u.ref.source for u in units if not u.ref.error and not fs.is_local(u.ref.source)))
        if not sources:
            return {}
        started = time.perf_counter()
        futures = [self._pool().submit(self._read, source) for source in sources]
        results: list[bytes | BaseException] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                results.append(exc)
        share = (time.perf_counter() - started) / len(sources)
        return {source: (result, share) for source, result in zip(sources, results, strict=True)}

    def _read(self, source: str) -> bytes:
        return read_source(
            source, allowed_hosts=self.plan.settings.allowed_hosts, max_bytes=self.plan.settings.max_download_bytes
        )

    def run_nodes(self, states: Sequence[ItemState], nodes: Sequence[Node]) -> dict[str, float]:
        """Run ``nodes`` (in plan order; their stages must be built here) on the states whose inputs are ready;
        returns the seconds each node took."""
        seconds: dict[str, float] = {}
        for node in nodes:
            ready = [s for s in states if node.id in s.needed and self._inputs_ready(s, node)]
            if ready:
                seconds[node.id] = seconds.get(node.id, 0.0) + self._run_node(node, ready)
            for value in self.released_after.get(node.id, ()):
                for state in states:  # no later node reads it: a batch of 4000 px photos holds one copy per step
                    state.values.pop(value, None)
        return seconds

    def finish(self, states: Sequence[ItemState]) -> tuple[list[LedgerRow], int]:
        """Encode and write each state's outputs (to an object store, :data:`IO_THREADS` at a time) and journal each
        item's rows once its outputs are written: ``(rows, failed items)``."""
        pending: list[concurrent.futures.Future[_Pending]] = []
        for state in states:
            pending.append(self._submit(state, pending))
        rows, failed_items, _ = self._journal(pending, wait=True)
        return rows, failed_items

    def _submit(
        self, state: ItemState, pending: Sequence[concurrent.futures.Future[_Pending]]
    ) -> concurrent.futures.Future[_Pending]:
        """Encode ``state``'s outputs and start writing them; its images are released once encoded. With overlap on
        the encode thread, after waiting while more than :data:`ENCODE_BEHIND` items of ``pending`` (the items
        submitted before it) wait for it; an item of :data:`OVERLAP_MAX_PIXELS` or more waits for every earlier one
        and is encoded before this returns. Without overlap here and now."""
        if not self.spec.overlap:
            return _done(self._encode(state))
        queued = [future for future in pending if not future.done()]
        large = _pixels([state]) >= OVERLAP_MAX_PIXELS
        if len(queued) > (0 if large else ENCODE_BEHIND):
            concurrent.futures.wait(queued[: len(queued) - (0 if large else ENCODE_BEHIND)])
        future = self._helper("encode").submit(self._encode, state)
        if large:  # encoded before the next item is decoded: one large item's images at a time
            concurrent.futures.wait([future])
        return future

    def _encode(self, state: ItemState) -> _Pending:
        started = time.perf_counter()
        pending = self._finish(state)
        state.values.clear()
        pending.seconds = time.perf_counter() - started
        return pending

    def _journal(
        self, pending: list[concurrent.futures.Future[_Pending]], *, wait: bool
    ) -> tuple[list[LedgerRow], int, float]:
        """Journal the items of ``pending`` whose outputs are encoded and written (``wait``: all of them, waiting for
        them), in order, removing them from ``pending``: ``(their rows, how many of them failed, the seconds they were
        encoded for on the encode thread)`` (without overlap that time is the caller's own, and 0 here)."""
        rows: list[LedgerRow] = []
        failed_items = 0
        encoded = 0.0
        while pending and (wait or (pending[0].done() and pending[0].result().written())):
            item = pending.pop(0).result()
            item_rows = item.rows_when_written()
            self.ledger.write(item_rows)
            rows.extend(item_rows)
            failed_items += any(row.status == "failed" for row in item_rows)
            encoded += item.seconds if self.spec.overlap else 0.0
        return rows, failed_items, encoded

    # -- steps ---------------------------------------------------------------------------------------------------

    def _prepare(self, state: ItemState, fetched: tuple[bytes | BaseException, float] | None = None) -> bool:
        """Check output names, then read (or take ``fetched``: the bytes or the read's error, and the seconds the
        read is charged) and decode. False if nothing is left to do for this item."""
        ref = state.unit.ref
        if ref.error:
            state.failed["source"] = ("catalog", ref.error)
            return False
        for out in state.unit.outputs:
            try:
                ext = FORMATS[self.encoding[out].format]
                state.paths[out] = output_path(self.spec.out_dir, self.template, sku=ref.sku, output=out, ext=ext)
            except ImgxError as exc:
                state.failed[f"name:{out}"] = ("naming", describe_error(exc))
        wanted = [out for out in state.unit.outputs if out in state.paths]
        state.needed = set(self.plan.needed_nodes(set(wanted)))
        if not wanted:
            return False
        start = time.perf_counter()
        if fetched is not None:
            start -= fetched[1]
        try:
            if fetched is None:
                data = self._read(ref.source)
            elif isinstance(fetched[0], BaseException):
                raise fetched[0]
            else:
                data = fetched[0]
        except Exception as exc:
            state.failed["source"] = ("read", describe_error(exc))
            state.elapsed["source"] = time.perf_counter() - start
            return False
        try:
            state.values["source"] = decode_image(data, sku=ref.sku, source=ref.source, max_pixels=self.max_pixels)
            state.size = state.values["source"].image.shape[:2]
        except Exception as exc:
            state.failed["source"] = ("decode", describe_error(exc))
            return False
        finally:
            state.elapsed["source"] = time.perf_counter() - start
        return True

    @staticmethod
    def _upstream(node: Node) -> tuple[str, ...]:
        return node.needs or ("source",)

    def _inputs_ready(self, state: ItemState, node: Node) -> bool:
        return all(up in state.values for up in self._upstream(node))

    def _run_node(self, node: Node, ready: list[ItemState]) -> float:
        stage = self.stages[node.id]
        inputs = [[s.values[up] for s in ready] for up in self._upstream(node)]
        start = time.perf_counter()
        try:
            outputs = self._call(stage, inputs, len(ready))
            errors: list[str | None] = [None] * len(ready)
        except Exception:
            outputs, errors = self._isolate(stage, inputs)
        elapsed = time.perf_counter() - start
        share = elapsed / len(ready)
        for state, before, item, error in zip(ready, inputs[0], outputs, errors, strict=True):
            state.elapsed[node.id] = share
            state.work[node.id] = node.work(*state.size)
            if error is None:
                state.values[node.id] = _attribute(node.id, before, item)
            else:
                named = error.startswith(f"{node.uses}: ")  # StageError's messages name their stage already
                state.failed[node.id] = (node.id, error if named else f"{node.uses}: {error}")
        return elapsed

    @staticmethod
    def _call(stage: Stage, inputs: list[list[Item]], expected: int) -> list[Item]:
        result = stage(*inputs)
        if not isinstance(result, (list, tuple)) or len(result) != expected:
            got = f"{len(result)} items" if isinstance(result, (list, tuple)) else type(result).__name__
            raise ImgxError(f"stage {stage.name} returned {got} for a batch of {expected}; expected {expected} items")
        for item in result:
            if not isinstance(item, Item):
                raise ImgxError(f"stage {stage.name} returned a {type(item).__name__}; expected imgx.Item")
        return list(result)

    def _isolate(self, stage: Stage, inputs: list[list[Item]]) -> tuple[list[Item | None], list[str | None]]:
        """The batch raised: run item by item so only the items that fail, fail."""
        outputs: list[Item | None] = []
        errors: list[str | None] = []
        for position in range(len(inputs[0])):
            try:
                outputs.append(self._call(stage, [[column[position]] for column in inputs], 1)[0])
                errors.append(None)
            except Exception as exc:
                outputs.append(None)
                errors.append(describe_error(exc))
        return outputs, errors

    def _finish(self, state: ItemState) -> _Pending:
        """Encode each wanted output and start its write (done at once for a local file); one ledger row per output,
        made when its write is done."""
        ref = state.unit.ref
        pending = _Pending()
        base_ms = state.elapsed.get("source", 0.0) * 1000.0
        for out in state.unit.outputs:
            digest = self.plan.output_hashes[out]
            lineage = self.plan.lineage[out]
            duration = base_ms + sum(state.elapsed.get(n, 0.0) for n in lineage) * 1000.0
            failure = state.failed.get(f"name:{out}") or state.failed.get("source")
            if failure is None:
                failure = next((state.failed[n] for n in lineage if n in state.failed), None)
            if failure is not None:
                pending.rows.append(
                    LedgerRow(ref.sku, ref.source, out, "", "failed", failure[0], failure[1], duration, digest)
                )
                continue
            if not self.plan.settings.write:  # an audit: the row, its flags and metrics, and no file
                pending.rows.append(_ok_row(ref, out, "", duration, digest, state.values[out]))
                continue
            path = state.paths[out]
            start = time.perf_counter()
            try:
                settings = self.encoding[out]
                item = state.values[out]
                data = encode_image(
                    item if settings.alpha == "keep" or item.alpha is None else item.replace(alpha=None),
                    format=settings.format,
                    quality=settings.quality,
                    background=parse_color(settings.background),
                    png_compress_level=settings.png_compression,
                )
            except Exception as exc:
                duration += (time.perf_counter() - start) * 1000.0
                pending.rows.append(
                    LedgerRow(ref.sku, ref.source, out, "", "failed", "encode", describe_error(exc), duration, digest)
                )
                continue
            duration += (time.perf_counter() - start) * 1000.0
            row = _ok_row(ref, out, _relative(path, self.spec.out_dir), duration, digest, item)
            if self.remote_outputs:
                pending.writes[len(pending.rows)] = self._pool().submit(self._write, str(path), data)
            else:
                pending.writes[len(pending.rows)] = _done(self._write(str(path), data))
            pending.rows.append(row)
        return pending

    def _write(self, path: str, data: bytes) -> tuple[str, float]:
        """Write ``data`` to ``path`` atomically: ``("" or the error line, seconds)``."""
        start = time.perf_counter()
        try:
            fs.write_bytes_atomic(path, data, tmp_dir=self.paths.tmp)
            error = ""
        except Exception as exc:
            error = describe_error(exc)
        return error, time.perf_counter() - start


class _Pending:
    """One item's ledger rows, some of them waiting for their output's write: ``writes`` maps a row's index to the
    write's future (``("" or the error, seconds)``); :meth:`rows_when_written` makes the final rows once all are
    done."""

    __slots__ = ("rows", "seconds", "writes")

    def __init__(self) -> None:
        self.rows: list[LedgerRow] = []
        self.writes: dict[int, concurrent.futures.Future[tuple[str, float]]] = {}
        self.seconds = 0.0  # encoding and starting the writes

    def written(self) -> bool:
        return all(future.done() for future in self.writes.values())

    def rows_when_written(self) -> list[LedgerRow]:
        """The rows, each written output's with its write's time added, or failed at ``write`` with the reason."""
        rows = list(self.rows)
        for index, future in self.writes.items():
            error, seconds = future.result()
            row = rows[index]
            duration = row.duration_ms + seconds * 1000.0
            if error:
                rows[index] = LedgerRow(
                    row.sku, row.source, row.output, "", "failed", "write", error, duration, row.recipe_hash
                )
            else:
                rows[index] = dataclasses.replace(row, duration_ms=duration)
        return rows


def _done(result: T) -> concurrent.futures.Future[T]:
    """A future already holding ``result`` (a local write, done in turn; an item encoded without overlap)."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_result(result)
    return future


#: a batch's remote sources fetched ahead (:meth:`BatchProcessor.fetch`): source -> (bytes or the read's error,
#: seconds charged to it)
Fetched = dict[str, tuple[bytes | BaseException, float]]


def _ok_row(ref: ItemRef, out: str, relative: str, duration: float, digest: str, item: Item) -> LedgerRow:
    """The ledger row of an output made: its path (empty when nothing was written), the item's flags and metrics."""
    metrics = json.dumps(item.metrics, sort_keys=True, default=str) if item.metrics else ""
    return LedgerRow(ref.sku, ref.source, out, relative, "ok", "", "", duration, digest, item.flags, metrics)


def _relative(path: Location, out_dir: Location) -> str:
    """``path`` relative to the output folder, with ``/`` (the ledger's ``path`` column)."""
    if isinstance(path, str):
        return path[len(str(out_dir).rstrip("/")) + 1 :]
    return os.path.relpath(path, out_dir).replace(os.sep, "/")


def _announce_model_downloads() -> None:
    """Model weights fetched on first use are announced on ``imgx.models`` (see :mod:`imgx.models`): where nothing
    shows that logger yet (a worker process started fresh, a program without logging set up), show it on stderr, so a
    long first download never looks like a hang."""
    log = logging.getLogger("imgx.models")
    if log.handlers or log.level != logging.NOTSET or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _attribute(node_id: str, before: Item, after: Item | None) -> Item | None:
    """``after`` with the flags and metrics its stage added named after the node (``centred:fill_below_min``,
    ``centred.fill``), so two nodes of one stage never overwrite each other's notes in the ledger. A variant's copy
    of a node notes under the node's own id (``q.ssim`` for ``q@teens``: the ledger's variant column tells them
    apart), so one query reads a metric across every variant."""
    if after is None or (after.flags == before.flags and after.metrics == before.metrics):
        return after
    node_id = split_output(node_id)[0]
    flags = tuple(f if f in before.flags else f"{node_id}:{f}" for f in after.flags)
    metrics = {
        (k if k in before.metrics and before.metrics[k] == v else f"{node_id}.{k}"): v for k, v in after.metrics.items()
    }
    return after.replace(flags=flags, metrics=metrics)
