"""``imgx review``: a self-contained HTML page of a run's results, to look through and reject SKUs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ..review import NoLedgerError, ReviewSummary, write_review
from ._common import EXIT_USAGE, guarded, out_console, print_error

OutDir = Annotated[
    str, typer.Argument(help="A run's output.dir, a folder or an object-store URI (it holds _imgx/ledger/).")
]


def review_command(
    out_dir: OutDir,
    output: Annotated[
        str,
        typer.Option("-o", "--output", help="The page to write (.html; a path or URI)."),
    ] = "review.html",
    limit: Annotated[int, typer.Option(min=1, help="Most rows on the page (failed, then flagged ones first).")] = 1000,
) -> None:
    """Write a review page of OUT_DIR: one HTML file (no server, nothing downloaded) with each (sku, output)'s status,
    error, flags, metrics and before/after thumbnails, filters, and a "Download rejected CSV" button whose file
    `imgx run RECIPE --only rejected.csv` takes back."""

    def review() -> ReviewSummary:
        try:
            return write_review(out_dir, output, limit=limit)
        except NoLedgerError as exc:
            print_error("error", exc)
            raise typer.Exit(EXIT_USAGE) from None

    summary = guarded(review)
    left = f"; {summary.left_out:,} left out (--limit {summary.total} for all)" if summary.left_out else ""
    out_console.print(
        f"review page of {summary.rows:,} row(s) of {summary.total:,} ({summary.failed:,} failed, "
        f"{summary.flagged:,} flagged, {summary.ok:,} ok; failed and flagged first{left}): {escape(summary.html_path)}",
        soft_wrap=True,
    )
