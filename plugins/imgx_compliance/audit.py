"""``imgx audit PATH``: which images of a catalog a marketplace will reject, and why, before upload.

The audit is a run like any other, on the same executors (progress, one bad image is one failed row, Ray for a big
catalog): a recipe made here reads PATH (a folder or a manifest, local or on object storage), cuts the product out
with ``segment.product`` when a rule needs its mask, and ends in ``check.marketplace`` with ``action: flag``. Its
``output.write`` is false, so nothing is written next to the images: the ledger goes to a work folder (a temp folder
removed afterwards, or ``--work DIR``), and the report is streamed from it into JSON, CSV, the review page (HTML,
failed images first) and a summary table.

Exit codes: 0 when every image passes, 1 when any breaks an error-level rule or cannot be read, 2 on bad usage (an
unknown pack, a malformed pack file, a missing catalog).
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from imgx import RecipeError
from imgx.cli.toolkit import (
    EXIT_FAILED,
    EXIT_USAGE,
    Plugin,
    PluginsDir,
    RunOptions,
    err_console,
    guarded,
    out_console,
    plugin_config,
    run_with_progress,
    scan_ledger,
    write_review,
)

from .packs import Pack, resolve_pack

__all__ = ["MASK_RULES", "AuditReport", "audit_command", "audit_recipe", "item_report"]

MASK_RULES = frozenset({"background.white", "product.fill", "product.cropped", "product.count", "blur", "text"})
CHECK_NODE = "check"
MASK_NODE = "mask"
_NO_BUDGET = 10**15  # every image is audited: failures never stop the run


def audit_recipe(
    catalog: str,
    packs: list[str],
    work: Path,
    *,
    mask: Literal["auto", "segment", "alpha"] = "auto",
    limit: int | None = None,
    executor: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """The recipe the audit runs: ``catalog`` through ``segment.product`` and ``check.marketplace`` (``packs``: names
    or absolute YAML paths), writing no image.

    ``mask``: ``auto`` cuts the product out with ``segment.product`` when a pack has a rule that needs its mask,
    ``segment`` always; an image that carries its own alpha (a cut-out PNG) keeps it either way. ``alpha`` runs no
    model: the file's alpha, else the pixels that are not near-white, are the product."""
    resolved = [resolve_pack(entry) for entry in packs]
    segment = mask == "segment" or (mask == "auto" and any(MASK_RULES & set(p.rules) for p in resolved))
    stages: list[dict[str, Any]] = []
    if segment:
        stages.append({"id": MASK_NODE, "uses": "segment.product", "with": {"existing_alpha": "keep"}})
    check: dict[str, Any] = {"id": CHECK_NODE, "uses": "check.marketplace", "with": {"rules": packs, "action": "flag"}}
    if segment:
        check["needs"] = [MASK_NODE]
    stages.append(check)
    execution: dict[str, Any] = {"max_failures": _NO_BUDGET, "batch_size": 4}
    if executor:
        execution["executor"] = executor
    if workers:
        execution["workers"] = workers
    return {
        "version": 1,
        "name": "audit",
        "description": "imgx audit: " + ", ".join(p.name for p in resolved),
        "input": {"path": catalog, **({"limit": limit} if limit else {})},
        "output": {"dir": str(work / "ledger"), "write": False, "format": "png", "naming": "{sku_hash}.{ext}"},
        "execution": execution,
        "stages": stages,
        "outputs": [CHECK_NODE],
    }


def item_report(row: dict[str, Any]) -> dict[str, Any]:
    """One ledger row of the audit as the JSON item: ``sku``, ``source``, ``passed``, ``violations`` and ``warnings``
    (each ``{"rule", "value", "bound", "message"}``) and, for an image that could not be audited, ``error``."""
    item: dict[str, Any] = {"sku": row["sku"], "source": row["source"], "passed": row["status"] == "ok"}
    item["violations"], item["warnings"] = [], []
    if row["status"] != "ok":
        item["error"] = f"{row['stage']}: {row['error']}"
        return item
    metrics = json.loads(row["metrics"]) if row["metrics"] else {}
    prefix = CHECK_NODE + ":"
    for flag in filter(None, (row["flags"] or "").split(",")):
        if not flag.startswith(prefix):
            continue
        rule = flag[len(prefix) :]
        kind = "violations"
        if rule.startswith("warning:"):
            rule, kind = rule[len("warning:") :], "warnings"
        key = f"{CHECK_NODE}.{rule}"
        item[kind].append(
            {
                "rule": rule,
                "value": metrics.get(key),
                "bound": metrics.get(f"{key}.bound"),
                "message": metrics.get(f"{key}.message"),
            }
        )
    item["passed"] = not item["violations"]
    return item


