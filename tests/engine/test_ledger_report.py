"""Reading a run's results: the current state per (sku, output) across runs, causes, and the contact sheet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import basic_recipe, write_recipe
from imgx import ImgxError, ledger_report
from imgx.ledger import read_ledger
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


def test_current_state_has_one_row_per_pair_and_ignores_skips(
    finished_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = current_state(finished_run).to_pylist()
    monkeypatch.setattr(ledger_report, "_REDUCE_ROWS", 3)  # reduce the streamed state every few rows
    assert current_state(finished_run).to_pylist() == state
    assert len(state) == 16
    assert {(r["sku"], r["output"]) for r in state if r["status"] == "failed"} == {("misc/rocket", "inverted")}
    assert all(r["status"] in ("ok", "failed") for r in state)


def test_summary_counts_and_groups_causes(finished_run: Path) -> None:
    report = summarize(finished_run)
    assert_lean_agrees(report, finished_run)
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


def assert_lean_agrees(report, out: Path) -> None:
    """``imgx report``'s summary without the state table gives what the state table gives: in one part (two passes)
    and split into parts of a few rows each (how a ledger of more than REPORT_PASS_ROWS rows is read)."""
    import imgx.ledger_report as module

    fields = ("items", "outputs", "ok", "failed", "runs", "by_cause")
    default = module.REPORT_PASS_ROWS
    for rows in (default, 5, 1):
        module.REPORT_PASS_ROWS = rows
        try:
            lean = summarize(out, keep_state=False)
        finally:
            module.REPORT_PASS_ROWS = default
        assert [getattr(lean, f) for f in fields] == [getattr(report, f) for f in fields], rows
        assert sorted(lean.slowest) == sorted(report.slowest) and lean.state.num_rows == 0


def test_no_ledger_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImgxError, match="no ledger"):
        summarize(tmp_path)
    with pytest.raises(ImgxError, match="no ledger"):
        summarize(tmp_path, keep_state=False)


# -- duplicates, resume and older ledgers ------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
BASE_COMMIT = "acdc5a9"  # the last commit whose ledger wrote a skipped row per resumed output


@pytest.fixture
def manifest_recipe(photo_catalog: Path, tmp_path: Path) -> Path:
    """The real photos through a CSV manifest with two repeated SKUs (rows 9 and 10) and a missing file (row 11)."""
    photos = sorted(photo_catalog.rglob("*.jpg"))
    lines = ["sku,image", *(f"P-{i},{p}" for i, p in enumerate(photos))]
    lines += [f"P-0,{photos[1]}", f"P-1,{photos[0]}", f"P-9,{tmp_path / 'missing.jpg'}"]
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    recipe = basic_recipe(photo_catalog, tmp_path / "out", max_failures=5)
    recipe["input"] = {"path": str(tmp_path / "manifest.csv")}
    return write_recipe(tmp_path, recipe)


def test_the_report_agrees_with_the_run_summary_when_skus_repeat(manifest_recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = run_recipe(manifest_recipe)
    assert (run.items, run.items_done, run.items_failed, run.outputs_ok, run.outputs_failed) == (11, 8, 3, 16, 6)
    report = summarize(out)
    assert (report.items, report.outputs, report.ok, report.failed) == (11, 22, 16, 6)
    state = current_state(out).to_pylist()
    first = {(r["output"], r["status"]) for r in state if r["sku"] == "P-0" and r["stage"] != "catalog"}
    assert first == {("enhanced", "ok"), ("square", "ok")}  # the duplicate's failure does not override row 1
    errors = sorted({r["error"] for r in state if r["stage"] == "catalog"})
    assert [e[:68] for e in errors] == [
        "duplicate sku: manifest row 10 has the same sku as manifest row 2, w",
        "duplicate sku: manifest row 9 has the same sku as manifest row 1, wh",
    ]

    resumed = run_recipe(manifest_recipe, RunOptions(resume=True))
    assert (resumed.items_skipped, resumed.outputs_skipped, resumed.items_failed) == (8, 16, 3)
    rows = read_ledger(out)
    assert "skipped" not in rows["status"].to_pylist()  # skips are counted in the summary, not written per output
    again = summarize(out)
    assert_lean_agrees(again, out)
    assert (again.items, again.outputs, again.ok, again.failed, again.runs) == (11, 22, 16, 6, 2)


def test_resume_redoes_exactly_what_is_not_done(manifest_recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_recipe(manifest_recipe)
    (out / "P-3" / "square.png").unlink()
    resumed = run_recipe(manifest_recipe, RunOptions(resume=True))
    assert (resumed.items_skipped, resumed.outputs_skipped, resumed.outputs_ok) == (7, 15, 1)
    assert (out / "P-3" / "square.png").is_file()
    ok = [(r["sku"], r["output"]) for r in read_ledger(out).to_pylist() if r["status"] == "ok"]
    assert len(ok) == 17 and ok.count(("P-3", "square")) == 2
    assert len(list((out / "_imgx" / "ledger").glob("*.parquet"))) == 1  # compacted at the end of the run


def test_a_ledger_written_by_the_previous_code_is_still_read(manifest_recipe: Path, tmp_path: Path) -> None:
    if (
        shutil.which("git") is None
        or subprocess.run(
            ["git", "-C", str(REPO), "cat-file", "-e", f"{BASE_COMMIT}^{{commit}}"], capture_output=True
        ).returncode
    ):
        pytest.skip(f"needs git and commit {BASE_COMMIT} to run the previous code")
    old = tmp_path / "old-imgx"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BASE_COMMIT, "engine", "plugins"], capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    script = "import sys; from imgx.runner import RunOptions, run_recipe; r = sys.argv[1]; "
    script += "run_recipe(r); run_recipe(r, RunOptions(resume=True))"
    env = dict(os.environ, PYTHONPATH=f"{old / 'engine'}{os.pathsep}{old / 'plugins'}")
    proc = subprocess.run([sys.executable, "-c", script, str(manifest_recipe)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    old_rows = read_ledger(out)
    assert old_rows["status"].to_pylist().count("skipped") == 16  # what the previous code wrote on --resume
    report = summarize(out)
    assert_lean_agrees(report, out)
    assert (report.outputs, report.ok, report.runs) == (22, 16, 2)  # its "duplicate sku: item N" rows stand apart
    resumed = run_recipe(manifest_recipe, RunOptions(resume=True))
    assert (resumed.items_skipped, resumed.outputs_skipped, resumed.outputs_ok) == (8, 16, 0)
    assert read_ledger(out).num_rows == old_rows.num_rows + 6  # the new run added only its 3 failed items' rows
    assert len(list((out / "_imgx" / "ledger").glob("*.parquet"))) == 1


def test_missing_files_are_one_cause_not_one_row_each(photo_catalog: Path, tmp_path: Path) -> None:
    """A manifest whose three images are missing (one path with a space): one cause, its 6 outputs (2 per item)."""
    rows = ["sku,image"] + [
        f"gone-{i},{tmp_path / ('no such' if i == 0 else 'nothere') / f'{i}.jpg'}" for i in range(3)
    ]
    rows.append(f"real,{next(photo_catalog.rglob('*.jpg'))}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    recipe = basic_recipe(tmp_path / "m.csv", tmp_path / "out", max_failures=5)
    recipe["input"] = {"path": str(tmp_path / "m.csv")}
    run_recipe(write_recipe(tmp_path, recipe))
    report = summarize(tmp_path / "out")
    assert_lean_agrees(report, tmp_path / "out")
    assert report.by_cause == [("read", "source not found: <path>", 6)], report.by_cause


def _metrics_ledger(out: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """A ledger of (sku, output, status, metrics JSON) rows written by a real LedgerWriter."""
    from imgx.ledger import LedgerRow, LedgerWriter, StatePaths

    writer = LedgerWriter(StatePaths(out), "run1", "w0", compact_rows=1000)
    writer.write(
        [
            LedgerRow(sku, f"/src/{sku}.jpg", output, f"{sku}.png", status, "", "", 1.0, "h", (), m)
            for sku, output, status, m in rows
        ]
    )
    writer.close()


def test_metric_distributions_per_output_and_variant(tmp_path: Path) -> None:
    """Exact count, mean, min, max and quantiles (below the sample size) per output, a variant's output on its own;
    failed rows, text notes and rows without metrics are left out, and mixed-type keys do not stop the report."""
    rng = np.random.default_rng(3)
    ssim = {"hero@teens": rng.uniform(0.4, 0.9, 50), "hero@classic": rng.uniform(0.7, 1.0, 40)}
    rows = []
    for output, values in ssim.items():
        for i, v in enumerate(values):
            rows.append((f"s{i}", output, "ok", json.dumps({"q.ssim": float(v), "centred.limited_by": "size"})))
    rows += [("bad", "hero@teens", "failed", json.dumps({"q.ssim": 0.0})), ("plain", "cutout", "ok", "")]
    rows += [("m1", "odd", "ok", json.dumps({"x": 1})), ("m2", "odd", "ok", json.dumps({"x": "n/a"}))]
    _metrics_ledger(tmp_path, rows)
    found = {(m.output, m.metric): m for m in ledger_report.metric_distributions(tmp_path)}
    assert set(found) == {("hero@classic", "q.ssim"), ("hero@teens", "q.ssim"), ("odd", "x")}
    for output, values in ssim.items():
        stats = found[(output, "q.ssim")]
        assert stats.count == len(values) and stats.mean == pytest.approx(values.mean())
        assert (stats.low, stats.high) == (pytest.approx(values.min()), pytest.approx(values.max()))
        assert stats.quantile(0.5) == pytest.approx(np.median(values)) and stats.quantile(0.05) == pytest.approx(
            np.quantile(values, 0.05)
        )
    assert found[("odd", "x")].count == 1


def test_metric_sample_stays_bounded_and_uniform() -> None:
    """Past :data:`METRIC_SAMPLE` values the sample keeps its size and stays uniform: its quartiles track the
    data's even when the values arrive sorted (a biased sample would keep the early, small ones)."""
    stats = ledger_report.MetricStats("o", "m")
    rng = np.random.default_rng(1)
    data = np.sort(rng.normal(10.0, 2.0, 4 * ledger_report.METRIC_SAMPLE))
    for chunk in np.array_split(data, 37):
        stats.add(chunk, rng)
    assert stats.sample.size == ledger_report.METRIC_SAMPLE and stats.count == data.size
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert stats.quantile(q) == pytest.approx(np.quantile(data, q), abs=0.05)


