"""``imgx validate`` and ``imgx plan``: check a recipe and show what a run would do, reading no image."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ImgxError
from ..io import fs
from ..io.catalog import open_catalog
from ..io.encode import FORMATS
from ..io.naming import output_path, split_output
from ..ledger import StatePaths
from ..progress import Reporter
from ..runner import RunOptions, prepare, resolve_device, resolve_overlap, resolve_workers, worker_threads
from ._common import Overrides, Plugin, PluginsDir, err_console, guarded, out_console, plugin_config, print_warning

RecipeArg = Annotated[Path, typer.Argument(help="The recipe YAML file.", dir_okay=False)]


def validate_command(
    recipe: RecipeArg, set_: Overrides = None, plugins_dir: PluginsDir = None, plugin: Plugin = None
) -> None:
    """Check RECIPE (keys, types, stages, parameters, DAG) without reading any image. Exit 2 if it is invalid."""
    options = RunOptions(overrides=tuple(set_ or ()), plugin_config=plugin_config(plugins_dir, plugin))
    loaded, _, plan = guarded(lambda: prepare(recipe, options, check_input=True))
    for note in plan.notes:
        print_warning(note)
    out_console.print(
        f"[green]ok[/] {escape(str(recipe))}: {len(plan.nodes)} stage(s), {len(plan.outputs)} output(s) "
        f"({', '.join(plan.outputs)}), recipe hash {loaded.hash[:12]}",
        soft_wrap=True,
    )


def plan_command(
    recipe: RecipeArg,
    set_: Overrides = None,
    count: Annotated[
        bool, typer.Option("--count", help="Count the catalog's items (lists files; reads no image).")
    ] = False,
    estimate: Annotated[
        bool | None,
        typer.Option(
            "--estimate/--no-estimate",
            help="Estimate the run's time and peak memory per worker from what this machine measured (counts the "
            "items, reads at most 200 image headers). On by default for recipes with a model stage.",
        ),
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Before estimating, run the stages on two catalog images to measure them here (loads the models: "
            "seconds to minutes).",
        ),
    ] = False,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Show RECIPE's DAG: each node, where it runs, and what will be written; with --estimate (the default for
    model recipes), what the run will cost here. Reads no pixel unless --calibrate."""
    options = RunOptions(overrides=tuple(set_ or ()), plugin_config=plugin_config(plugins_dir, plugin))
    loaded, registry, plan = guarded(lambda: prepare(recipe, options))
    spec = loaded.recipe
    settings = plan.settings
    workers = resolve_workers(settings.workers)
    device = resolve_device(plan)
    out_dir = loaded.resolve(spec.output.dir).resolve()
    placement = "in-process" if workers == 1 else f"process pool, {workers} workers"

    out_console.print(f"[bold]{escape(spec.name)}[/]  ({escape(str(recipe))}, hash {loaded.hash[:12]})", soft_wrap=True)
    skip = fs.absolute(spec.output.dir, loaded.base_dir)  # a local path or URI, as the catalog compares them
    catalog = guarded(lambda: open_catalog(loaded, registry, skip_dirs=(skip,)))
    first = list(itertools.islice(catalog, 3))
    line = f"input: {catalog.kind} {catalog.root}"
    if catalog.kind == "folder":
        line += f"  pattern {', '.join(spec.input.patterns)}"
    out_console.print(escape(line), soft_wrap=True)
    if count:
        out_console.print(f"items: {catalog.count():,}")
        Reporter(err_console).left_out(catalog.left_out())
    if first:
        out_console.print("first items: " + escape(", ".join(ref.sku for ref in first)), soft_wrap=True)
    asked = f" ({settings.device})" if settings.device != device else ""
    overlapped = resolve_overlap(settings.overlap, device=device, threads=worker_threads(workers))
    overlap = "on (decode ahead, encode behind)" if overlapped else "off"
    overlap += " (auto)" if settings.overlap == "auto" else ""
    out_console.print(
        f"execution: {settings.executor} executor, {workers} worker(s), batch size {settings.batch_size}, "
        f"device {device}{asked}, max_failures {settings.max_failures:g}, overlap {overlap}"
    )
    varied = [split_output(node.id) for node in plan.nodes if split_output(node.id)[1]]
    if varied:
        rows = list(dict.fromkeys(row for _, row in varied))
        per_row = list(dict.fromkeys(node for node, _ in varied))
        out_console.print(
            f"variants: {len(rows)} row(s) ({escape(', '.join(rows))}) x node(s) {escape(', '.join(per_row))} = "
            f"{len(varied)} node(s); the other nodes run once per item",
            soft_wrap=True,
        )

    nodes = Table(title="stages (in run order)", header_style="bold")
    for column in ("node", "stage", "plugin", "needs", "runs on", "batch"):
        nodes.add_column(column)
    for node in plan.nodes:
        runs_on = f"{device} (a model stage)" if node.device == "gpu" else f"cpu, {placement}"
        nodes.add_row(
            *map(
                escape,
                (
                    node.id,
                    node.uses,
                    node.plugin,
                    ", ".join(node.needs) or "(catalog image)",
                    runs_on,
                    "batched" if node.stage.batchable else "per item",
                ),
            )
        )
    out_console.print(nodes)
    _print_model_nodes(plan, registry, catalog)

    outputs = Table(title=escape(f"outputs -> {out_dir}"), header_style="bold")
    for column in ("output", "format", "computes", "example path", "hash"):
        outputs.add_column(column)
    for out in plan.outputs:
        encoding = settings.encodings[out]
        ext = FORMATS[encoding.format]
        example = ""
        if first:
            try:
                example = str(
                    output_path(out_dir, settings.naming, sku=first[0].sku, output=out, ext=ext).relative_to(out_dir)
                )
            except ImgxError as exc:
                example = f"(first item fails: {exc})"
        outputs.add_row(
            *map(
                escape,
                (
                    out,
                    f"{encoding.format} q{encoding.quality}" if encoding.format != "png" else "png",
                    " -> ".join(plan.lineage[out]),
                    example,
                    plan.output_hashes[out],
                ),
            )
        )
    out_console.print(outputs)
    out_console.print(f"ledger: {escape(str(StatePaths(out_dir).ledger))}", soft_wrap=True)
    if calibrate or (plan.holds_model if estimate is None else estimate):
        _print_estimate(plan, registry, catalog, workers=workers, device=device, calibrate=calibrate)
    for failure in registry.failures:
        print_warning(f"plugin {failure.plugin}: {failure.error}")
    for note in plan.notes:
        print_warning(note)


