"""What a catalog team reads after a run: the current state of every (sku, output), failures grouped by cause, and a
before/after contact sheet.

The ledger keeps every row of every run; the *current* state of a (sku, output) is its latest row that is not
``skipped`` (a skipped row, written by older versions, means the earlier ``ok`` row still stands).

A later row that repeats a SKU (a duplicate in the catalog) is an item of its own, as in the run's summary: its
``catalog`` failure ("duplicate sku: ...") is keyed by the SKU *and* that error, so it never overrides the first
row's result, and ``imgx report`` counts the items and outputs the run summary counted.

Everything is computed from the Parquet parts with column projection, streamed batch by batch
(:func:`imgx.ledger.scan_ledger`) into Arrow tables reduced as they grow; no Python object per row.

Metrics (the ledger's ``metrics`` column, ``<node>.<name>`` keys: :class:`imgx.Item`'s ``metrics``) are summarised
per output (:func:`metric_report`): the distribution of every numeric one, and the lowest items of some. A metric
named ``confidence`` (key ``<node>.confidence``, e.g. ``masked.confidence`` from ``segment.product``) is by
convention a 0..1 score of how sure a stage is of its result, higher is surer: ``imgx report`` lists its least
confident items without being asked (:data:`CONFIDENCE`); ``--lowest NAME`` does it for any metric.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageDraw

from .errors import ImgxError, InputError
from .io import fs
from .io.catalog import sku_hashes
from .io.decode import decode_image
from .io.source import read_source
from .ledger import LEDGER_SCHEMA, LedgerSnapshot, Location, StatePaths, scan_ledger

__all__ = [
    "CONFIDENCE",
    "LOWEST",
    "VARIANTS_COLUMNS",
    "LedgerReport",
    "LowestItems",
    "MetricReport",
    "MetricStats",
    "contact_sheet",
    "current_rows",
    "current_state",
    "metric_distributions",
    "metric_matches",
    "metric_report",
    "summarize",
    "write_variants_manifest",
]


_REDUCE_ROWS = 1_000_000
_DUPLICATE = "duplicate sku"
_SEPARATOR = "\x00"


def _item_key(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """The catalog item a row belongs to: its SKU, or for a later duplicate row the SKU and its error."""
    sku, error = batch.column("sku"), pc.fill_null(batch.column("error"), "")
    duplicate = pc.and_(pc.equal(batch.column("stage"), "catalog"), pc.starts_with(error, _DUPLICATE))
    duplicate = pc.fill_null(duplicate, False)
    return pc.if_else(duplicate, pc.binary_join_element_wise(sku, error, _SEPARATOR), sku)


def _latest(table: pa.Table) -> pa.Table:
    """One row per (item, output): its latest row."""
    table = table.sort_by([("finished_at", "descending")])
    columns = [c for c in table.column_names if c not in ("item", "output")]
    latest = table.group_by(["item", "output"], use_threads=False).aggregate([(c, "first") for c in columns])
    latest = latest.rename_columns([n.removesuffix("_first") for n in latest.column_names])
    return latest.select(table.column_names)  # the input's column order, so reduced and pending tables concatenate


def _state_rows(batches: Iterator[pa.RecordBatch], columns: list[str]) -> pa.Table:
    """Reduce streamed ledger batches to the latest non-skipped row per (item, output), keeping memory near the size
    of the state: batches are merged into the state whenever twice its size (or 10^6 rows) have accumulated."""
    state: pa.Table | None = None
    pending: list[pa.Table] = []
    pending_rows, threshold = 0, _REDUCE_ROWS
    for batch in batches:
        table = pa.Table.from_batches([batch])
        table = table.filter(pc.not_equal(table["status"], "skipped"))
        if not table.num_rows:
            continue
        table = table.append_column("item", _item_key(table)).select(["item", *columns])
        pending.append(table)
        pending_rows += table.num_rows
        if pending_rows >= threshold:
            state = _latest(pa.concat_tables([t for t in (state, *pending) if t is not None]))
            pending, pending_rows = [], 0
            threshold = max(_REDUCE_ROWS, 2 * state.num_rows)
    tables = [t for t in (state, *pending) if t is not None]
    if not tables:
        return pa.schema([("item", pa.string())] + [LEDGER_SCHEMA.field(c) for c in columns]).empty_table()
    return _latest(pa.concat_tables(tables))


def _no_ledger(out_dir: Location) -> ImgxError:
    return ImgxError(f"no ledger in {out_dir}; expected the output.dir of a run (it holds _imgx/ledger/)")


def current_state(out_dir: Location, ledger: pa.Table | None = None, *, columns: list[str] | None = None) -> pa.Table:
    """One row per (sku, output) -- a later duplicate row of a SKU counts as its own item -- : the latest non-skipped
    ledger row, sorted by sku and output. Streams ``out_dir``'s ledger (or reads ``ledger``, a table already read).

    :param columns: the ledger columns to keep (all by default); ``sku``, ``output``, ``status``, ``stage``, ``error``
        and ``finished_at`` are always read.
    """
    wanted = list(LEDGER_SCHEMA.names) if columns is None else list(columns)
    read = list(dict.fromkeys([*wanted, "sku", "output", "status", "stage", "error", "finished_at"]))
    batches = iter(ledger.select(read).to_batches()) if ledger is not None else scan_ledger(out_dir, columns=read)
    seen = False

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal seen
        for batch in batches:
            seen = seen or batch.num_rows > 0
            yield batch

    state = _state_rows(counted(), read)
    if not seen:
        raise _no_ledger(out_dir)
    state = state.sort_by([("sku", "ascending"), ("output", "ascending"), ("item", "ascending")])
    return state.select([c for c in LEDGER_SCHEMA.names if c in wanted])


@dataclasses.dataclass
class LedgerReport:
    """Counts and the commonest failure causes of an output folder's current state."""

    out_dir: Location
    items: int
    outputs: int
    ok: int
    failed: int
    runs: int
    by_cause: list[tuple[str, str, int]]  # (stage, reason, count), commonest first
    slowest: list[tuple[str, str, float]]  # (sku, output, duration_ms)
    state: pa.Table  # the current state itself, one row per (sku, output)
    flagged: int = 0  # outputs written but flagged by a stage (the ledger's ``flags``, e.g. centred:fill_below_min)


