"""Run a recipe: load, plan, read the catalog, skip what ``--resume`` finds done, execute, summarise.

This is what ``imgx run`` calls and what benchmarks and other programs use directly::

    from imgx.runner import RunOptions, run_recipe
    summary = run_recipe("recipes/demo.yaml", RunOptions(workers=2))
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .costs import CatalogSizes, MemoryProbe, catalog_sizes, estimate, expected_work, record_run
from .errors import ImgxError, RecipeError
from .executors.base import ExecutorOptions
from .executors.liveness import wait_for_earlier_workers
from .executors.processor import BatchResult, RunSpec, WorkUnit
from .io import fs
from .io.catalog import Catalog, CatalogScan, open_catalog, read_sku_list, refs_of
from .io.naming import split_output
from .ledger import DoneSet, Location, StatePaths, compact_ledger, recover_journals
from .ledger_report import write_variants_manifest
from .machine import cuda_possible
from .plan import Plan, build_plan, document_problems, preflight_problems
from .progress import IO_READ, IO_WRITE, Reporter
from .recipe import LoadedRecipe, load_recipe
from .recipe.loader import IncompleteRecipe, Override
from .registry import PluginConfig, Registry, load_registry
from .summary import RunSummary

__all__ = ["RunOptions", "RunSummary", "prepare", "run_recipe"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Options of one run; the CLI flags, as a typed object.

    :param overrides: ``key.path=value`` assignments applied to the recipe (``--set``).
    :param resume: skip (sku, output) pairs the ledger records as done with the same recipe hash.
    :param executor: overrides ``execution.executor``.
    :param workers: overrides ``execution.workers``.
    :param max_failures: overrides ``execution.max_failures`` (``0.05``, ``"5%"``, ``10``).
    :param address: overrides ``execution.ray.address``: the Ray cluster the ``ray`` executor joins.
    :param dry_run: plan, count and report what would run; read no image and write nothing.
    :param plugin_config: where plugins come from.
    :param only: a file listing the SKUs to run (``--only``): a CSV with a ``sku`` column (the review page's
        download) or one SKU per line; every other catalog item is left out of the run (see
        :func:`imgx.io.catalog.read_sku_list`). A listed SKU the catalog lacks is warned about.
    """

    overrides: tuple[str, ...] = ()
    resume: bool = False
    executor: str | None = None
    workers: int | None = None
    max_failures: str | float | None = None
    address: str | None = None
    dry_run: bool = False
    plugin_config: PluginConfig = dataclasses.field(default_factory=PluginConfig)
    only: str | Path | None = None

    def all_overrides(self) -> tuple[Override, ...]:
        """``--set`` assignments, then the flags as assignments labelled with the flag (errors name ``--workers``)."""
        flags = [
            (f"execution.executor={self.executor}", "--executor") if self.executor is not None else None,
            (f"execution.workers={self.workers}", "--workers") if self.workers is not None else None,
            (f"execution.max_failures={self.max_failures}", "--max-failures")
            if self.max_failures is not None
            else None,
            (f"execution.ray.address={self.address}", "--address") if self.address is not None else None,
        ]
        return (*self.overrides, *(flag for flag in flags if flag is not None))


def resolve_workers(value: int | str) -> int:
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(value)