def _print_model_nodes(plan, registry, catalog) -> None:
    """Model stages: the backend ``auto`` (or the recipe) picks here and the shape buckets of the catalog's images."""
    from ..runtime.factory import model_precision
    from ..runtime.shape_report import HEADER_LIMIT, plan_model_nodes

    if not plan.holds_model:
        return
    models = plan_model_nodes(plan, registry, catalog, device=resolve_device(plan))
    if not models:
        return
    table = Table(title="model stages", header_style="bold")
    for column in ("node", "model", "backend", "shapes (H x W: images)", "why this backend"):
        table.add_column(column)
    precisions = []  # execution.precision: auto: what it resolved to per node, and why (one line each)
    for m in models:
        buckets = ", ".join(f"{h}x{w}: {n}" for (h, w), n in m.buckets.items()) or "(no image sizes read)"
        if not m.bucketed:
            buckets = f"any size, padded to the stride ({len(m.buckets)} shapes): {buckets}"
        reason = m.reason
        if plan.settings.precision == "auto" and m.model in registry.models:
            spec = registry.get_model(m.model)
            why = model_precision(plan.settings.backend, spec, "auto", m.device, registry)[1]
            reason = reason.removeprefix(f"{why}; ")  # said on its own line below
            if m.precision == "bf16" and m.device == "cpu":
                why += (
                    "; the stage checks its module at BF16 on this CPU when it starts and keeps BF16 only if it is "
                    "correct and faster than FP32 there (once per machine)"
                )
            precisions.append(f"precision of {m.node}: {why}")
        table.add_row(*map(escape, (m.node, m.model, f"{m.backend} {m.precision} on {m.device}", buckets, reason)))
    out_console.print(table)
    for line in precisions:
        out_console.print(escape(line), soft_wrap=True)
    first = models[0]
    note = f"shapes from the headers of {first.read} image(s)"
    if first.read + first.unread >= HEADER_LIMIT:
        note += f" (the first {HEADER_LIMIT} catalog items)"
    if first.unread:
        note += f"; {first.unread} item(s) not local or unreadable"
    out_console.print(escape(note), soft_wrap=True)