def _flagged(rows: pa.Table | pa.RecordBatch) -> int:
    """How many of ``rows`` carry a stage's flag (older ledgers have no ``flags``: null, never flagged)."""
    if "flags" not in rows.schema.names:
        return 0
    return int(pc.sum(pc.greater(pc.utf8_length(pc.fill_null(rows.column("flags"), "")), 0)).as_py() or 0)


_ITEM_PARTS = (
    (re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+?(?=:?\s|[;,]\s|$)"), "<uri>"),  # a URL or object-store URI
    (re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\].+?(?=: |; |, |$)"), "<path>"),  # an absolute path, spaces and all
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),  # a quoted name (a sku, a file)
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "N"),  # sizes, row numbers, pixel counts
)


def _reason(error: str) -> str:
    """An error without its item-specific parts (paths, URIs, quoted names, numbers), so one cause is one row:
    "source not found: /a/b.jpg" and "source not found: /c/d.jpg" both read "source not found: <path>"."""
    head = error.split(": ", 2)
    text = ": ".join(head[:2]) if len(head) > 2 and len(head[0]) < 40 else error
    for pattern, placeholder in _ITEM_PARTS:
        text = pattern.sub(placeholder, text)
    return text[:160]


def summarize(out_dir: Location, *, top: int = 10, keep_state: bool = True) -> LedgerReport:
    """Summarise the current state of ``out_dir``'s ledger, streamed once with the columns it needs.

    Counts are Arrow compute over the state; failure causes are grouped batch by batch (only distinct causes become
    Python objects); the slowest outputs are a top-k. ``keep_state=False`` leaves the state out of the report (its
    ``state`` is then empty) and needs 16 bytes per ledger row (:func:`_lean_summary`): what ``imgx report`` uses
    unless it lists failures or writes a CSV.
    """
    if not keep_state:
        return _lean_summary(out_dir, top)
    runs: set[str] = set()
    seen = False
    columns = ["sku", "output", "status", "stage", "error", "duration_ms", "finished_at", "source", "path", "flags"]

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal seen
        for batch in scan_ledger(out_dir, columns=[*columns, "run_id"]):
            seen = seen or batch.num_rows > 0
            runs.update(v for v in pc.unique(batch.column("run_id")).to_pylist() if v is not None)
            yield batch.select(columns)

    state = _state_rows(batches(), columns)
    if not seen:
        raise _no_ledger(out_dir)
    ok_rows = pc.equal(state["status"], "ok")
    ok = pc.sum(ok_rows).as_py() or 0
    causes: Counter[tuple[str, str]] = Counter()
    failed = state.filter(pc.invert(ok_rows)).select(["stage", "error"])
    for batch in failed.group_by(["stage", "error"], use_threads=False).aggregate([("stage", "count")]).to_batches():
        for stage, error, count in zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True):
            causes[(stage, _reason(error or ""))] += count
    slowest = []
    ok_state = state.filter(ok_rows).select(["sku", "output", "duration_ms"])
    if ok_state.num_rows:
        top_rows = pc.select_k_unstable(
            ok_state, k=min(top, ok_state.num_rows), sort_keys=[("duration_ms", "descending")]
        )
        slowest = [(r["sku"], r["output"], r["duration_ms"]) for r in ok_state.take(top_rows).to_pylist()]
        slowest.sort(key=lambda r: -(r[2] or 0.0))
    kept = state.sort_by([("sku", "ascending"), ("output", "ascending"), ("item", "ascending")]) if keep_state else None
    return LedgerReport(
        out_dir=out_dir,
        items=pc.count_distinct(state["item"]).as_py() if state.num_rows else 0,
        outputs=state.num_rows,
        ok=ok,
        failed=state.num_rows - ok,
        runs=len(runs),
        by_cause=_commonest(causes, top),
        slowest=slowest,
        state=kept.select([c for c in LEDGER_SCHEMA.names if c in columns]) if kept is not None else state.slice(0, 0),
        flagged=_flagged(state),
    )


