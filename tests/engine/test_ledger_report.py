"""Reading a run's results: the current state per (sku, output) across runs, causes, and the contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import basic_recipe, write_recipe
from imgx import ImgxError
from imgx.ledger_report import contact_sheet, current_state, summarize
from imgx.registry import PluginConfig
from imgx.runner import RunOptions, run_recipe


@pytest.fixture
def finished_run(photo_catalog: Path, tmp_path: Path, plugin_dir: Path) -> Path:
    """A run where one item fails on one branch, then a --resume that skips what was done."""
    recipe = basic_recipe(photo_catalog, tmp_path / "out", max_failures=5)
    recipe["stages"].append(
        {"id": "inverted", "uses": "test.fail_on", "needs": ["enhanced"], "with": {"sku_contains": "rocket"}}
    )
    recipe["outputs"] = ["square", "inverted"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    path = write_recipe(tmp_path, recipe)
    run_recipe(path, options)
    run_recipe(path, RunOptions(resume=True, plugin_config=options.plugin_config))
    return tmp_path / "out"


def test_current_state_has_one_row_per_pair_and_ignores_skips(finished_run: Path) -> None:
    state = current_state(finished_run).to_pylist()
    assert len(state) == 16
    assert {(r["sku"], r["output"]) for r in state if r["status"] == "failed"} == {("misc/rocket", "inverted")}
    assert all(r["status"] in ("ok", "failed") for r in state)


def test_summary_counts_and_groups_causes(finished_run: Path) -> None:
    report = summarize(finished_run)
    assert (report.items, report.outputs, report.ok, report.failed, report.runs) == (8, 16, 15, 1, 2)
    assert report.by_cause == [("inverted", "test.fail_on: ValueError", 1)]
    assert len(report.slowest) == 10 and report.slowest[0][2] >= report.slowest[-1][2]


def test_contact_sheet_shows_sources_outputs_and_failures_first(finished_run: Path, tmp_path: Path) -> None:
    sheet_path = tmp_path / "sheet.png"
    shown = contact_sheet(finished_run, sheet_path, limit=3, cell=100)
    assert shown == 3
    with Image.open(sheet_path) as sheet:
        assert sheet.size == (3 * 100, 18 + 3 * (100 + 18))
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    # The failed SKU comes first: its "inverted" cell is the red failure tile.
    failure_cell = pixels[18 + 18 + 10 : 18 + 18 + 90, 100 + 10 : 200 - 10]
    assert failure_cell[..., 0].mean() > 120 and failure_cell[..., 1].mean() < 80
    # Its square output is a real thumbnail (varied pixels), not a flat tile.
    square_cell = pixels[18 + 18 + 5 : 18 + 18 + 95, 200 + 5 : 300 - 5]
    assert square_cell.std() > 10


def test_no_ledger_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImgxError, match="no ledger"):
        summarize(tmp_path)