def _print_estimate(plan, registry, catalog, *, workers: int, device: str, calibrate: bool) -> None:
    """The run's cost on this machine (:mod:`imgx.costs`): items, megapixels, seconds per node, wall time for the
    workers and peak memory per worker, each with where it comes from; what was never measured says unknown."""
    from ..costs import CostBook, catalog_sizes, estimate
    from ..costs import calibrate as measure
    from ..progress import format_duration

    items = guarded(catalog.count)
    sizes = guarded(lambda: catalog_sizes(iter(catalog), items))
    threads = worker_threads(workers)
    book = CostBook()
    if book.problem:
        print_warning(book.problem)
    if calibrate:
        err_console.print(f"calibrating: running the stages on {min(2, len(sizes.sizes))} catalog image(s)...")
        if (
            guarded(lambda: measure(plan, registry, sizes, device=device, threads=threads, workers=workers, book=book))
            is None
        ):
            print_warning("calibration skipped: no catalog image's size could be read (local images only)")
    found = estimate(plan, sizes, workers=workers, device=device, threads=threads, book=book)
    if sizes.megapixels is None:
        pixels = (
            f"megapixels unknown (none of the {sizes.sampled:,} image headers tried could be read; local images only)"
        )
    elif sizes.exact:
        pixels = f"{sizes.megapixels:,.1f} megapixels (from the headers of every item)"
    else:
        pixels = (
            f"{sizes.megapixels:,.1f} megapixels (the mean of {sizes.sampled - sizes.unread:,} image headers, "
            "spread over the catalog, times the items)"
        )
    out_console.print(f"estimate on this machine: {items:,} item(s), {pixels}", soft_wrap=True)
    table = Table(title="estimated time per node (summed over workers)", header_style="bold")
    for column in ("node", "stage", "seconds", "from"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for node in found.nodes:
        seconds = "unknown" if node.seconds is None else f"{node.seconds:,.1f}"
        table.add_row(*map(escape, (node.node, node.uses, seconds, node.source)))
    other = "unknown" if found.other_seconds is None else f"{found.other_seconds:,.1f}"
    table.add_row("(other)", "read, decode, encode, write, start-up", other, escape(found.other_source))
    out_console.print(table)
    if found.wall_seconds is not None:
        wall = f"{format_duration(found.wall_seconds)} ({found.wall_seconds:,.1f} s)"
    else:
        known = sum(n.seconds for n in found.nodes if n.seconds is not None)
        wall = "unknown" + (
            f" (at least {format_duration(known / max(1, workers))} for the nodes measured)" if known else ""
        )
    out_console.print(f"estimated wall time with {workers} worker(s): {wall}", soft_wrap=True)
    memory = (
        found.memory_source if found.peak_rss_mib is None else f"{found.peak_rss_mib:,.0f} MiB ({found.memory_source})"
    )
    out_console.print(escape(f"estimated peak memory per worker: {memory}"), soft_wrap=True)
    if found.wall_seconds is None and not calibrate:
        out_console.print("measure it: imgx plan --calibrate (runs the stages on two catalog images)", highlight=False)
