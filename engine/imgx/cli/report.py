"""``imgx report`` and ``imgx sheet``: read what a run left in its output folder."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import pyarrow.compute as pc
import typer
from rich.markup import escape
from rich.table import Table

from ..io import fs
from ..ledger import Location, StatePaths
from ..ledger_report import (
    CONFIDENCE,
    LOWEST,
    contact_sheet,
    current_state,
    metric_matches,
    metric_report,
    summarize,
)
from ._common import guarded, out_console

OutDir = Annotated[
    str, typer.Argument(help="A run's output.dir, a folder or an object-store URI (it holds _imgx/ledger/).")
]


def _located(out_dir: str) -> Location:
    """The output folder as the ledger reads it: a local ``Path`` or an object-store URI."""
    return StatePaths(out_dir).out_dir


def report_command(
    out_dir: OutDir,
    failed: Annotated[bool, typer.Option("--failed", help="List every failed (sku, output) with its reason.")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write the current state (one row per sku x output) as CSV.")
    ] = None,
    metrics: Annotated[
        bool,
        typer.Option(
            help="Show the distribution of each numeric metric per output (and variant), and the least confident "
            "items of every 'confidence' metric."
        ),
    ] = True,
    lowest: Annotated[
        list[str] | None,
        typer.Option(
            "--lowest",
            metavar="METRIC",
            help="Also list the items lowest in METRIC (a ledger key, masked.confidence, or its name after the node, "
            "confidence); repeatable.",
        ),
    ] = None,
    lowest_count: Annotated[
        int, typer.Option("--lowest-count", min=1, help="How many items each lowest list shows.")
    ] = LOWEST,
) -> None:
    """Summarise OUT_DIR's ledger: the current state of every (sku, output) across runs, failures by cause, metrics,
    and the least confident items (metrics named 'confidence', e.g. segment.product's masked.confidence)."""
    report = guarded(lambda: summarize(_located(out_dir), keep_state=failed or csv_path is not None))
    out_console.print(
        f"{report.items:,} items, {report.outputs:,} outputs over {report.runs} run(s): "
        f"[green]{report.ok:,} ok[/], [red]{report.failed:,} failed[/]"
        + (
            f", [yellow]{report.flagged:,} flagged[/] (ok but flagged by a stage: the flags column)"
            if report.flagged
            else ""
        )
    )
    if report.by_cause:
        causes = Table(title="failures by cause", header_style="bold")
        for column in ("stage", "reason", "outputs"):
            causes.add_column(column, overflow="fold")
        for stage, reason, count in report.by_cause:
            causes.add_row(escape(stage), escape(reason), f"{count:,}")
        out_console.print(causes)
    if report.slowest:
        slow = Table(title="slowest outputs", header_style="bold")
        for column in ("sku", "output", "ms"):
            slow.add_column(column)
        for sku, output, ms in report.slowest:
            slow.add_row(escape(sku), escape(output), f"{ms:,.0f}")
        out_console.print(slow)
    names = list(dict.fromkeys([*([CONFIDENCE] if metrics else []), *(lowest or [])]))
    wanted = metrics or bool(lowest)  # --no-metrics --lowest q.ssim: only that list
    measured = guarded(lambda: metric_report(_located(out_dir), lowest=names, top=lowest_count)) if wanted else None
    distributions = measured.distributions if measured is not None and metrics else []
    if distributions:
        table = Table(title="metrics of ok outputs (quantiles from up to 65,536 values each)", header_style="bold")
        for column in ("output", "metric", "n", "mean", "p5", "median", "p95", "min", "max"):
            table.add_column(column, justify="left" if column in ("output", "metric") else "right")
        for m in distributions:
            numbers = (m.mean, m.quantile(0.05), m.quantile(0.5), m.quantile(0.95), m.low, m.high)
            table.add_row(escape(m.output), escape(m.metric), f"{m.count:,}", *(f"{v:,.4g}" for v in numbers))
        out_console.print(table)
    for least in measured.lowest if measured is not None else []:
        sure = least.metric.rsplit(".", 1)[-1] == CONFIDENCE
        title = f"least confident: {least.metric}" if sure else f"lowest {least.metric}"
        listing = Table(title=f"{title} ({len(least.rows)} lowest of ok outputs)", header_style="bold")
        for column in ("sku", "output", least.metric, "path"):
            listing.add_column(column, justify="right" if column == least.metric else "left", overflow="fold")
        for sku, output, value, path in least.rows:
            listing.add_row(escape(sku), escape(output), f"{value:,.4g}", escape(path or ""))
        out_console.print(listing)
    missing = [name for name in lowest or [] if not any(metric_matches(m.metric, [name]) for m in measured.lowest)]
    if missing:
        out_console.print(f"[yellow]no numeric metric {escape(', '.join(missing))} in the ok outputs[/]")
    if failed or csv_path:
        state = report.state
        if failed:
            rows = state.filter(pc.equal(state["status"], "failed")).to_pylist()
            listing = Table(title=f"{len(rows):,} failed", header_style="bold")
            for column in ("sku", "output", "stage", "error", "source"):
                listing.add_column(column, overflow="fold")
            for row in rows:
                listing.add_row(*(escape(str(row[c])) for c in ("sku", "output", "stage", "error", "source")))
            out_console.print(listing)
        if csv_path:
            with csv_path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=state.column_names)
                writer.writeheader()
                writer.writerows(state.to_pylist())
            out_console.print(f"wrote {state.num_rows:,} rows to {escape(str(csv_path))}")


def sheet_command(
    out_dir: OutDir,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="The sheet to write (.jpg or .png; a path or URI); default OUT_DIR/contact-sheet.jpg.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many SKUs (failed ones first).")] = 24,
    cell: Annotated[int, typer.Option(min=48, max=1024, help="Thumbnail size in pixels.")] = 192,
) -> None:
    """Draw a before/after contact sheet of OUT_DIR: each SKU's source beside its outputs, failures first. It is
    written into OUT_DIR unless -o says where."""
    location = _located(out_dir)
    destination = output if output is not None else fs.join(str(location), "contact-sheet.jpg")
    state = guarded(lambda: current_state(location))
    skus = len(pc.unique(state["sku"]))
    shown = guarded(lambda: contact_sheet(location, destination, limit=limit, cell=cell))
    more = f"; --limit {skus} for all" if shown < skus else ""
    out_console.print(
        f"contact sheet of {shown} SKU(s) of {skus:,} (failed ones first{more}): {escape(str(destination))}",
        soft_wrap=True,
    )
