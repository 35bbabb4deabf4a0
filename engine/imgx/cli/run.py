"""``imgx run``: run a recipe over its catalog."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ..progress import ConsoleLogHandler, Reporter
from ..runner import RunOptions, run_recipe
from ..summary import RunSummary
from ._common import EXIT_INTERRUPTED, Overrides, Plugin, PluginsDir, err_console, guarded, plugin_config, print_error


def run_command(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file.", dir_okay=False)],
    resume: Annotated[bool, typer.Option("--resume", help="Skip items the ledger records as done.")] = False,
    executor: Annotated[str | None, typer.Option(help="Executor: local | ray.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: the recipe's).")] = None,
    max_failures: Annotated[
        str | None, typer.Option(help="Failure budget: a fraction (0.05), a percentage (5%) or a count (10).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join with --executor ray (default: RAY_ADDRESS, else a local Ray)."),
    ] = None,
    set_: Overrides = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and count; read no image, write nothing.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
    only: Annotated[
        Path | None,
        typer.Option(
            "--only",
            help="Run only the SKUs this file lists: a CSV with a sku column (the review page's download) or one "
            "SKU per line.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Run RECIPE: every catalog image through the stage DAG, outputs and a results ledger written.

    Exit code 0 when failures are within execution.max_failures, 1 when over it (or the run failed), 2 for a bad
    recipe or bad usage.
    """
    options = RunOptions(
        overrides=tuple(set_ or ()),
        resume=resume,
        executor=executor,
        workers=workers,
        max_failures=max_failures,
        address=address,
        dry_run=dry_run,
        plugin_config=plugin_config(plugins_dir, plugin),
        only=only,
    )
    # a live bar on a terminal; elsewhere (CI, nohup, a cluster log) a plain line every IMGX_PROGRESS_EVERY seconds
    rerun_flags = _rerun_options(executor, workers, max_failures, plugins_dir, plugin, address, only)
    summary = run_with_progress(recipe, options, progress=progress, rerun_flags=rerun_flags)
    raise typer.Exit(summary.exit_code)


def run_with_progress(
    recipe: Path,
    options: RunOptions,
    *,
    progress: bool = True,
    rerun_flags: Sequence[str] = (),
    rerun: str | None = None,
    quiet: bool = False,
) -> RunSummary:
    """Run ``recipe`` as ``imgx run`` does: the live progress bar (or plain lines when stderr is no terminal), model
    downloads announced, a bad recipe or a failed run turned into one message and exit code 2 or 1 (``typer.Exit``),
    Ctrl-C into exit 130 with the command that finishes the run, and the summary table printed unless ``quiet``.

    :param rerun_flags: the command-line flags a resumed run must repeat (``--executor ray``), for that message.
    :param rerun: the command that finishes an interrupted run, when it is not ``imgx run RECIPE --resume ...``.
    """
    interval = _seconds(os.environ.get("IMGX_PROGRESS_EVERY"), 5.0)
    reporter = Reporter(err_console, enabled=progress, plain=not err_console.is_terminal, interval=interval)
    rerun = rerun or Reporter.rerun_command(str(recipe), options.overrides, list(rerun_flags))
    models_log = logging.getLogger("imgx.models")
    handler = ConsoleLogHandler(err_console)
    models_log.addHandler(handler)
    level, models_log.level = models_log.level, logging.INFO
    try:
        summary = guarded(lambda: run_recipe(recipe, options, reporter))
    except KeyboardInterrupt:
        reporter.stop()
        print_error("interrupted", Exception("every finished item is in the ledger; to finish: " + rerun))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        models_log.removeHandler(handler)
        models_log.setLevel(level)
    if quiet:
        reporter.stop()
    else:
        reporter.summary(summary, rerun=rerun)
    return summary


def _seconds(text: str | None, default: float) -> float:
    try:
        return max(0.05, float(text)) if text else default
    except ValueError:
        return default


def _rerun_options(
    executor: str | None,
    workers: int | None,
    max_failures: str | None,
    plugins_dir: list[Path] | None,
    plugin: list[str] | None,
    address: str | None = None,
    only: Path | None = None,
) -> list[str]:
    """The flags a resumed run needs to repeat: without ``--plugins-dir`` it would not find the same stages."""
    options: list[str] = []
    flags = (("--executor", executor), ("--workers", workers), ("--max-failures", max_failures), ("--address", address))
    for flag, value in flags:
        if value is not None:
            options += [flag, str(value)]
    for directory in plugins_dir or ():
        options += ["--plugins-dir", str(directory)]
    for module in plugin or ():
        options += ["--plugin", module]
    if only is not None:
        options += ["--only", str(only)]
    return options
