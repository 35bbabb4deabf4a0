"""What a recipe costs on this machine: seconds per node and peak memory per worker, learned from finished runs.

``imgx plan`` estimates a run before it starts (issue 17: a model recipe ran 20 minutes at 7.5 GB on a 2-core
machine with nothing saying so). Every number comes from a measurement on this machine, never from a guess:

* after each ``imgx run`` the runner records, per node, the seconds its stage took (summed over workers) with the
  number of items and their work, and for the whole plan the run's wall time, the time outside stages (read,
  decode, encode, write, start-up) and the workers' peak RSS;
* ``imgx plan --calibrate`` runs the plan's stages in-process on two real catalog images (after one warm-up call,
  so model loading and first-call set-up are not counted) and records the same per-node numbers.

A node's cost is ``seconds = per_item * items + per_unit * work``, ``work`` the node's :meth:`imgx.Stage.work` over
the *catalog* images (their sizes are what ``imgx plan`` can read from headers; megapixels unless the stage says
otherwise: ``gan.upscale`` counts the tiles of the images it enlarges and nothing for those it passes through),
fitted to the node's last observations; with one observation, or observations that cannot separate the two parts,
all of it is per unit of work (exact for the catalog it was measured on). The key of a node covers its stage,
version and parameters and those of every node upstream (an upscale before a fit changes what the fit is given),
the backend, precision, device, threads per worker and the machine, so a number is only reused where it means the
same thing. Anything never measured stays unknown.

The cache is one small JSON file, ``$IMGX_HOME/costs.json`` (``~/.cache/imgx`` by default; ``IMGX_COSTS`` names
another file, as the test suite does so that its tiny catalogs never stand for the user's runs), bounded in size and
replaced atomically; a cache that cannot be read or written costs the estimate, never a run.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import resource
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io.atomic import atomic_write
from .machine import cpu_model
from .models import imgx_home

if TYPE_CHECKING:
    from .item import ItemRef
    from .plan import Plan
    from .registry import Registry
    from .summary import RunSummary

__all__ = [
    "COSTS_ENV",
    "COSTS_FILE",
    "SAMPLE",
    "CatalogSizes",
    "CostBook",
    "MemoryProbe",
    "NodeEstimate",
    "PlanEstimate",
    "calibrate",
    "catalog_sizes",
    "costs_path",
    "estimate",
    "expected_work",
    "machine_id",
    "node_keys",
    "record_run",
]

COSTS_FILE = "costs.json"
COSTS_ENV = "IMGX_COSTS"
SAMPLE = 200  # catalog image headers read for the megapixels (spread over the catalog, then scaled)
MAX_KEYS = 400  # node and plan entries kept (least recently measured dropped first)
MAX_OBSERVATIONS = 8  # per node: the most recent
_VERSION = 2  # 2: observations in Stage.work units, no longer megapixels


def costs_path() -> Path:
    """``$IMGX_COSTS`` when set, else ``$IMGX_HOME/costs.json`` (``IMGX_HOME`` defaults to ``~/.cache/imgx``, where
    models and engines live)."""
    named = os.environ.get(COSTS_ENV, "").strip()
    return Path(named).expanduser() if named else imgx_home() / COSTS_FILE


def machine_id() -> str:
    """This machine, for the cache keys: host name, CPU model and the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{socket.gethostname()}|{cpu_model()}|{cores}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- the catalog's size --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CatalogSizes:
    """The catalog's images in megapixels, from the headers of at most :data:`SAMPLE` of them (spread evenly over
    the catalog) scaled to every item.

    :param items: catalog items.
    :param sampled: headers read; ``unread``: sampled items whose header could not be read (not local, broken).
    :param megapixels: estimated total over ``items`` (``None`` when no header could be read).
    :param largest: the largest sampled image, in megapixels.
    :param sizes: ``(sku, source, megapixels)`` of the sampled images read, for calibration to pick from.
    :param shapes: ``(h, w)`` of the same images, in the same order.
    """

    items: int
    sampled: int
    unread: int
    megapixels: float | None
    largest: float | None
    sizes: tuple[tuple[str, str, float], ...] = ()
    shapes: tuple[tuple[int, int], ...] = ()

    @property
    def mean(self) -> float | None:
        return self.megapixels / self.items if self.megapixels is not None and self.items else None

    @property
    def exact(self) -> bool:
        """Whether every item's header was read (nothing scaled)."""
        return self.sampled == self.items and not self.unread