def worker_threads(workers: int) -> int:
    """Each worker's share of the cores, the CPU threads its models run on: two workers with an all-core thread pool
    each would oversubscribe the machine."""
    return max(1, resolve_workers("auto") // workers)


def resolve_overlap(setting: bool | str, *, device: str, threads: int) -> bool:
    """``execution.overlap`` resolved: as written, or for ``auto`` on where a worker runs its models on a GPU (the
    CPU decodes and encodes while the GPU computes) or has more than one core to itself (``threads``), off where every
    core already runs a worker of its own: there a helper thread would only take a core from another worker."""
    if setting != "auto":
        return bool(setting)
    return device != "cpu" or threads > 1


def resolve_device(plan: Plan) -> str:
    """The device stages run on: the plan's, with ``auto`` resolved to ``cuda`` when a stage is placed on the GPU and
    torch sees one, else ``cpu``. Torch is asked only where the machine could have a CUDA GPU
    (:func:`imgx.machine.cuda_possible`): importing it in the driver cost every run ~1.2 s and, in a one-worker run,
    the worker's 270 MiB."""
    requested = plan.settings.device
    if requested != "auto":
        return requested
    if not any(node.device == "gpu" for node in plan.nodes) or not cuda_possible():
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def prepare(
    recipe: str | Path, options: RunOptions, *, check_input: bool = False
) -> tuple[LoadedRecipe, Registry, Plan]:
    """Load and validate the recipe, load plugins and build the plan; reads no image. Every problem found is in one
    :class:`RecipeError`: the recipe's own keys, stage names and parameters, a stage needing alpha that nothing
    produces, and with ``check_input`` a missing local input folder or manifest (``imgx validate``; a run finds that
    when it opens the catalog)."""
    try:
        loaded = load_recipe(recipe, overrides=options.all_overrides())
    except IncompleteRecipe as exc:  # look for the problems that need plugins too, and report them all at once
        registry = load_registry(options.plugin_config)
        more = document_problems(exc.document, exc.base_dir, registry, exc.problems, check_input=check_input)
        raise exc.locator.error([*exc.problems, *more]) from None
    registry = load_registry(options.plugin_config)
    try:
        plan = build_plan(loaded, registry)
    except RecipeError as exc:
        problems = getattr(exc, "problems", None)
        if problems is None:
            raise
        document = loaded.recipe.model_dump(by_alias=True)
        more = document_problems(document, loaded.base_dir, registry, problems, check_input=check_input)
        if more:
            raise loaded.error([*problems, *more]) from None
        raise
    more = preflight_problems(loaded, plan, registry, check_input=check_input)
    if more:
        raise loaded.error(more)
    return loaded, registry, plan


class _RunLock:
    """One run per local output folder at a time.

    A POSIX record lock (``lockf``): released by the kernel when the process dies, and, unlike ``flock``, not shared
    with forked worker processes, so a worker can never keep a dead run's folder locked.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def __enter__(self) -> _RunLock:
        self.handle = open(self.path, "a+")
        try:
            fcntl.lockf(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise ImgxError(
                f"another imgx run is writing to {self.path.parent.parent}; wait for it or use another output.dir"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.handle, fcntl.LOCK_UN)
        self.handle.close()


@contextlib.contextmanager
def _claimed(paths: StatePaths, run_id: str) -> Iterator[None]:
    """Hold the output folder for this run; clean up what a killed run left there first.

    Local: :class:`_RunLock`, then wait for a killed run's workers, recover their journals and remove temp files.
    Object stores: the run marker ``_imgx/run.lock``, created with a conditional put (:func:`imgx.io.fs.
    acquire_run_marker`); a second run into the prefix is refused naming the first. A process killed with SIGKILL
    cannot delete its marker: the refusal says which run holds it and to delete the marker if that run is dead.
    """
    if paths.local:
        paths.make()
        with _RunLock(paths.lock):
            wait_for_earlier_workers(paths.workers_lock)  # a killed run's workers may still be finishing a write
            recover_journals(paths)
            shutil.rmtree(paths.tmp, ignore_errors=True)  # partial files of a killed run
            Path(paths.tmp).mkdir(parents=True, exist_ok=True)
            yield
        return
    out_dir = str(paths.out_dir)
    fs.check_writable(out_dir)  # one clear line for a missing bucket or refused credentials, before any image
    marker = fs.acquire_run_marker(out_dir, run_id)
    try:
        fs.delete_tree(str(paths.tmp))  # temp keys of a killed run's large writes
        yield
        fs.delete_tree(str(paths.tmp))  # deleting a temp key makes S3 stores leave a `tmp/` folder marker behind
    finally:
        fs.release_run_marker(marker, run_id)


def _budget(max_failures: float | int, items: int) -> float:
    return max_failures * items if isinstance(max_failures, float) else float(max_failures)


def run_recipe(recipe: str | Path, options: RunOptions | None = None, reporter: Reporter | None = None) -> RunSummary:
    """Run a recipe end to end and return its summary. Raises :class:`imgx.RecipeError` for a bad recipe (nothing is
    read or written) and :class:`imgx.ImgxError` if the run cannot go on (a stage cannot start, a worker died)."""
    options = options or RunOptions()
    reporter = reporter or Reporter(enabled=False)
    loaded, registry, plan = prepare(recipe, options)
    recipe_spec = loaded.recipe
    out_dir = StatePaths(fs.absolute(recipe_spec.output.dir, loaded.base_dir)).out_dir
    only = read_sku_list(options.only) if options.only is not None else None
    catalog = open_catalog(loaded, registry, skip_dirs=(out_dir,), only=only)
    workers = resolve_workers(plan.settings.workers)
    summary = RunSummary(
        recipe=loaded.path,
        run_id=time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
        out_dir=out_dir,
        executor=plan.settings.executor,
        workers=workers,
        dry_run=options.dry_run,
    )
    for failure in registry.failures:
        reporter.warn(f"plugin {failure.plugin}: {failure.error}")
    for note in plan.notes:
        reporter.warn(note)
    summary.left_out = catalog.left_out()
    if options.dry_run:
        return _dry_run(plan, catalog, out_dir, options, summary, reporter)

    paths = StatePaths(out_dir)
    with _claimed(paths, summary.run_id):
        done = _done(out_dir, plan, options.resume)
        scan = catalog.scan()
        _warn_missing(catalog, reporter)
        summary.items = scan.items
        summary.max_failures = plan.settings.max_failures
        summary.failure_budget = _budget(summary.max_failures, summary.items)
        device = resolve_device(plan)
        threads = worker_threads(workers)
        spec = RunSpec(
            plan=plan,
            out_dir=out_dir,
            run_id=summary.run_id,
            device=device,
            threads=threads,
            overlap=resolve_overlap(plan.settings.overlap, device=device, threads=threads),
        )
        executor_cls = registry.get_executor(plan.settings.executor)
        # workers import the plugins the plan uses, not every one installed (start-up time and memory per worker)
        plugins = options.plugin_config.restricted_to(plan.plugins_used(registry))
        executor = executor_cls(spec, ExecutorOptions(workers=workers, plugin_config=plugins), registry)
        sizes, expected = _expected_cost(plan, catalog, summary, spec)
        work = _expected_work(plan, sizes)
        reporter.start(summary.items, f"{recipe_spec.name}", workers=workers, expected=expected, work=work)
        memory = MemoryProbe()
        started = time.perf_counter()

        def on_result(result: BatchResult) -> None:
            _count(summary, result)
            seconds = {**result.stage_seconds, IO_READ: result.read_seconds, IO_WRITE: result.write_seconds}
            work = {**result.work, IO_READ: result.megapixels, IO_WRITE: float(result.items)}
            reporter.advance(result.items, result.failed_items, seconds=seconds, work=work)

        try:
            size = work_batch(spec.batch_size, summary.items, workers, spec.device)
            executor.run(_batches(catalog, scan, plan, done, size, summary, reporter), on_result)
        finally:
            summary.seconds = time.perf_counter() - started
            reporter.stop()
            recover_journals(paths)  # workers' journals not yet compacted (a pool shut down, a worker killed)
            compact_ledger(paths)  # still holding the run lock: no writer, no other compaction
        if any(split_output(out)[1] for out in plan.outputs):
            summary.variants_manifest = write_variants_manifest(out_dir)
        _record_costs(plan, sizes, summary, spec, memory, reporter)
    return summary


def _expected_cost(
    plan: Plan, catalog: Catalog, summary: RunSummary, spec: RunSpec
) -> tuple[CatalogSizes | None, float | None]:
    """The catalog's megapixels (at most :data:`imgx.costs.SAMPLE` image headers) and the run's wall time as
    ``imgx plan`` would estimate it from earlier runs here (:mod:`imgx.costs`): the ETA until the rate is measured.
    Nothing known or readable: ``None``; never fails the run."""
    try:
        sizes = catalog_sizes(iter(catalog), summary.items)
        found = estimate(plan, sizes, workers=summary.workers, device=spec.device, threads=spec.threads)
    except Exception as exc:  # an estimate is a convenience: whatever breaks it, the run goes on without one
        logger.debug("no cost estimate for the ETA: %s", exc)
        return None, None
    return sizes, found.wall_seconds


def _expected_work(plan: Plan, sizes: CatalogSizes | None) -> dict[str, float] | None:
    """Each node's expected work over the catalog (:func:`imgx.costs.expected_work`), the megapixels to read and
    decode (:data:`imgx.progress.IO_READ`) and the items to encode and write (:data:`imgx.progress.IO_WRITE`), which
    the ETA weighs items by; ``None`` when no header was read: the ETA then counts items."""
    work = expected_work(plan, sizes) if sizes is not None else None
    if work is None or sizes is None or sizes.megapixels is None:
        return None
    return {**work, IO_READ: sizes.megapixels, IO_WRITE: float(sizes.items)}


def _record_costs(
    plan: Plan,
    sizes: CatalogSizes | None,
    summary: RunSummary,
    spec: RunSpec,
    memory: MemoryProbe,
    reporter: Reporter,
) -> None:
    """Teach ``imgx plan`` what this run cost on this machine (:mod:`imgx.costs`); a cache that cannot be written
    costs a warning, never the run."""
    if sizes is None:
        return
    try:
        in_process = summary.executor == "local" and summary.workers <= 1
        peak = memory.peak(in_process=in_process) if summary.executor == "local" else (None, "not measured (ray)")
        record_run(plan, summary, sizes, device=spec.device, threads=spec.threads, peak=peak)
    except (OSError, ImgxError) as exc:
        reporter.warn(f"run costs not recorded for imgx plan: {exc}")


_MISSING_LISTED = 5


def _warn_missing(catalog: Catalog, reporter: Reporter) -> None:
    """Warn about the SKUs ``--only`` lists that the catalog does not have (how many, and the first few)."""
    missing = catalog.only_missing()
    if len(missing) and catalog.only is not None:
        first = ", ".join(repr(sku) for sku in missing.slice(0, _MISSING_LISTED).to_pylist())
        more = f" and {len(missing) - _MISSING_LISTED:,} more" if len(missing) > _MISSING_LISTED else ""
        reporter.warn(
            f"{len(missing):,} of the {len(catalog.only):,} SKUs --only lists are not in the catalog: {first}{more}"
        )


BATCHES_PER_WORKER = 4  # on the CPU, a small catalog is cut so each worker gets at least this many batches


def work_batch(batch_size: int, items: int, workers: int, device: str) -> int:
    """Items per batch handed to a worker: ``batch_size``, or on the CPU with several workers less, so that each
    worker gets at least :data:`BATCHES_PER_WORKER` batches.

    Batches are the unit the workers share: 40 images in batches of 8 on 2 workers are 5 batches, and one worker
    runs the fifth while the other idles (the run takes 24 images' time instead of 20). On the CPU a model stage runs
    large images one per backend call anyway (:meth:`imgx.runtime.ModelStage.call_batch`), so a smaller work batch
    costs nothing there; on a GPU the batch is the inference batch and is kept.
    """
    if workers <= 1 or device != "cpu" or items <= 0:
        return batch_size
    return max(1, min(batch_size, -(-items // (workers * BATCHES_PER_WORKER))))


def _done(out_dir: Location, plan: Plan, resume: bool) -> DoneSet:
    """What ``--resume`` skips (nothing without it); bit ``i`` of a mask is ``plan.outputs[i]``."""
    if not resume:
        return DoneSet.empty(plan.outputs)
    return DoneSet.from_ledger(out_dir, {out: plan.output_hashes[out] for out in plan.outputs})


def _batches(
    catalog: Catalog,
    scan: CatalogScan,
    plan: Plan,
    done: DoneSet,
    batch_size: int,
    summary: RunSummary,
    reporter: Reporter,
) -> Iterator[list[WorkUnit]]:
    """Work units of ``batch_size`` items, streamed from the catalog's Arrow batches: only one catalog batch of
    Python objects exists at a time, and items whose every output is done are dropped in Arrow before any exists."""
    batch: list[WorkUnit] = []
    remaining = _Remaining(plan.outputs)
    for block in catalog.batches(scan.duplicates):
        units, items_skipped, outputs_skipped = _split(block, done, remaining)
        summary.items_skipped += items_skipped
        summary.outputs_skipped += outputs_skipped
        if items_skipped:
            reporter.skip(items_skipped)  # items done by an earlier run move the bar, not the rate
        for unit in units:
            batch.append(unit)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


_MAX_LISTED_FAILURES = 20


def _count(summary: RunSummary, result: BatchResult) -> None:
    summary.items_done += result.items - result.failed_items
    summary.items_failed += result.failed_items
    for node_id, seconds in result.stage_seconds.items():
        summary.stage_seconds[node_id] = summary.stage_seconds.get(node_id, 0.0) + seconds
    for row in result.rows:
        if row.status == "ok":
            summary.outputs_ok += 1
            if row.flags:
                summary.outputs_flagged += 1
                for flag in row.flags:
                    summary.flag_counts[flag] = summary.flag_counts.get(flag, 0) + 1
        elif row.status == "failed":
            summary.outputs_failed += 1
            if len(summary.failures) < _MAX_LISTED_FAILURES:
                summary.failures.append(row)


class _Remaining:
    """The outputs still to make for a done-mask, one tuple per distinct mask (a handful), in the plan's order."""

    def __init__(self, outputs: tuple[str, ...]) -> None:
        self.outputs = outputs
        self.full = (1 << len(outputs)) - 1
        self._cache: dict[int, tuple[str, ...]] = {}

    def __call__(self, mask: int) -> tuple[str, ...]:
        found = self._cache.get(mask)
        if found is None:
            found = self._cache[mask] = tuple(o for i, o in enumerate(self.outputs) if not mask >> i & 1)
        return found


def _masks(block: pa.RecordBatch, done: DoneSet) -> np.ndarray:
    """Per catalog row, the done-mask of its outputs; 0 for a row the catalog fails (a duplicate is never skipped)."""
    mask = done.mask(block.column("sku"))
    failed = pc.is_valid(block.column("error")).to_numpy(zero_copy_only=False)
    mask[failed] = 0
    return mask


def _split(block: pa.RecordBatch, done: DoneSet, remaining: _Remaining) -> tuple[list[WorkUnit], int, int]:
    """``(work units still to do, items skipped, outputs skipped)`` for one catalog batch.

    Fully done rows are dropped with an Arrow filter; only the rows left become :class:`ItemRef`.
    """
    mask = _masks(block, done)
    skipped = mask == remaining.full
    outputs_skipped = int(sum(int(((mask >> i) & 1).sum()) for i in range(len(remaining.outputs))))
    todo = ~skipped
    rows = block.filter(pa.array(todo)) if skipped.any() else block
    units = [WorkUnit(ref, remaining(m)) for ref, m in zip(refs_of(rows), mask[todo].tolist(), strict=True)]
    return units, int(skipped.sum()), outputs_skipped


def _dry_run(
    plan: Plan, catalog: Catalog, out_dir: Location, options: RunOptions, summary: RunSummary, reporter: Reporter
) -> RunSummary:
    done = _done(out_dir, plan, options.resume)
    scan = catalog.scan()
    _warn_missing(catalog, reporter)
    summary.items = scan.items
    full = (1 << len(plan.outputs)) - 1
    if done.size:
        for block in catalog.batches(scan.duplicates):
            mask = _masks(block, done)
            summary.items_skipped += int((mask == full).sum())
            summary.outputs_skipped += int(sum(int(((mask >> i) & 1).sum()) for i in range(len(plan.outputs))))
    summary.max_failures = plan.settings.max_failures
    summary.failure_budget = _budget(summary.max_failures, summary.items)
    return summary
