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
from ..runner import RunOptions, prepare, resolve_device, resolve_workers
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
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Show RECIPE's DAG: each node, where it runs, and what will be written. Reads no image."""
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
    out_console.print(
        f"execution: {settings.executor} executor, {workers} worker(s), batch size {settings.batch_size}, "
        f"device {device}{asked}, max_failures {settings.max_failures:g}"
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
    for failure in registry.failures:
        print_warning(f"plugin {failure.plugin}: {failure.error}")
    for note in plan.notes:
        print_warning(note)


def _print_model_nodes(plan, registry, catalog) -> None:
    """Model stages: the backend ``auto`` (or the recipe) picks here and the shape buckets of the catalog's images."""
    from ..runtime.shape_report import HEADER_LIMIT, plan_model_nodes

    if not plan.holds_model:
        return
    models = plan_model_nodes(plan, registry, catalog, device=resolve_device(plan))
    if not models:
        return
    table = Table(title="model stages", header_style="bold")
    for column in ("node", "model", "backend", "shapes (H x W: images)", "why this backend"):
        table.add_column(column)
    for m in models:
        buckets = ", ".join(f"{h}x{w}: {n}" for (h, w), n in m.buckets.items()) or "(no image sizes read)"
        if not m.bucketed:
            buckets = f"any size, padded to the stride ({len(m.buckets)} shapes): {buckets}"
        table.add_row(*map(escape, (m.node, m.model, f"{m.backend} {m.precision} on {m.device}", buckets, m.reason)))
    out_console.print(table)
    first = models[0]
    note = f"shapes from the headers of {first.read} image(s)"
    if first.read + first.unread >= HEADER_LIMIT:
        note += f" (the first {HEADER_LIMIT} catalog items)"
    if first.unread:
        note += f"; {first.unread} item(s) not local or unreadable"
    out_console.print(escape(note), soft_wrap=True)