def _commonest(causes: Counter[tuple[str, str]], top: int) -> list[tuple[str, str, int]]:
    """The ``top`` commonest causes, ties by stage and reason (the same order however the rows were read)."""
    ranked = sorted(causes.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [(stage, reason, count) for (stage, reason), count in ranked]


REPORT_PASS_ROWS = 1 << 20
"""Ledger rows one pass of :func:`_lean_summary` holds (16-24 bytes each); a bigger ledger takes more passes."""


def _lean_summary(out_dir: Location, top: int) -> LedgerReport:
    """:func:`summarize` without the state table, in bounded memory.

    The items are split by a hash of their item key into ``ceil(rows / REPORT_PASS_ROWS)`` parts, so one part holds
    about :data:`REPORT_PASS_ROWS` rows whatever the ledger's size; each part is two passes over one
    :class:`LedgerSnapshot`. Pass 1 keeps, per row of the part, a 64-bit hash of its (item, output), its time and
    its row number (numpy arrays) and picks each key's latest non-skipped row by a stable sort. Pass 2 reads the rows
    again and aggregates only the picked ones: counts, distinct items (their hashes), failures by cause (Arrow
    ``group_by``) and a running top-k of durations. An item's rows all fall in one part, so the parts' counts add
    up. A ledger of up to :data:`REPORT_PASS_ROWS` rows is one part (two passes, as before); 10^7 rows take ten.
    """
    with LedgerSnapshot(out_dir) as snapshot:
        total = snapshot.num_rows
        if not total:
            raise _no_ledger(out_dir)
        parts = max(1, -(-total // REPORT_PASS_ROWS))
        runs: set[str] = set()
        ok = outputs = flagged = items = 0
        causes: Counter[tuple[str, str]] = Counter()
        slow = pa.schema([("sku", pa.string()), ("output", pa.string()), ("duration_ms", pa.float64())]).empty_table()
        for part in range(parts):
            picked = _picked_rows(snapshot, part, parts, runs if part == 0 else None)
            part_items: list[np.ndarray] = []
            columns = ["sku", "output", "status", "stage", "error", "duration_ms", "flags"]
            for rows in _taken(snapshot, picked, columns):
                outputs += rows.num_rows
                part_items.append(np.unique(sku_hashes(_item_key(rows))))
                is_ok = pc.fill_null(pc.equal(rows.column("status"), "ok"), False)
                ok += pc.sum(is_ok).as_py() or 0
                flagged += _flagged(rows)
                failed = pa.Table.from_batches([rows.filter(pc.invert(is_ok))]).select(["stage", "error"])
                counted = failed.group_by(["stage", "error"], use_threads=False).aggregate([("stage", "count")])
                for stage, error, count in zip(*(counted.column(i).to_pylist() for i in range(3)), strict=True):
                    causes[(stage, _reason(error or ""))] += count
                good = pa.Table.from_batches([rows.filter(is_ok)]).select(["sku", "output", "duration_ms"])
                slow = pa.concat_tables([slow, good])
                if slow.num_rows > top:
                    slow = slow.take(pc.select_k_unstable(slow, k=top, sort_keys=[("duration_ms", "descending")]))
            items += len(np.unique(np.concatenate(part_items))) if part_items else 0
            del picked, part_items
    slowest = sorted(slow.to_pylist(), key=lambda r: -(r["duration_ms"] or 0.0))[:top]
    return LedgerReport(
        out_dir=out_dir,
        items=items,
        outputs=outputs,
        ok=ok,
        failed=outputs - ok,
        runs=len(runs),
        by_cause=_commonest(causes, top),
        slowest=[(r["sku"], r["output"], r["duration_ms"]) for r in slowest],
        state=pa.schema([LEDGER_SCHEMA.field(c) for c in ("sku", "output", "status")]).empty_table(),
        flagged=flagged,
    )


def _taken(snapshot: LedgerSnapshot, picked: np.ndarray, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Pass 2: the rows numbered ``picked`` (sorted), of ``columns``, streamed batch by batch."""
    start = 0
    for batch in snapshot.batches(columns):
        lo, hi = np.searchsorted(picked, [start, start + batch.num_rows])
        start += batch.num_rows
        if lo != hi:
            yield batch.take(pa.array(picked[lo:hi] - (start - batch.num_rows)))


def current_rows(out_dir: Location, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The latest non-skipped row of every (item, output), of ``columns``, streamed in bounded memory (the parts of
    :func:`_lean_summary`: about :data:`REPORT_PASS_ROWS` row hashes held at a time, whatever the ledger's size).
    Unlike :func:`current_state` the rows come in no particular order."""
    with LedgerSnapshot(out_dir) as snapshot:
        parts = max(1, -(-snapshot.num_rows // REPORT_PASS_ROWS))
        for part in range(parts):
            yield from _taken(snapshot, _picked_rows(snapshot, part, parts, None), columns)


METRIC_SAMPLE = 1 << 16
"""Values kept per (output, metric) for :func:`metric_distributions`' quantiles: a uniform sample of all of them."""


@dataclasses.dataclass
class MetricStats:
    """The distribution of one numeric metric over one output's current ``ok`` rows (``q.ssim`` of ``hero@teens``).
    Count, mean, min and max are exact; the quantiles come from a uniform sample of at most :data:`METRIC_SAMPLE`
    values (exact below that)."""

    output: str
    metric: str
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    sample: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.sample, q)) if self.sample.size else float("nan")

    def add(self, values: np.ndarray, rng: np.random.Generator) -> None:
        values = values[np.isfinite(values)]
        if not values.size:
            return
        seen = self.count
        self.count += values.size
        self.total += float(values.sum())
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
        room = METRIC_SAMPLE - self.sample.size
        if room > 0:
            self.sample = np.concatenate([self.sample, values[:room]])
            values, seen = values[room:], seen + room
        if values.size:  # reservoir sampling: value number t (1-based) replaces a random slot with chance size / t
            t = seen + 1 + np.arange(values.size)
            keep = rng.random(values.size) < METRIC_SAMPLE / t
            slots = rng.integers(0, METRIC_SAMPLE, int(keep.sum()))
            self.sample[slots] = values[keep]


def _numeric_columns(rows: list[str]) -> pa.Table:
    """The numeric values of JSON objects ``rows`` as float64 columns (null where a row has none or another type)."""
    objects = [json.loads(row) for row in rows]
    names = sorted({k for o in objects for k, v in o.items() if isinstance(v, int | float) and not isinstance(v, bool)})
    columns = {
        name: pa.array(
            [
                float(v) if isinstance(v := o.get(name), int | float) and not isinstance(v, bool) else None
                for o in objects
            ],
            pa.float64(),
        )
        for name in names
    }
    return pa.table(columns) if columns else pa.table({"_": pa.nulls(len(rows))})


CONFIDENCE = "confidence"
"""The metric name, by convention, of a stage's 0..1 certainty in its result (higher is surer; the ledger key is
``<node>.confidence``): ``imgx report`` lists the items lowest in every such metric (:func:`metric_report`). A stage
that measures its own confidence names the metric ``confidence`` (``item.noted(confidence=0.93)``), nothing else."""

LOWEST = 10
"""How many items :func:`metric_report` lists per lowest metric by default."""


def metric_matches(key: str, names: Sequence[str]) -> bool:
    """Whether ledger metric ``key`` (``masked.confidence``) is one of ``names``: a name matches the whole key or its
    last part after the node id (``confidence`` matches ``masked.confidence`` and ``matte.confidence``)."""
    return any(key == name or key.endswith("." + name) for name in names)


@dataclasses.dataclass
class LowestItems:
    """The items with the lowest values of one metric over the current ``ok`` rows, lowest first; an item whose
    outputs all carry the same value (an upstream node's metric) is listed once, with its first output."""

    metric: str  # the ledger key: masked.confidence
    rows: list[tuple[str, str, float, str | None]]  # (sku, output, value, path of the output)


@dataclasses.dataclass
class MetricReport:
    """:func:`metric_report`'s answer: the distributions and the lowest items."""

    distributions: list[MetricStats]
    lowest: list[LowestItems]


_LOWEST_SCHEMA = pa.schema(
    [("sku", pa.string()), ("output", pa.string()), ("value", pa.float64()), ("path", pa.string())]
)


def _lowest_k(table: pa.Table, k: int) -> pa.Table:
    """The ``k`` rows of ``table`` (:data:`_LOWEST_SCHEMA`) lowest in value, one per (sku, value), ties by sku and
    output: a bounded top-k, never sorting more than a batch plus ``k`` rows."""
    table = table.sort_by([("sku", "ascending"), ("value", "ascending"), ("output", "ascending")])
    table = table.group_by(["sku", "value"], use_threads=False).aggregate([("output", "first"), ("path", "first")])
    table = table.rename_columns(["sku", "value", "output", "path"]).select(_LOWEST_SCHEMA.names)
    if table.num_rows > k:
        table = table.take(pc.select_k_unstable(table, k=k, sort_keys=[("value", "ascending"), ("sku", "ascending")]))
    return table


def metric_report(out_dir: Location, *, lowest: Sequence[str] = (CONFIDENCE,), top: int = LOWEST) -> MetricReport:
    """Per output (a variant's output is its own: ``hero@teens``) and numeric metric of the ledger's ``metrics``
    column, the distribution over the current ``ok`` rows, sorted by output and metric; and for every metric key
    matching ``lowest`` (:func:`metric_matches`; :data:`CONFIDENCE` by default) the ``top`` items lowest in it, sorted
    by key. One pass streamed in bounded memory (:func:`current_rows`; each lowest list is a running top-k of at most
    ``top`` rows merged with one batch); non-numeric notes (``centred.limited_by``, a rule's message) are left out,
    and so are NaN values."""
    import pyarrow.json as pajson

    found: dict[tuple[str, str], MetricStats] = {}
    least: dict[str, pa.Table] = {}
    rng = np.random.default_rng(0)
    for batch in current_rows(out_dir, ["sku", "output", "status", "path", "metrics"]):
        text = pc.fill_null(batch.column("metrics"), "")
        keep = pc.and_(pc.equal(batch.column("status"), "ok"), pc.greater(pc.utf8_length(text), 0))
        keep = pc.fill_null(keep, False)
        if not pc.any(keep).as_py():
            continue
        rows = text.filter(keep).to_pylist()
        try:
            parsed = pajson.read_json(io.BytesIO("\n".join(rows).encode()))
        except pa.ArrowInvalid:  # a key whose type differs between rows: read those rows one by one
            parsed = _numeric_columns(rows)
        outputs = batch.column("output").filter(keep)
        for name in parsed.column_names:
            column = parsed.column(name)
            if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
                continue
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            for output in pc.unique(outputs).to_pylist():
                mine = pc.equal(outputs, output).to_numpy(zero_copy_only=False)
                stats = found.setdefault((output, name), MetricStats(output, name))
                stats.add(values[mine], rng)
            if top > 0 and metric_matches(name, lowest):
                measured = np.isfinite(values)  # null (a row without it) reads as NaN here
                if not measured.any():
                    continue
                chosen = pa.array(measured)
                table = pa.table(
                    [batch.column("sku").filter(keep).filter(chosen), outputs.filter(chosen),
                     pa.array(values[measured], pa.float64()), batch.column("path").filter(keep).filter(chosen)],
                    schema=_LOWEST_SCHEMA,
                )  # fmt: skip
                least[name] = _lowest_k(pa.concat_tables([t for t in (least.get(name), table) if t is not None]), top)
    lowest_items = []
    for name in sorted(least):
        ordered = least[name].sort_by([("value", "ascending"), ("sku", "ascending")]).to_pylist()
        lowest_items.append(LowestItems(name, [(r["sku"], r["output"], r["value"], r["path"]) for r in ordered]))
    return MetricReport([found[key] for key in sorted(found) if found[key].count], lowest_items)


def metric_distributions(out_dir: Location) -> list[MetricStats]:
    """Per output (a variant's output is its own: ``hero@teens``) and numeric metric of the ledger's ``metrics``
    column, the distribution over the current ``ok`` rows, sorted by output and metric (:func:`metric_report`
    without the lowest items)."""
    return metric_report(out_dir, lowest=(), top=0).distributions


VARIANTS_COLUMNS = ("sku", "variant", "output", "path", "recipe_hash", "metrics")


def write_variants_manifest(out_dir: Location) -> int:
    """Write ``<out_dir>/_imgx/variants.parquet`` and ``variants.csv``: per (sku, variant, output) made, its file, the
    recipe hash and the metrics its stages measured (JSON) -- what a storefront or an A/B testing tool reads to serve
    one image per audience. ``output`` is the node's own id (``hero``, not ``hero@vintage``). Streamed in bounded
    memory; each file appears whole or not at all. Returns the rows written."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in VARIANTS_COLUMNS])
    paths = StatePaths(out_dir)
    rows = 0
    with contextlib.ExitStack() as stack:
        tmp = None if paths.local else paths.tmp
        parquet = stack.enter_context(fs.atomic_output(str(paths.variants_manifest(".parquet")), tmp_dir=tmp))
        text = stack.enter_context(fs.atomic_output(str(paths.variants_manifest(".csv")), tmp_dir=tmp))
        tables = stack.enter_context(pq.ParquetWriter(parquet, schema))
        lines = stack.enter_context(pacsv.CSVWriter(text, schema))
        for batch in current_rows(out_dir, ["sku", "output", "status", "path", "recipe_hash", "metrics", "variant"]):
            varied = pc.not_equal(pc.fill_null(batch.column("variant"), ""), "")
            batch = batch.filter(pc.fill_null(pc.and_(pc.equal(batch.column("status"), "ok"), varied), False))
            if not batch.num_rows:
                continue
            base = pc.extract_regex(batch.column("output"), r"^(?P<node>[^@]*)").field("node")
            table = pa.table(
                [batch.column("sku"), batch.column("variant"), base, batch.column("path"), batch.column("recipe_hash"),
                 pc.fill_null(batch.column("metrics"), "")],
                schema=schema,
            )  # fmt: skip
            tables.write_table(table)
            lines.write_table(table)
            rows += table.num_rows
    return rows


def _picked_rows(snapshot: LedgerSnapshot, part: int, parts: int, runs: set[str] | None) -> np.ndarray:
    """Pass 1 of :func:`_lean_summary` for one part: the sorted row numbers of each (item, output)'s latest
    non-skipped row, among the items whose key hash is ``part`` modulo ``parts``; ``runs`` collects the run ids."""
    never = np.iinfo(np.int64).min
    keys: list[np.ndarray] = []
    times: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    start = 0
    for batch in snapshot.batches(["sku", "output", "status", "stage", "error", "finished_at", "run_id"]):
        if runs is not None:
            runs.update(v for v in pc.unique(batch.column("run_id")).to_pylist() if v is not None)
        item = _item_key(batch)
        number = np.arange(start, start + batch.num_rows, dtype=np.int64)
        start += batch.num_rows
        if parts > 1:
            mine = sku_hashes(item) % np.uint64(parts) == np.uint64(part)
            batch, item, number = batch.filter(pa.array(mine)), item.filter(pa.array(mine)), number[mine]
        keys.append(sku_hashes(pc.binary_join_element_wise(item, batch.column("output"), "\x1f")))
        stamp = pc.cast(batch.column("finished_at"), pa.int64()).to_numpy(zero_copy_only=False)
        skipped = pc.fill_null(pc.equal(batch.column("status"), "skipped"), False).to_numpy(zero_copy_only=False)
        times.append(np.where(skipped, never, stamp))  # a skipped row is never the latest
        numbers.append(number)
    key, time, number = np.concatenate(keys), np.concatenate(times), np.concatenate(numbers)
    del keys, times, numbers
    order = np.lexsort((time, key))  # stable: by key, then time, then position; each key's last is its latest
    key = key[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    del key
    picked = order[last]
    del order, last
    return np.sort(number[picked[time[picked] != never]])


def _thumbnail(image: Image.Image, cell: int) -> Image.Image:
    image = image.copy()
    image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    if image.mode == "RGBA":  # show transparency on a checkerboard, as editors do
        board = Image.new("RGB", image.size, (235, 235, 235))
        draw = ImageDraw.Draw(board)
        for y in range(0, image.height, 8):
            for x in range((y // 8 % 2) * 8, image.width, 16):
                draw.rectangle([x, y, x + 7, y + 7], fill=(205, 205, 205))
        board.paste(image, mask=image.getchannel("A"))
        image = board
    return image.convert("RGB")


def _place(sheet: Image.Image, tile: Image.Image, left: int, top: int, cell: int) -> None:
    """Centre ``tile`` in a light grey cell, so white canvases and padding show where they end."""
    sheet.paste((228, 228, 228), (left + 1, top + 1, left + cell - 1, top + cell - 1))
    sheet.paste(tile, (left + (cell - tile.width) // 2, top + (cell - tile.height) // 2))


def _message_cell(text: str, cell: int, colour: tuple[int, int, int]) -> Image.Image:
    tile = Image.new("RGB", (cell, cell), colour)
    draw = ImageDraw.Draw(tile)
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > cell // 7:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    draw.multiline_text((6, 6), "\n".join(lines[: cell // 14]), fill=(255, 255, 255))
    return tile


def _metrics_caption(metrics: str | None, cell: int) -> str:
    """The numeric metrics of a ledger row, short (``ssim 0.912 product_delta_e 0.41``: the node's name left out),
    cut to what fits under a cell."""
    found = json.loads(metrics) if metrics else {}
    parts = [
        f"{key.split('.', 1)[-1]} {value:.3g}"
        for key, value in sorted(found.items())
        if isinstance(value, int | float) and not isinstance(value, bool) and not key.endswith((".bound", ".message"))
    ]
    text = " ".join(parts)
    room = max(8, cell // 6)
    return text if len(text) <= room else text[: room - 1] + "…"


def contact_sheet(
    out_dir: Location, destination: str | Path, *, limit: int = 24, cell: int = 192, failed_first: bool = True
) -> int:
    """Write a JPEG/PNG contact sheet: one row per SKU, its source then each output (failed outputs show the reason).

    ``out_dir`` and ``destination`` may be local or object-store locations; the sheet is written atomically.

    :return: how many SKUs the sheet shows.
    """
    columns = ["sku", "source", "output", "path", "status", "stage", "error", "metrics"]
    state = current_state(out_dir, columns=columns).to_pylist()
    by_sku: dict[str, dict[str, dict]] = {}
    for row in state:
        by_sku.setdefault(row["sku"], {})[row["output"]] = row
    outputs = sorted({row["output"] for row in state})
    skus = sorted(by_sku, key=lambda s: (not any(r["status"] == "failed" for r in by_sku[s].values()), s))
    skus = skus[:limit] if failed_first else sorted(by_sku)[:limit]
    label = 18
    captions = {(r["sku"], r["output"]): _metrics_caption(r.get("metrics"), cell) for r in state if r["sku"] in skus}
    caption = 14 if any(captions.values()) else 0  # a line under each output: what its stages measured
    height = label + len(skus) * (cell + label + caption)
    sheet = Image.new("RGB", ((1 + len(outputs)) * cell, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(["source", *outputs]):
        draw.text((column * cell + 4, 3), title, fill=(0, 0, 0))
    for row_index, sku in enumerate(skus):
        top = label + row_index * (cell + label + caption)
        draw.text((4, top + 2), sku[:60], fill=(60, 60, 60))
        rows = by_sku[sku]
        source = next(iter(rows.values()))["source"]
        try:
            item = decode_image(read_source(source), sku=sku, source=source)
            tile = _thumbnail(Image.fromarray(item.image), cell - 8)
        except ImgxError as exc:
            tile = _message_cell(f"source unreadable: {exc}", cell - 8, (150, 40, 40))
        _place(sheet, tile, 0, top + label, cell)
        for column, output in enumerate(outputs, start=1):
            row = rows.get(output)
            if row is None:
                tile = _message_cell("not run", cell - 8, (120, 120, 120))
            elif row["status"] != "ok":
                tile = _message_cell(f"{row['stage']}: {row['error']}", cell - 8, (170, 30, 30))
            else:
                produced_at = fs.join(str(out_dir), row["path"], error=InputError)
                with Image.open(io.BytesIO(read_source(produced_at))) as produced:
                    tile = _thumbnail(produced.convert("RGBA" if "A" in produced.mode else "RGB"), cell - 8)
            _place(sheet, tile, column * cell, top + label, cell)
            if captions.get((sku, output)):
                draw.text((column * cell + 4, top + label + cell), captions[(sku, output)], fill=(40, 40, 40))
    buffer = io.BytesIO()
    fmt = "PNG" if str(destination).lower().endswith(".png") else "JPEG"
    sheet.save(buffer, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    fs.write_bytes_atomic(str(destination), buffer.getvalue())
    return len(skus)
