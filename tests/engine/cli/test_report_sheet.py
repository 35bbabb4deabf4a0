"""``imgx report`` and ``imgx sheet`` on a real run's output folder, and the dry-run and budget wording of ``run``."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from _support import basic_recipe, write_recipe


def failing_run(imgx, photo_catalog: Path, tmp_path: Path, plugin_dir: Path, budget: str = "5") -> Path:
    recipe = basic_recipe(photo_catalog, tmp_path / "out")
    recipe["stages"].append(
        {"id": "inverted", "uses": "test.fail_on", "needs": ["enhanced"], "with": {"sku_contains": "food/c"}}
    )
    recipe["outputs"] = ["square", "inverted"]
    path = write_recipe(tmp_path, recipe)
    result = imgx("run", path, "--plugins-dir", plugin_dir, "--no-progress", "--max-failures", budget)
    assert result.exit_code in (0, 1), result.output
    return tmp_path / "out"


def test_report_summarises_and_lists_failures_and_exports_csv(imgx, photo_catalog, tmp_path, plugin_dir) -> None:
    out = failing_run(imgx, photo_catalog, tmp_path, plugin_dir)
    failed = ["food/coffee", "food/china", "food/chelsea"]
    result = imgx("report", out, "--failed", "--csv", tmp_path / "state.csv")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "8 items, 16 outputs over 1 run(s): 13 ok, 3 failed" in text
    assert "failures by cause" in text and "test.fail_on: ValueError" in text and "3 failed" in text
    assert all(sku in text for sku in failed)
    with (tmp_path / "state.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 16 and {r["sku"] for r in rows if r["status"] == "failed"} == set(failed)


def test_sheet_writes_an_image(imgx, photo_catalog, tmp_path, plugin_dir) -> None:
    out = failing_run(imgx, photo_catalog, tmp_path, plugin_dir)
    result = imgx("sheet", out, "-o", tmp_path / "sheet.jpg", "--limit", "4", "--cell", "64")
    assert result.exit_code == 0 and "contact sheet of 4 SKU(s)" in result.stdout
    with Image.open(tmp_path / "sheet.jpg") as sheet:
        assert sheet.format == "JPEG" and sheet.size == (3 * 64, 18 + 4 * (64 + 18))


def test_report_on_a_folder_without_a_ledger_exits_1(imgx, tmp_path) -> None:
    result = imgx("report", tmp_path)
    assert result.exit_code == 1 and "no ledger" in result.stderr


def test_the_budget_reads_as_a_percentage_of_items(imgx, photo_catalog, tmp_path, plugin_dir) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out")
    recipe["stages"][1] = {
        "id": "square",
        "uses": "test.fail_on",
        "needs": ["enhanced"],
        "with": {"sku_contains": "coffee"},
    }
    path = write_recipe(tmp_path, recipe)
    result = imgx("run", path, "--plugins-dir", plugin_dir, "--no-progress", "--max-failures", "5%")
    assert result.exit_code == 1
    assert "1 failed item(s): over the failure budget (5% of 8 items = 0.4, execution.max_failures)" in result.stderr


def test_dry_run_says_what_would_happen_without_a_results_table(imgx, photo_catalog, tmp_path) -> None:
    path = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", path, "--dry-run")
    assert result.exit_code == 0
    assert "dry run: 8 item(s) in the catalog; 8 would be processed and 0 skipped" in result.stderr
    assert "nothing was read or written" in result.stderr and "│ ok" not in result.stderr