def test_report_prints_the_metric_table(tmp_path: Path) -> None:
    _metrics_ledger(tmp_path, [(f"s{i}", "hero@teens", "ok", json.dumps({"q.ssim": 0.5 + i / 100})) for i in range(5)])
    from typer.testing import CliRunner

    from imgx.cli import app

    result = CliRunner().invoke(app, ["report", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "metrics of ok outputs" in result.stdout and "hero@teens" in result.stdout and "0.52" in result.stdout
    quiet = CliRunner().invoke(app, ["report", str(tmp_path), "--no-metrics"], env={"COLUMNS": "200"})
    assert "metrics of ok outputs" not in quiet.stdout


def test_contact_sheet_captions_carry_the_metrics(tmp_path: Path) -> None:
    """Each output's numeric metrics are written under its tile (node names left out, bounds and messages not), and
    the caption line only exists when something was measured."""
    assert ledger_report._metrics_caption(json.dumps({"q.ssim": 0.91234, "q.note": "x", "c.fill.bound": 1}), 192) == (
        "ssim 0.912"
    )
    assert ledger_report._metrics_caption("", 192) == "" and ledger_report._metrics_caption(None, 192) == ""
    long = ledger_report._metrics_caption(json.dumps({f"q.metric_{i}": i / 7 for i in range(20)}), 96)
    assert len(long) == 96 // 6 and long.endswith("…")
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(photo)
    heights = {}
    for name, metrics in (("plain", ""), ("measured", json.dumps({"q.ssim": 0.5}))):
        out = tmp_path / name
        (out / "s").mkdir(parents=True)
        Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(out / "s" / "o.png")
        from imgx.ledger import LedgerRow, LedgerWriter, StatePaths

        writer = LedgerWriter(StatePaths(out), "run1", "w0")
        writer.write([LedgerRow("s", str(photo), "o", "s/o.png", "ok", "", "", 1.0, "h", (), metrics)])
        writer.close()
        assert contact_sheet(out, out / "sheet.png", cell=96) == 1
        heights[name] = Image.open(out / "sheet.png").height
    assert heights["measured"] == heights["plain"] + 14