def catalog_sizes(refs: Iterable[ItemRef], items: int, *, limit: int = SAMPLE) -> CatalogSizes:
    """Read the headers of at most ``limit`` of the ``items`` catalog items (every ``items // limit``-th) and scale
    their mean to the whole catalog. Reads no pixel (Pillow opens a file lazily)."""
    from .runtime.shape_report import header_size  # Pillow, lazily; imgx.runtime does not import torch

    step = max(1, -(-items // limit)) if items else 1
    sizes: list[tuple[str, str, float]] = []
    shapes: list[tuple[int, int]] = []
    sampled = unread = 0
    for index, ref in enumerate(refs):
        if index % step or sampled >= limit:
            continue
        sampled += 1
        size = header_size(ref.source) if not ref.error else None
        if size is None:
            unread += 1
        else:
            sizes.append((ref.sku, ref.source, size[0] * size[1] / 1e6))
            shapes.append((size[0], size[1]))
    if not sizes:
        return CatalogSizes(items, sampled, unread, None, None)
    mean = sum(mp for _, _, mp in sizes) / len(sizes)
    largest = max(mp for _, _, mp in sizes)
    return CatalogSizes(items, sampled, unread, mean * items, largest, tuple(sizes), tuple(shapes))


def expected_work(plan: Plan, sizes: CatalogSizes) -> dict[str, float] | None:
    """Each node's :meth:`imgx.Stage.work` over the whole catalog, from the sampled headers scaled to every item (what
    the ETA weighs the items still to come by); ``None`` when no header was read."""
    if not sizes.shapes:
        return None
    scale = sizes.items / len(sizes.shapes)
    return {node.id: scale * sum(node.work(h, w) for h, w in sizes.shapes) for node in plan.nodes}


# -- keys --------------------------------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def node_keys(plan: Plan, *, device: str, threads: int | None) -> dict[str, str]:
    """Node id -> its cost key: the stage, version and parameters of the node and of everything upstream, the
    plan's backend and precision, the device, threads per worker and :func:`machine_id`."""
    settings = plan.settings
    own = {
        n.id: {"uses": n.uses, "version": str(getattr(n.stage, "version", "1")), "params": n.params.fingerprint()}
        for n in plan.nodes
    }
    needs = {n.id: n.needs for n in plan.nodes}
    machine = machine_id()
    keys: dict[str, str] = {}
    for node in plan.nodes:
        upstream: list[Any] = []
        stack, seen = list(node.needs), set()
        while stack:
            current = stack.pop()
            if current in seen or current not in own:
                continue
            seen.add(current)
            upstream.append(own[current])
            stack.extend(needs[current])
        payload = {
            "node": own[node.id],
            "upstream": sorted(map(_canonical, upstream)),
            "backend": settings.backend,
            "precision": settings.precision,
            "device": device,
            "threads": threads,
            "machine": machine,
        }
        keys[node.id] = hashlib.sha256(_canonical(payload).encode()).hexdigest()[:20]
    return keys


def _plan_key(keys: Mapping[str, str], workers: int, executor: str) -> str:
    """The key of a whole plan's run-level numbers (time outside stages, peak memory per worker)."""
    payload = {"nodes": sorted(keys.values()), "workers": workers, "executor": executor}
    return "plan-" + hashlib.sha256(_canonical(payload).encode()).hexdigest()[:20]


# -- the cache ---------------------------------------------------------------------------------------------------


class CostBook:
    """The cost cache: node key -> recent observations ``{items, work, seconds, source, date}``; plan key ->
    the last run-level record. Read once, changed in memory, written back atomically by :meth:`save`.

    :param path: the JSON file (default :func:`costs_path`).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or costs_path()
        self.nodes: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.problem: str | None = None  # why the cache could not be read, for the plan printout
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == _VERSION:
                self.nodes = dict(data.get("nodes", {}))
                self.plans = dict(data.get("plans", {}))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:  # a broken cache is an empty one, said once
            self.problem = f"cost cache {self.path} unreadable ({type(exc).__name__}: {exc}); starting a new one"

    def observe(self, key: str, label: str, observation: Mapping[str, Any]) -> None:
        entry = self.nodes.setdefault(key, {"label": label, "observations": []})
        entry["label"] = label
        entry["observations"] = [*entry["observations"], dict(observation)][-MAX_OBSERVATIONS:]
        entry["last"] = observation["date"]

    def observations(self, key: str) -> list[dict[str, Any]]:
        return list(self.nodes.get(key, {}).get("observations", []))

    def save(self) -> None:
        """Write the cache atomically, keeping the :data:`MAX_KEYS` most recently measured entries."""
        for table in (self.nodes, self.plans):
            if len(table) > MAX_KEYS:
                keep = sorted(table, key=lambda k: table[k].get("last", ""), reverse=True)[:MAX_KEYS]
                for key in set(table) - set(keep):
                    del table[key]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": _VERSION, "nodes": self.nodes, "plans": self.plans}
        atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


# -- memory ------------------------------------------------------------------------------------------------------


def _maxrss_mib(who: int) -> float:
    """``ru_maxrss`` in MiB (KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(who).ru_maxrss
    return value / (1024**2 if sys.platform == "darwin" else 1024)


class MemoryProbe:
    """Taken when a run starts; :meth:`peak` says after it what one worker's RSS peaked at, and whose it was.

    Worker processes: the largest high-water mark of the finished children (``RUSAGE_CHILDREN``), when the run
    raised it (a program that ran a larger child before gets ``None``: no number rather than someone else's). In
    one process (``workers: 1``): this process's high-water mark, which includes what it held before the run.
    """

    def __init__(self) -> None:
        self.children = _maxrss_mib(resource.RUSAGE_CHILDREN)
        self.own = _maxrss_mib(resource.RUSAGE_SELF)

    def peak(self, *, in_process: bool) -> tuple[float | None, str]:
        if in_process:
            return round(_maxrss_mib(resource.RUSAGE_SELF), 1), "the main process (the stages ran in it)"
        children = _maxrss_mib(resource.RUSAGE_CHILDREN)
        if children > self.children:
            return round(children, 1), "the largest worker process"
        return None, "not measured (no worker process of this run raised this program's children's peak)"


# -- learning --------------------------------------------------------------------------------------------------


def record_run(
    plan: Plan,
    summary: RunSummary,
    sizes: CatalogSizes,
    *,
    device: str,
    threads: int | None,
    peak: tuple[float | None, str],
    book: CostBook | None = None,
) -> CostBook | None:
    """Learn from a finished run: each node's seconds over the items processed and their work (the catalog's,
    sampled), and the plan's time outside stages and peak memory per worker. A run that processed nothing (all
    skipped, a dry run) or whose images' sizes are unknown teaches nothing: returns ``None``."""
    processed = summary.items_done + summary.items_failed
    work = expected_work(plan, sizes)
    if summary.dry_run or processed <= 0 or work is None or not summary.stage_seconds:
        return None
    book = book or CostBook()
    keys = node_keys(plan, device=device, threads=threads)
    date = _today()
    for node in plan.nodes:
        seconds = summary.stage_seconds.get(node.id)
        if seconds is None:
            continue
        units = work[node.id] * processed / sizes.items
        observation = {"items": processed, "work": units, "seconds": seconds, "source": "run"}
        book.observe(keys[node.id], f"{node.id} ({node.uses})", {**observation, "date": date})
    staged = sum(summary.stage_seconds.values())
    other = max(0.0, summary.seconds * summary.workers - staged) / processed
    peak_mib, whose = peak
    book.plans[_plan_key(keys, summary.workers, summary.executor)] = {
        "recipe": plan.name,
        "source": "run",
        "date": date,
        "last": date,
        "items": processed,
        "wall_seconds": summary.seconds,
        "other_seconds_per_item": other,
        "peak_rss_mib": peak_mib,
        "peak_of": whose,
        "largest_megapixels": sizes.largest,
    }
    book.save()
    return book


# -- estimating ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeEstimate:
    """One node's estimated seconds (summed over workers), or ``None`` with ``source`` saying why."""

    node: str
    uses: str
    seconds: float | None
    source: str


@dataclasses.dataclass(frozen=True)
class PlanEstimate:
    """What ``imgx plan`` prints: the catalog's size, each node's seconds, the wall time and memory per worker.

    :param wall_seconds: for the whole run with ``workers`` workers: ``None`` unless every node is known.
    :param other_seconds: time outside stages (read, decode, encode, write, start-up; summed over workers).
    :param peak_rss_mib: one worker's peak RSS; ``memory_source`` says where it comes from.
    """

    sizes: CatalogSizes
    workers: int
    nodes: tuple[NodeEstimate, ...]
    other_seconds: float | None
    other_source: str
    wall_seconds: float | None
    peak_rss_mib: float | None
    memory_source: str


def _fit(observations: list[dict[str, Any]]) -> tuple[float, float] | None:
    """``(per_item, per_unit)`` seconds fitted to the observations (least squares, both parts >= 0); with one
    observation or ones that cannot tell the parts apart, all per unit of work (all per item where there was no
    work: a stage that passed every image through)."""
    items = sum(o["items"] for o in observations)
    work = sum(o["work"] for o in observations)
    seconds = sum(o["seconds"] for o in observations)
    proportional = (0.0, seconds / work) if work > 0 else ((seconds / items, 0.0) if items else None)
    if len(observations) < 2:
        return proportional
    # normal equations of seconds ~ a * items + b * work
    saa = sum(o["items"] ** 2 for o in observations)
    sab = sum(o["items"] * o["work"] for o in observations)
    sbb = sum(o["work"] ** 2 for o in observations)
    sas = sum(o["items"] * o["seconds"] for o in observations)
    sbs = sum(o["work"] * o["seconds"] for o in observations)
    det = saa * sbb - sab * sab
    if det <= 1e-9 * max(saa * sbb, 1e-12):  # every observation has the same work per item
        return proportional
    a = (sas * sbb - sbs * sab) / det
    b = (saa * sbs - sab * sas) / det
    if a < 0 or b < 0:
        return proportional
    return a, b


def _describe(observations: list[dict[str, Any]]) -> str:
    latest = observations[-1]
    kinds = {o["source"] for o in observations}
    what = "run" if kinds == {"run"} else "calibration" if kinds == {"calibration"} else "runs and calibration"
    return f"{what} of {latest['date']}" + (f" ({len(observations)} measurements)" if len(observations) > 1 else "")


def estimate(
    plan: Plan,
    sizes: CatalogSizes,
    *,
    workers: int,
    device: str,
    threads: int | None,
    book: CostBook | None = None,
) -> PlanEstimate:
    """Estimate a run of ``plan`` over a catalog of ``sizes`` with ``workers`` workers from what ``book`` recorded
    on this machine; what it never measured is ``None`` ("unknown"), never a guess."""
    book = book or CostBook()
    keys = node_keys(plan, device=device, threads=threads)
    work = expected_work(plan, sizes)
    nodes = []
    for node in plan.nodes:
        observations = book.observations(keys[node.id])
        fit = _fit(observations) if observations else None
        if fit is None or work is None:
            why = "unknown (never measured here: run it or use --calibrate)" if not observations else "unknown"
            if observations and work is None:
                why = "unknown (no image size could be read)"
            nodes.append(NodeEstimate(node.id, node.uses, None, why))
            continue
        per_item, per_unit = fit
        seconds = per_item * sizes.items + per_unit * work[node.id]
        nodes.append(NodeEstimate(node.id, node.uses, seconds, _describe(observations)))
    record = book.plans.get(_plan_key(keys, workers, plan.settings.executor))
    other: float | None = None
    other_source = "unknown (no run of this plan with this many workers recorded)"
    peak: float | None = None
    memory_source = "unknown (no run of this plan with this many workers recorded)"
    if record is not None:
        other = record["other_seconds_per_item"] * sizes.items
        other_source = f"{record['source']} of {record['date']}"
        if record.get("peak_rss_mib") is not None:
            peak = record["peak_rss_mib"]
            memory_source = f"{record['source']} of {record['date']}, peak RSS of {record['peak_of']}"
            largest = record.get("largest_megapixels")
            if largest and sizes.largest and sizes.largest > 1.1 * largest:
                memory_source += (
                    f"; at least this: that run's largest image was {largest:.1f} MP, this catalog's is "
                    f"{sizes.largest:.1f} MP"
                )
        else:
            memory_source = f"unknown ({record['source']} of {record['date']}: {record['peak_of']})"
    known = [n.seconds for n in nodes]
    wall = None
    if all(s is not None for s in known) and other is not None:
        wall = (sum(s for s in known if s is not None) + other) / max(1, workers)
    return PlanEstimate(sizes, workers, tuple(nodes), other, other_source, wall, peak, memory_source)


# -- calibration -------------------------------------------------------------------------------------------------


def calibrate(
    plan: Plan,
    registry: Registry,
    sizes: CatalogSizes,
    *,
    device: str,
    threads: int | None,
    workers: int,
    book: CostBook | None = None,
) -> CostBook | None:
    """Measure the plan's stages in this process on two real catalog images: the smallest sampled one (twice: the
    first call loads models and builds engines, and is not counted) and the one nearest the sampled median. Records
    each node's seconds per image, and the time outside stages and this process's peak RSS as the plan's
    run-level record for ``workers`` workers (an estimate of one worker: a worker holds the same stages).
    Writes into a temporary folder that is removed; returns ``None`` when no image size was read."""
    import shutil
    import tempfile
    import time

    from .executors.processor import BatchProcessor, RunSpec, WorkUnit
    from .item import ItemRef

    if not sizes.sizes:
        return None
    ordered = sorted(sizes.sizes, key=lambda s: s[2])
    chosen = [ordered[0]]
    median = ordered[len(ordered) // 2]
    if median[2] > ordered[0][2]:
        chosen.append(median)
    book = book or CostBook()
    keys = node_keys(plan, device=device, threads=threads)
    folder = Path(tempfile.mkdtemp(prefix="imgx-calibrate-"))
    try:
        spec = RunSpec(plan=plan, out_dir=folder, run_id="calibration", device=device, threads=threads)
        processor = BatchProcessor(spec, worker="calibration", registry=registry)
        try:
            units = [
                WorkUnit(ItemRef(sku, source, index), plan.outputs) for index, (sku, source, _) in enumerate(chosen)
            ]
            processor([units[0]])  # warm-up: lazy model loading, engine builds, first-call set-up
            measured = []
            for unit, (_, _, mp) in zip(units, chosen, strict=True):
                start = time.perf_counter()
                result = processor([unit])
                measured.append((mp, time.perf_counter() - start, result))
        finally:
            processor.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    date = _today()
    failed = [r for _, _, r in measured if r.failed_items]
    if failed:
        from .errors import ImgxError

        row = next(row for row in failed[0].rows if row.status == "failed")
        raise ImgxError(f"calibration failed on {row.sku}: {row.stage}: {row.error}")
    for _, _, result in measured:
        for node in plan.nodes:
            if node.id in result.stage_seconds:
                units = result.work.get(node.id, 0.0)  # from the image's decoded size
                observation = {"items": 1, "work": units, "seconds": result.stage_seconds[node.id]}
                book.observe(
                    keys[node.id], f"{node.id} ({node.uses})", {**observation, "source": "calibration"} | {"date": date}
                )
    other = sum(max(0.0, wall - sum(r.stage_seconds.values())) for _, wall, r in measured) / len(measured)
    plan_key = _plan_key(keys, workers, plan.settings.executor)
    if book.plans.get(plan_key, {}).get("source") != "run":  # a real run's record is better than this one
        book.plans[plan_key] = {
            "recipe": plan.name,
            "source": "calibration",
            "date": date,
            "last": date,
            "items": len(measured),
            "other_seconds_per_item": other,
            "peak_rss_mib": round(_maxrss_mib(resource.RUSAGE_SELF), 1),
            "peak_of": "the plan process, which ran the stages on the calibration images",
            "largest_megapixels": max(mp for _, _, mp in chosen),
        }
    book.save()
    return book
