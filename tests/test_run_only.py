"""``imgx run --only FILE``: only the SKUs a file lists (the review page's rejected CSV, or one SKU per line) are run,
on folder and manifest catalogs, with ``--resume``; listed SKUs the catalog lacks are warned about."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner, Result

from _support import basic_recipe, write_recipe
from imgx.cli import app
from imgx.ledger import read_ledger


def imgx(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def runs(out: Path) -> list[Counter[str]]:
    """Per run (in the order they ran), how many ledger rows each SKU got."""
    ledger = read_ledger(out, columns=["sku", "run_id", "finished_at"])
    started = ledger.group_by("run_id").aggregate([("finished_at", "min")]).sort_by("finished_at_min")
    return [
        Counter(ledger.filter(pc.equal(ledger["run_id"], run))["sku"].to_pylist())
        for run in started["run_id"].to_pylist()
    ]


def test_a_rejected_csv_runs_exactly_its_skus_and_warns_about_unknown_ones(photo_catalog, tmp_path) -> None:
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    listed = tmp_path / "rejected.csv"
    with listed.open("w", newline="", encoding="utf-8") as handle:  # as the page writes it: a sku column
        csv.writer(handle).writerows([["sku"], ["food/chelsea"], ["misc/flower"], ["food/no-such-sku"]])
    result = imgx("run", recipe, "--only", listed, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "1 of the 3 SKUs --only lists are not in the catalog: 'food/no-such-sku'" in result.stderr
    assert runs(tmp_path / "out") == [Counter({"food/chelsea": 2, "misc/flower": 2})]
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "food/chelsea/enhanced.png",
        "food/chelsea/square.png",
        "misc/flower/enhanced.png",
        "misc/flower/square.png",
    ]


def test_one_sku_per_line_combines_with_resume(photo_catalog, tmp_path) -> None:
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    first = tmp_path / "first.txt"
    first.write_text("food/coffee\r\n  misc/rocket  \n\nfood/coffee\n", encoding="utf-8")  # CRLF, spaces, a repeat
    assert imgx("run", recipe, "--only", first, "--no-progress").exit_code == 0
    second = tmp_path / "second.txt"
    second.write_text("misc/rocket\nfood/china\n", encoding="utf-8")
    result = imgx("run", recipe, "--only", second, "--resume", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "not in the catalog" not in result.stderr
    # misc/rocket was done by the first run: --resume skips it, so the second run made food/china only
    assert runs(tmp_path / "out") == [Counter({"food/coffee": 2, "misc/rocket": 2}), Counter({"food/china": 2})]
    result = imgx("run", recipe, "--resume", "--no-progress")  # the rest of the catalog, without --only
    assert result.exit_code == 0
    assert sum(runs(tmp_path / "out")[-1].values()) == 2 * (8 - 3)


def test_only_filters_a_manifest_catalog_too(photo_catalog, tmp_path) -> None:
    manifest = tmp_path / "catalog.csv"
    images = sorted(photo_catalog.rglob("*.jpg"))
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "image"])
        writer.writerows([[f" SKU-{i:02d} ", str(path)] for i, path in enumerate(images)])  # cells are trimmed
    recipe = basic_recipe(manifest, tmp_path / "out")
    del recipe["input"]["pattern"]
    path = write_recipe(tmp_path, recipe)
    listed = tmp_path / "only.csv"
    listed.write_text('name,sku\nx,SKU-03\ny,"SKU-05"\n', encoding="utf-8")
    result = imgx("run", path, "--only", listed, "--no-progress")
    assert result.exit_code == 0, result.output
    assert runs(tmp_path / "out") == [Counter({"SKU-03": 2, "SKU-05": 2})]
    ledger = read_ledger(tmp_path / "out", columns=["sku", "source"]).to_pylist()
    assert {r["source"] for r in ledger if r["sku"] == "SKU-03"} == {str(images[3])}


def test_a_dry_run_counts_only_the_listed_skus(photo_catalog, tmp_path) -> None:
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    listed = tmp_path / "only.txt"
    listed.write_text("food/coffee\nmisc/rocket\nnope/1\nnope/2\nnope/3\nnope/4\nnope/5\nnope/6\n", encoding="utf-8")
    result = imgx("run", recipe, "--only", listed, "--dry-run", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "6 of the 8 SKUs --only lists are not in the catalog: 'nope/1', " in result.stderr
    assert "and 1 more" in result.stderr
    assert "dry run: 2 item(s) in the catalog; 2 would be processed" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ("name,other\nfood/coffee,1\n", "bad.csv", "expected a 'sku' column in its header, got 'name', 'other'"),
        ("\n  \n", "empty.txt", "it lists no SKU"),
    ],
)
def test_a_bad_list_is_a_usage_error_naming_the_flag(photo_catalog, tmp_path, content, name, expected) -> None:
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    listed = tmp_path / name
    listed.write_text(content, encoding="utf-8")
    result = imgx("run", recipe, "--only", listed, "--no-progress")
    assert result.exit_code == 2
    assert f"--only: got '{listed}': {expected}" in result.stderr
    assert not (tmp_path / "out" / "_imgx" / "ledger").exists() or not any((tmp_path / "out").rglob("*.parquet"))


def test_a_missing_list_file_is_a_usage_error(photo_catalog, tmp_path) -> None:
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("run", recipe, "--only", tmp_path / "nowhere.csv", "--no-progress")
    assert result.exit_code == 2 and "nowhere.csv" in result.output
