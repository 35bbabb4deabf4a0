"""``imgx run``: exit codes, every option, and the summary a catalog team reads."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

from _support import basic_recipe, write_recipe


def skus_of(catalog: Path) -> list[str]:
    return sorted(p.relative_to(catalog).with_suffix("").as_posix() for p in catalog.rglob("*.jpg"))


def summary_row(text: str, label: str) -> tuple[int, int | None]:
    """``(items, outputs)`` of a row of the summary table (``ok``, ``failed``, ``skipped (done before)``, ``total``)."""
    match = re.search(rf"│ {re.escape(label)}\s*│\s*([\d,]+) │\s*([\d,]*) │", text)
    assert match, f"no {label!r} row in:\n{text}"
    items, outputs = match.groups()
    return int(items.replace(",", "")), int(outputs.replace(",", "")) if outputs else None


def failing_recipe(tmp_path: Path, catalog: Path, **execution: object) -> Path:
    """Inverts every image and fails the four SKUs in food/ (test.fail_on from the plugin_dir fixture)."""
    body = basic_recipe(catalog, tmp_path / "out", **execution)
    body["stages"] = [{"id": "inverted", "uses": "test.fail_on", "with": {"sku_contains": "food/"}}]
    body["outputs"] = ["inverted"]
    return write_recipe(tmp_path, body)


def test_run_writes_every_output_and_prints_the_summary(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe)
    assert result.exit_code == 0, result.output
    skus = skus_of(photo_catalog)
    for sku in skus:
        for output in ("enhanced", "square"):
            assert (tmp_path / "out" / sku / f"{output}.png").is_file()
    assert Image.open(tmp_path / "out" / skus[0] / "square.png").size == (96, 96)
    text = result.stderr
    assert summary_row(text, "ok") == (8, 16)
    assert summary_row(text, "failed") == (0, 0)
    assert summary_row(text, "skipped (done before)") == (0, 0)
    assert summary_row(text, "total") == (8, None)
    assert re.search(r"[\d.]+ images/s over [\d.]+ s \(local executor, 1 worker\)", text)
    assert "time per stage (summed over workers)" in text
    assert re.search(r"│ enhanced\s*│\s*[\d.]+ │\s*[\d.]+ │", text)
    assert re.search(r"│ square\s*│\s*[\d.]+ │\s*[\d.]+ │", text)
    assert "first failures" not in text and "re-run" not in text
    assert result.stdout == "", "stdout stays clean for piping; the summary goes to stderr"


def test_resume_skips_what_is_done_and_rewrites_nothing(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    assert imgx("run", recipe).exit_code == 0
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.png")}
    result = imgx("run", recipe, "--resume")
    assert result.exit_code == 0, result.output
    assert summary_row(result.stderr, "skipped (done before)") == (8, 16)
    assert summary_row(result.stderr, "ok") == (0, 0)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.png")} == written


def test_unknown_executor_exits_2_listing_the_known_ones(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--executor", "rya")
    assert result.exit_code == 2
    assert "got unknown executor 'rya'" in result.stderr
    assert "Known executors: local" in result.stderr
    assert not (tmp_path / "out").exists()


def test_workers_option_runs_a_process_pool(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "(local executor, 2 workers)" in result.stderr
    assert summary_row(result.stderr, "ok") == (8, 16)


def test_workers_below_one_is_bad_usage(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--workers", "0")
    assert result.exit_code == 2
    assert "--workers" in result.stderr
    assert not (tmp_path / "out").exists()


def test_over_the_failure_budget_exits_1_with_failures_ledger_and_rerun_command(
    imgx, photo_catalog, plugin_dir, tmp_path
):
    recipe = failing_recipe(tmp_path, photo_catalog)
    result = imgx("run", recipe, "--max-failures", "3", "--plugins-dir", plugin_dir)
    assert result.exit_code == 1, result.output
    text = result.stderr
    assert summary_row(text, "ok") == (4, 4)
    assert summary_row(text, "failed") == (4, 4)
    assert "first failures (of 4)" in text
    for sku in (s for s in skus_of(photo_catalog) if s.startswith("food/")):
        assert re.search(rf"│ {sku}\s*│ inverted\s*│ inverted\s*│ test.fail_on: ValueError: refusing {sku}", text)
    assert "4 failed item(s): over the failure budget (3 item(s), execution.max_failures)" in text
    ledger = tmp_path / "out" / "_imgx" / "ledger"
    assert f"ledger: {ledger}" in text
    assert ledger.is_dir() and any(ledger.iterdir())
    expected = f"imgx run {recipe} --resume --max-failures 3 --plugins-dir {plugin_dir}"
    assert f"re-run only what is not done: {expected}\n" in text

    # The printed command works as printed: it finds the plugin's stage, skips the done items, retries the failed.
    again = imgx(*shlex.split(expected)[1:])
    assert again.exit_code == 1, again.output
    assert summary_row(again.stderr, "skipped (done before)") == (4, 4)
    assert summary_row(again.stderr, "failed") == (4, 4)


@pytest.mark.parametrize("budget", ["4", "50%", "0.5"])
def test_within_the_failure_budget_exits_0(imgx, photo_catalog, plugin_dir, tmp_path, budget):
    recipe = failing_recipe(tmp_path, photo_catalog)
    result = imgx("run", recipe, "--max-failures", budget, "--plugins-dir", plugin_dir)
    assert result.exit_code == 0, result.output
    expected = "4 item(s)" if budget == "4" else "50% of 8 items = 4"
    assert f"4 failed item(s): within the failure budget ({expected}, execution.max_failures)" in result.stderr
    assert "re-run only what is not done: imgx run" in result.stderr


def test_the_recipe_failure_budget_applies_without_the_option(imgx, photo_catalog, plugin_dir, tmp_path):
    assert (
        imgx("run", failing_recipe(tmp_path, photo_catalog, max_failures=0), "--plugins-dir", plugin_dir).exit_code == 1
    )


def test_bad_failure_budget_exits_2(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--max-failures", "lots")
    assert result.exit_code == 2
    assert "execution.max_failures" in result.stderr and "'lots'" in result.stderr


def test_set_overrides_a_stage_parameter(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--set", "stages.square.with.size=40", "--set", "input.limit=2")
    assert result.exit_code == 0, result.output
    assert summary_row(result.stderr, "total") == (2, None)
    squares = list((tmp_path / "out").rglob("square.png"))
    assert len(squares) == 2
    assert all(Image.open(p).size == (40, 40) for p in squares)


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("execution.workers=zero", "--set execution.workers: execution.workers: got 'zero'"),
        ("stages.1.with.size=-3", "--set stages.1.with.size: stages[1].with.size"),
        (
            "stages.nope.with.size=3",
            "got --set 'stages.nope.with.size=3'; no item with id 'nope'; known: enhanced, square",
        ),
        ("workers", "got --set 'workers'; expected key.path=value"),
    ],
)
def test_bad_set_exits_2_naming_the_override(imgx, photo_catalog, tmp_path, assignment, words):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--set", assignment)
    assert result.exit_code == 2
    assert result.stderr.startswith("recipe error: ")
    assert words in result.stderr
    assert not (tmp_path / "out").exists()


def test_dry_run_counts_and_writes_nothing(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 8 item(s) in the catalog; 8 would be processed and 0 skipped" in result.stderr
    assert f"output folder {tmp_path / 'out'}; nothing was read or written" in result.stderr
    assert "│ total" not in result.stderr  # a dry run prints no results table
    assert not (tmp_path / "out").exists()


def test_dry_run_with_resume_counts_only_what_is_left(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    assert imgx("run", recipe, "--set", "input.limit=3").exit_code == 0
    result = imgx("run", recipe, "--dry-run", "--resume")
    assert result.exit_code == 0, result.output
    assert "dry run: 8 item(s) in the catalog; 5 would be processed and 3 skipped as done" in result.stderr


def test_plugins_dir_stages_run(imgx, photo_catalog, plugin_dir, tmp_path):
    recipe = failing_recipe(tmp_path, photo_catalog)
    result = imgx("run", recipe, "--plugins-dir", plugin_dir, "--set", "stages.inverted.with.sku_contains=")
    assert result.exit_code == 0, result.output
    out = next((tmp_path / "out").rglob("inverted.png"))
    original = Image.open(photo_catalog / out.parent.relative_to(tmp_path / "out").with_suffix(".jpg"))
    assert Image.open(out).getpixel((5, 5)) != original.getpixel((5, 5))


def test_a_plugin_stage_without_its_plugin_is_a_bad_recipe(imgx, photo_catalog, tmp_path):
    result = imgx("run", failing_recipe(tmp_path, photo_catalog))
    assert result.exit_code == 2
    assert re.search(r"recipe\.yaml:\d+: stages\[0\]\.uses: got unknown stage 'test\.fail_on'", result.stderr)


@pytest.mark.parametrize("flag", ["--plugin", "-p"])
def test_plugin_module_option(imgx, photo_catalog, plugin_dir, tmp_path, monkeypatch, flag):
    module = f"imgx_cli_test_plugin_{flag.strip('-')}"
    shutil.copy(plugin_dir / "faulty.py", tmp_path / f"{module}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    recipe = failing_recipe(tmp_path, photo_catalog)
    result = imgx("run", recipe, flag, module, "--max-failures", "0")
    assert result.exit_code == 1, result.output
    assert summary_row(result.stderr, "failed") == (4, 4)
    assert f"--resume --max-failures 0 --plugin {module}" in result.stderr


def test_a_plugin_that_fails_to_import_is_named_and_the_run_goes_on(imgx, photo_catalog, broken_plugin_dir, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--plugins-dir", broken_plugin_dir)
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if line.startswith("warning: plugin "))
    assert str(broken_plugin_dir / "needs_missing.py") in warning
    assert "ModuleNotFoundError" in warning and "imgx_no_such_dependency" in warning
    assert summary_row(result.stderr, "ok") == (8, 16)


def test_no_progress_prints_only_the_summary(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "img/s" not in result.stderr  # the bar's column; the summary says images/s
    assert result.stderr.lstrip().startswith("imgx run ")


def test_a_stage_that_cannot_start_exits_1(imgx, photo_catalog, plugin_dir, tmp_path):
    body = basic_recipe(photo_catalog, tmp_path / "out")
    body["stages"] = [{"id": "model", "uses": "test.broken_init"}]
    body["outputs"] = ["model"]
    result = imgx("run", write_recipe(tmp_path, body), "--plugins-dir", plugin_dir)
    assert result.exit_code == 1
    assert "error: stage test.broken_init (node 'model') failed to start" in result.stderr
    assert "weights not found: /nowhere/model.pth" in result.stderr


def test_missing_recipe_exits_2(imgx, tmp_path):
    result = imgx("run", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert f"recipe file not found: {tmp_path / 'nope.yaml'}" in result.stderr


def test_skus_and_errors_are_printed_verbatim_not_as_markup(imgx, photo_catalog, plugin_dir, tmp_path):
    """Square brackets are common in file names (``shirt[red].jpg``); rich must not read them as style tags."""
    catalog = tmp_path / "catalog"
    (catalog / "sale").mkdir(parents=True)
    for name in ("shirt[red]", "hat[bold]"):
        shutil.copy(next(photo_catalog.rglob("*.jpg")), catalog / "sale" / f"{name}.jpg")
    body = basic_recipe(catalog, tmp_path / "out")
    body["stages"] = [{"id": "inverted", "uses": "test.fail_on", "with": {"sku_contains": "["}}]
    body["outputs"] = ["inverted"]
    result = imgx("run", write_recipe(tmp_path, body), "--plugins-dir", plugin_dir)
    assert result.exit_code == 1, result.output
    assert "refusing sale/shirt[red]" in result.stderr
    assert "refusing sale/hat[bold]" in result.stderr
