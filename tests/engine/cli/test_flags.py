"""Stages record what they achieved: geometry.center's fill reached and why it fell short lands in the ledger's
``flags`` and ``metrics``; ``min_fill`` with ``on_miss`` makes a miss a flag or a failure (issue 16, item 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from _support import real_photo, write_recipe
from imgx.ledger import LEDGER_SCHEMA, read_ledger


def _catalog(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(real_photo("coffee", 120)).save(folder / "small.jpg")  # 120 x 80: at most 2x on a 600 px canvas
    Image.fromarray(real_photo("rocket", 800)).save(folder / "large.jpg")
    return folder


def _recipe(tmp_path: Path, on_miss: str) -> Path:
    return write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "main-images",
            "input": {"path": str(_catalog(tmp_path / "catalog"))},
            "output": {"dir": str(tmp_path / "out"), "format": "jpeg"},
            "execution": {"workers": 1},
            "stages": [
                {
                    "id": "centred",
                    "uses": "geometry.center",
                    "with": {"size": 600, "fill": 0.85, "background": "#ffffff", "min_fill": 0.8, "on_miss": on_miss},
                }
            ],
        },
    )


def test_small_source_is_flagged_with_the_fill_it_reached(imgx, tmp_path: Path) -> None:
    result = imgx("run", _recipe(tmp_path, "flag"))
    assert result.exit_code == 0, result.output
    assert "1 output(s) written but flagged" in result.output and "centred:fill_below_min 1" in result.output
    rows = {r["sku"]: r for r in read_ledger(tmp_path / "out").to_pylist()}
    assert rows["small"]["status"] == "ok" and rows["small"]["flags"] == "centred:fill_below_min"
    small = json.loads(rows["small"]["metrics"])
    assert small["centred.limited_by"] == "max_upscale" and abs(small["centred.fill"] - 0.4) < 0.01
    assert rows["large"]["flags"] == "" and json.loads(rows["large"]["metrics"])["centred.fill"] >= 0.849
    report = imgx("report", tmp_path / "out")
    assert "1 flagged" in report.output


def test_on_miss_fail_fails_the_small_source_with_the_reason(imgx, tmp_path: Path) -> None:
    result = imgx("run", _recipe(tmp_path, "fail"), "--max-failures", "5")
    assert result.exit_code == 0, result.output
    rows = {r["sku"]: r for r in read_ledger(tmp_path / "out").to_pylist()}
    assert rows["small"]["status"] == "failed" and "below min_fill 80%" in rows["small"]["error"]
    assert "enlargement capped at 2x" in rows["small"]["error"]
    assert rows["large"]["status"] == "ok"


def test_ledgers_written_before_the_new_columns_read_as_null(tmp_path: Path) -> None:
    old_schema = pa.schema([f for f in LEDGER_SCHEMA if f.name not in ("flags", "metrics")])
    row = {"sku": "a", "source": "a.jpg", "output": "o", "path": "a/o.png", "status": "ok", "stage": "", "error": ""}
    row |= {"duration_ms": 1.0, "recipe_hash": "h", "run_id": "r", "worker": "w", "finished_at": None}
    ledger = tmp_path / "_imgx" / "ledger"
    ledger.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), ledger / "part-old.parquet")
    table = read_ledger(tmp_path)
    assert table.column("flags").to_pylist() == [None] and table.column("metrics").to_pylist() == [None]


def test_sheet_goes_into_the_output_folder_and_says_how_many_skus_it_kept(imgx, tmp_path: Path, monkeypatch) -> None:
    assert imgx("run", _recipe(tmp_path, "flag")).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = imgx("sheet", tmp_path / "out", "--limit", "1", "--cell", "48")
    assert result.exit_code == 0, result.output
    sheet = tmp_path / "out" / "contact-sheet.jpg"
    assert sheet.is_file() and not any(elsewhere.iterdir())
    assert f"contact sheet of 1 SKU(s) of 2 (failed ones first; --limit 2 for all): {sheet}" in result.stdout
    chosen = imgx("sheet", tmp_path / "out", "-o", tmp_path / "mine.png", "--cell", "48")
    assert (tmp_path / "mine.png").is_file()
    assert "contact sheet of 2 SKU(s) of 2 (failed ones first)" in chosen.stdout


def test_resume_progress_counts_skipped_items_apart_from_the_rate(imgx, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "flag")
    assert imgx("run", recipe).exit_code == 0
    resumed = imgx("run", recipe, "--resume")  # no terminal here: plain progress lines on stderr
    assert resumed.exit_code == 0, resumed.output
    # the first run recorded its costs, so the resumed run may start from the cost model's rate, labelled so
    assert re.search(
        r"main-images: 2/2 images \(100%\), (~[\d,.]+ images/s \(estimated\), ETA ~0s|rate and ETA after 2 results), "
        r"0 failed, 2 skipped \(done before\)",
        resumed.stderr,
    ), resumed.stderr


def test_write_false_records_rows_flags_and_metrics_but_writes_no_image(imgx, tmp_path: Path) -> None:
    """``output.write: false`` (what an audit runs): every stage runs and every row is recorded with its flags and
    metrics, no file appears beside the ledger, and the same recipe written for real later is not skipped by
    ``--resume`` (a row with no file is never done) and gets the same recipe hash."""
    recipe = _recipe(tmp_path, "flag")
    text = recipe.read_text().replace("format: jpeg", "format: jpeg\n  write: false")
    assert text != recipe.read_text()
    recipe.write_text(text)
    result = imgx("run", recipe)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["_imgx"]
    rows = {r["sku"]: r for r in read_ledger(out).to_pylist()}
    assert {r["status"] for r in rows.values()} == {"ok"} and {r["path"] for r in rows.values()} == {""}
    assert rows["small"]["flags"] == "centred:fill_below_min"
    assert abs(json.loads(rows["small"]["metrics"])["centred.fill"] - 0.4) < 0.01
    recipe.write_text(text.replace("  write: false\n", ""))
    again = imgx("run", recipe, "--resume")
    assert again.exit_code == 0, again.output
    written = {r["sku"]: r for r in read_ledger(out).to_pylist() if r["path"]}
    assert sorted(written) == ["large", "small"] and all((out / r["path"]).is_file() for r in written.values())
    assert {r["recipe_hash"] for r in written.values()} == {r["recipe_hash"] for r in rows.values()}


def test_output_alpha_drop_writes_the_scene_not_the_cut_out(imgx, tmp_path: Path) -> None:
    """An RGBA catalog image (matplotlib's gift pack with its own mask, in a coffee photo's scene) written as JPEG:
    by default its alpha is flattened onto output.background (a white cut-out); with ``alpha: drop`` for that output
    the pixels outside the mask are written as they are (a restyled scene must stay). ``keep`` leaves the output
    hash as it was."""
    from _support import load_rgba_pack

    rgb, alpha = load_rgba_pack()
    scene_photo = np.asarray(Image.fromarray(real_photo("coffee", 400)).resize(rgb.shape[1::-1]))
    rgb = np.where((alpha == 0)[..., None], scene_photo, rgb).astype(np.uint8)  # the product in a real scene
    (tmp_path / "catalog").mkdir()
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "catalog" / "gift.png")
    body = {
        "version": 1,
        "name": "alpha",
        "input": {"path": str(tmp_path / "catalog"), "alpha": True},
        "output": {
            "dir": str(tmp_path / "out"),
            "format": "jpeg",
            "quality": 95,
            "overrides": {"scene": {"alpha": "drop"}},
        },
        "execution": {"workers": 1},
        "stages": [
            {"id": "cutout", "uses": "color.gamma", "with": {"gamma": 1.0}},
            {"id": "scene", "uses": "color.gamma", "with": {"gamma": 1.0}},
        ],
    }
    result = imgx("run", write_recipe(tmp_path, body))
    assert result.exit_code == 0, result.output
    outside = alpha == 0
    cutout = np.asarray(Image.open(tmp_path / "out" / "gift" / "cutout.jpg").convert("RGB")).astype(int)
    scene = np.asarray(Image.open(tmp_path / "out" / "gift" / "scene.jpg").convert("RGB")).astype(int)
    assert np.abs(cutout[outside] - 255).mean() < 3  # flattened onto white
    assert np.abs(scene[outside] - rgb[outside]).mean() < 4 and np.abs(scene[outside] - 255).mean() > 20
    hashes = {r["output"]: r["recipe_hash"] for r in read_ledger(tmp_path / "out").to_pylist()}
    assert hashes["cutout"] != hashes["scene"]