class AuditReport:
    """Writes the items as they stream from the ledger: JSON (``{"rules", "items", "summary"}``) and CSV (one row per
    image), and counts what the summary table shows. Holds counters per rule, never a row per image."""

    CSV_COLUMNS = ("sku", "source", "passed", "violations", "warnings", "error", "details")

    def __init__(self, packs: list[Pack], json_file: IO[str] | None, csv_file: IO[str] | None) -> None:
        self.packs = packs
        self.json_file, self.csv_writer = json_file, csv.writer(csv_file) if csv_file else None
        self.images = self.passed = self.unreadable = 0
        self.violations: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        if self.csv_writer:
            self.csv_writer.writerow(self.CSV_COLUMNS)
        if json_file:
            rules = [
                {"pack": p.name, "rule": rule, "level": settings.level, "settings": settings.model_dump(mode="json")}
                for p in packs
                for rule, settings in p.rules.items()
            ]
            json_file.write('{"rules": ' + json.dumps(rules) + ', "items": [')

    def add(self, item: dict[str, Any]) -> None:
        if self.json_file:
            self.json_file.write(("\n  " if self.images == 0 else ",\n  ") + json.dumps(item, default=str))
        self.images += 1
        self.passed += item["passed"]
        self.unreadable += "error" in item
        self.violations.update(v["rule"] for v in item["violations"])
        self.warnings.update(w["rule"] for w in item["warnings"])
        if self.csv_writer:
            found = item["violations"] + item["warnings"]
            self.csv_writer.writerow(
                (
                    item["sku"],
                    item["source"],
                    str(item["passed"]).lower(),
                    ";".join(v["rule"] for v in item["violations"]),
                    ";".join(w["rule"] for w in item["warnings"]),
                    item.get("error", ""),
                    " | ".join(str(v["message"]) for v in found),
                )
            )

    def summary(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "passed": self.passed,
            "failed": self.images - self.passed,
            "unreadable": self.unreadable,
            "violations": dict(sorted(self.violations.items())),
            "warnings": dict(sorted(self.warnings.items())),
        }

    def close(self) -> None:
        if self.json_file:
            self.json_file.write('\n], "summary": ' + json.dumps(self.summary()) + "}\n")

    def table(self) -> Table:
        table = Table(title=f"imgx audit: {', '.join(p.name for p in self.packs)}", header_style="bold")
        table.add_column("rule")
        table.add_column("images", justify="right")
        for rule, count in sorted(self.violations.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(f"[red]{escape(rule)}[/]", f"{count:,}")
        for rule, count in sorted(self.warnings.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(f"[yellow]warning {escape(rule)}[/]", f"{count:,}")
        if self.unreadable:
            table.add_row("[red]could not be read or checked[/]", f"{self.unreadable:,}")
        table.add_row("[green]passed[/]", f"{self.passed:,}")
        table.add_row("total", f"{self.images:,}")
        return table


def _rows(ledger: Path, run_id: str) -> Iterator[dict[str, Any]]:
    columns = ["sku", "source", "status", "stage", "error", "flags", "metrics", "run_id"]
    for batch in scan_ledger(str(ledger), columns=columns):
        for row in batch.to_pylist():
            if row["run_id"] == run_id:
                yield row


def _catalog_argument(path: str) -> str:
    if "://" in path:
        return path
    local = Path(path)
    if not local.exists():
        raise RecipeError(f"got catalog {path!r}; expected an existing folder or manifest (CSV, JSONL, Parquet)")
    return str(local.resolve())


def _pack_argument(entry: str) -> str:
    return str(Path(entry).resolve()) if entry.endswith((".yaml", ".yml")) else entry


def audit_command(
    path: Annotated[str, typer.Argument(help="The catalog: a folder or a manifest, local or a URI (s3://...).")],
    rules: Annotated[
        list[str] | None,
        typer.Option("--rules", "-r", help="Rule pack: amazon-main, google-merchant, zalando, shopify or a YAML file."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one CSV row per image here.")] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the review page here (failed images first; see imgx review).")
    ] = None,
    mask: Annotated[
        str,
        typer.Option(help="Product mask: auto (segment.product when a rule needs it), segment, alpha (no model)."),
    ] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Audit only the first N images.")] = None,
    executor: Annotated[str | None, typer.Option(help="Executor: local | ray.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join with --executor ray.")] = None,
    work: Annotated[
        Path | None, typer.Option(help="Keep the audit's ledger in this folder (default: a temp folder, removed).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the live progress bar.")] = True,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Audit every image of PATH against marketplace rule packs: which will be rejected, and why. Writes nothing
    next to the images. Exit 0 when all pass, 1 when any fails, 2 on bad usage."""
    if mask not in ("auto", "segment", "alpha"):
        err_console.print(f"[bold red]error:[/] got --mask {escape(mask)!r}; expected auto, segment or alpha")
        raise typer.Exit(EXIT_USAGE)
    entries = [_pack_argument(entry) for entry in rules or ["amazon-main"]]
    catalog = guarded(lambda: _catalog_argument(path))
    packs = [guarded(lambda e=entry: resolve_pack(e)) for entry in entries]
    with contextlib.ExitStack() as stack:
        if work is None:
            folder = Path(tempfile.mkdtemp(prefix="imgx-audit-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
        else:
            folder = work.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        body = audit_recipe(catalog, entries, folder, mask=mask, limit=limit, executor=executor, workers=workers)  # type: ignore[arg-type]
        recipe = folder / "audit.yaml"
        recipe.write_text(yaml.safe_dump(body, sort_keys=False))
        options = RunOptions(address=address, plugin_config=plugin_config(plugins_dir, plugin))
        summary = run_with_progress(recipe, options, progress=progress, rerun=f"imgx audit {path}", quiet=True)
        json_file = stack.enter_context(json_out.open("w", encoding="utf-8")) if json_out else None
        csv_file = stack.enter_context(csv_out.open("w", encoding="utf-8", newline="")) if csv_out else None
        report = AuditReport(packs, json_file, csv_file)
        for row in _rows(folder / "ledger", summary.run_id):
            report.add(item_report(row))
        report.close()
        if html_out:
            title = f"imgx audit of {path}: {', '.join(p.name for p in packs)}"
            guarded(lambda: write_review(str(folder / "ledger"), html_out, title=title))
    out_console.print(report.table())
    failed = report.images - report.passed
    written = ", ".join(str(p) for p in (json_out, csv_out, html_out) if p)
    out_console.print(
        f"{report.passed:,} of {report.images:,} image(s) pass; {failed:,} would be rejected"
        + (f"; report: {escape(written)}" if written else ""),
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_FAILED if failed else 0)
