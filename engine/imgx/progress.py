"""Progress and the end-of-run summary, with rich.

The progress bar counts images (not batches) with images/s, ETA and failures. The summary is a table (ok, failed,
skipped, images/s, per-stage time) followed, on failures, by the first failed items, the ledger's path and how to
re-run only what failed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from .summary import RunSummary

__all__ = ["Reporter"]


class _RateColumn(ProgressColumn):
    """Images per second since the start (steadier than rich's windowed speed for bursty batches)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.1f} img/s", style="progress.data.speed")


class _FailedColumn(ProgressColumn):
    """Failures so far: red once there is one, quiet while there are none."""

    def render(self, task: Task) -> Text:
        failed = task.fields.get("failed", 0)
        return Text(f"{failed:,} failed", style="bold red" if failed else "dim")


class Reporter:
    """Shows progress while a run goes and prints its summary.

    :param console: where to print (stderr by default, so stdout stays clean for piping).
    :param enabled: show the live progress bar.
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task = None
        self._failed = 0

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)

    def start(self, total: int, description: str) -> None:
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images"),
            _RateColumn(),
            TimeRemainingColumn(),
            _FailedColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(escape(description), total=total, failed=0)

    def advance(self, images: int, failed: int) -> None:
        if self._progress is None:
            return
        self._failed += failed
        self._progress.update(self._task, advance=images, failed=self._failed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(self, summary: RunSummary, *, rerun: str) -> None:
        """Print the summary table; on failures, the first failures, the ledger and the command to re-run them."""
        if summary.dry_run:
            todo = summary.items - summary.items_skipped
            self.console.print(
                f"dry run: {summary.items:,} item(s) in the catalog; {todo:,} would be processed and "
                f"{summary.items_skipped:,} skipped as done ({summary.outputs_skipped:,} output(s)); output folder "
                f"{escape(str(summary.out_dir))}; nothing was read or written",
                soft_wrap=True,
            )
            return
        table = Table(title=f"imgx run {summary.run_id}", show_header=True, header_style="bold")
        table.add_column("")
        table.add_column("items", justify="right")
        table.add_column("outputs", justify="right")
        table.add_row("[green]ok[/]", f"{summary.items_done:,}", f"{summary.outputs_ok:,}")
        table.add_row("[red]failed[/]", f"{summary.items_failed:,}", f"{summary.outputs_failed:,}")
        table.add_row("[dim]skipped (done before)[/]", f"{summary.items_skipped:,}", f"{summary.outputs_skipped:,}")
        table.add_row("total", f"{summary.items:,}", "")
        self.console.print(table)
        self.console.print(
            f"{summary.images_per_second:,.2f} images/s over {summary.seconds:,.1f} s "
            f"({summary.executor} executor, {summary.workers} worker{'s' if summary.workers != 1 else ''})"
        )
        if summary.outputs_flagged:
            flags = ", ".join(f"{flag} {count:,}" for flag, count in sorted(summary.flag_counts.items()))
            self.console.print(
                f"[yellow]{summary.outputs_flagged:,} output(s) written but flagged[/] ({escape(flags)}): the ledger's "
                "flags and metrics columns say why; `imgx report` counts them",
                soft_wrap=True,
            )
        if summary.stage_seconds:
            title = "time per stage (summed over workers)"
            stages = Table(title=title, header_style="bold", min_width=len(title))
            stages.add_column("node")
            stages.add_column("seconds", justify="right")
            stages.add_column("ms / item", justify="right")
            processed = max(summary.items_done + summary.items_failed, 1)
            for node_id, seconds in sorted(summary.stage_seconds.items(), key=lambda kv: -kv[1]):
                stages.add_row(escape(node_id), f"{seconds:,.2f}", f"{1000 * seconds / processed:,.1f}")
            self.console.print(stages)
        if summary.items_failed:
            failures = Table(title=f"first failures (of {summary.outputs_failed:,})", header_style="bold")
            for column in ("sku", "output", "stage", "error"):
                failures.add_column(column, overflow="fold")
            for row in summary.failures:
                failures.add_row(*map(escape, (row.sku, row.output, row.stage, row.error)))
            self.console.print(failures)
            verdict = "within" if summary.within_budget else "[bold red]over[/]"
            self.console.print(
                f"{summary.items_failed:,} failed item(s): {verdict} the failure budget "
                f"({_budget_text(summary)}, execution.max_failures)"
            )
            self.console.print(f"ledger: {escape(str(summary.ledger_dir))}", soft_wrap=True)
            self.console.print(f"re-run only what is not done: {escape(rerun)}", highlight=False, soft_wrap=True)

    @staticmethod
    def rerun_command(recipe: str, overrides: Sequence[str], options: Sequence[str] = ()) -> str:
        """The shell command that resumes this run: the same recipe, overrides and ``options`` (the other flags that
        shape the run, e.g. ``--plugins-dir DIR``, without which a resumed run may not even find its stages)."""
        parts = ["imgx", "run", recipe, "--resume"]
        for assignment in overrides:
            parts += ["--set", assignment]
        return shlex.join([*parts, *options])


def _budget_text(summary: RunSummary) -> str:
    """``5% of 120 items = 6`` for a fraction, ``3 items`` for a count."""
    limit = summary.max_failures
    if isinstance(limit, float):
        return f"{limit * 100:g}% of {summary.items:,} items = {summary.failure_budget:.4g}"
    return f"{limit:,} item(s)"
