"""``imgx build``: build what a recipe's model stages would build on their first run here (see
:mod:`imgx.runtime.prebuild`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..io import fs
from ..io.catalog import open_catalog
from ..runner import RunOptions, prepare, resolve_device, resolve_workers, worker_threads
from ._common import Overrides, Plugin, PluginsDir, err_console, guarded, out_console, plugin_config, print_warning

RecipeArg = Annotated[Path, typer.Argument(help="The recipe YAML file.", dir_okay=False)]


def build_command(
    recipe: RecipeArg,
    set_: Overrides = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="The backend to build for where the recipe says execution.backend: auto (a named one is kept).",
        ),
    ] = "compile",
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Build ahead what RECIPE's model stages build on their first run here (compile's packages, ONNX exports) for
    the catalog's image sizes, so that runs start with nothing to build; with compile's packages cached,
    execution.backend: auto runs compile at BF16/FP16 on the CPU. Reads image headers only; minutes per model."""
    from ..runtime.prebuild import build_ahead

    options = RunOptions(overrides=tuple(set_ or ()), plugin_config=plugin_config(plugins_dir, plugin))
    loaded, registry, plan = guarded(lambda: prepare(recipe, options))
    if not plan.holds_model:
        out_console.print(f"{escape(str(recipe))}: no model stage, nothing to build")
        return
    skip = fs.absolute(loaded.recipe.output.dir, loaded.base_dir)
    catalog = guarded(lambda: open_catalog(loaded, registry, skip_dirs=(skip,)))
    threads = worker_threads(resolve_workers(plan.settings.workers))
    built = guarded(
        lambda: build_ahead(
            plan,
            registry,
            catalog,
            device=resolve_device(plan),
            backend=backend,
            threads=threads,
            log=lambda line: err_console.print(escape(line)),
        )
    )
    table = Table(title="built", header_style="bold")
    for column in ("node", "model", "backend", "inputs (H x W: seconds)", "auto picks it"):
        table.add_column(column)
    for b in built:
        inputs = ", ".join(f"{s[2]}x{s[3]}: {t:.1f}" for s, t in zip(b.shapes, b.seconds, strict=True)) or b.skipped
        picks = "yes" if b.ready else "no" if plan.settings.backend == "auto" else "(named in the recipe)"
        table.add_row(*map(escape, (b.node, b.model, f"{b.backend} {b.precision} on {b.device}", inputs, picks)))
    out_console.print(table)
    for note in plan.notes:
        print_warning(note)
