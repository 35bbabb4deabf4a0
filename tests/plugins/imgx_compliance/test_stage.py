"""``check.marketplace`` through a real ``imgx run``: ``fail`` fails the item alone naming each rule, ``flag`` writes it
and flags each rule id in the ledger; and the stage's parameters reject unknown packs before any image is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from _support import write_recipe
from imgx import Item, RecipeError, StageError
from imgx.ledger import read_ledger
from imgx.runner import run_recipe
from imgx_compliance import CheckMarketplace, CheckParams, builtin_pack, check_marketplace

PICK = ("ok-coffee.png", "grey-background.png", "fill-50.png")


def recipe(catalog: Path, out: Path, action: str, rules: list[str]) -> dict:
    return {
        "version": 1,
        "name": f"check-{action}",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 2, "max_failures": 1.0},
        "stages": [{"id": "check", "uses": "check.marketplace", "with": {"rules": rules, "action": action}}],
        "outputs": ["check"],
    }


@pytest.fixture
def small_catalog(catalog: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for name in PICK:
        (folder / name).write_bytes((catalog / name).read_bytes())
    return folder


def test_fail_fails_each_broken_item_alone_naming_its_rules(small_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_recipe(write_recipe(tmp_path, recipe(small_catalog, out, "fail", ["amazon-main"])))
    rows = {r["sku"]: r for r in read_ledger(out).to_pylist()}
    assert summary.items == 3 and summary.items_failed == 2
    assert rows["ok-coffee"]["status"] == "ok" and (out / "ok-coffee" / "check.png").exists()
    for sku, rule in (("grey-background", "background.white"), ("fill-50", "product.fill")):
        assert rows[sku]["status"] == "failed" and not (out / sku / "check.png").exists()
        assert f"{rule}: got" in rows[sku]["error"] and "expected" in rows[sku]["error"], rows[sku]["error"]
    assert "product.fill: got 0.5" in rows["fill-50"]["error"] and ">= 0.85" in rows["fill-50"]["error"]


def test_flag_writes_every_item_and_flags_each_rule(small_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pack = tmp_path / "packs" / "shop.yaml"
    pack.parent.mkdir()
    pack.write_text("name: shop\nextends: amazon-main\nrules:\n  product.fill: {min: 0.4}\n", encoding="utf-8")
    summary = run_recipe(write_recipe(tmp_path, recipe(small_catalog, out, "flag", ["packs/shop.yaml", "shopify"])))
    rows = {r["sku"]: r for r in read_ledger(out).to_pylist()}
    assert summary.items == 3 and summary.items_failed == 0
    assert all(row["status"] == "ok" for row in rows.values())
    assert rows["ok-coffee"]["flags"] in ("", None)
    assert rows["fill-50"]["flags"] in ("", None)  # the user pack lowered the fill bound to 0.4
    assert rows["grey-background"]["flags"] == "check:background.white"
    metrics = rows["grey-background"]["metrics"]
    metrics = json.loads(metrics) if isinstance(metrics, str) else metrics
    assert metrics["check.background.white"] == 0.0, metrics


def test_warnings_only_flag(compose) -> None:
    rgb, alpha = compose("coffee", size=1200)
    item = Item("wide", "memory", rgb[:, :1100].copy(), alpha[:, :1100].copy())
    checked = check_marketplace(item, [builtin_pack("shopify")], "fail")
    assert checked.flags == ("warning:aspect",) and checked.metrics["aspect"] == pytest.approx(1100 / 1200, abs=1e-3)
    with pytest.raises(StageError, match=r"size\.min: got 600x600, expected longest side >= 1000"):
        small, small_alpha = compose("coffee", size=600)
        check_marketplace(Item("s", "memory", small, small_alpha), [builtin_pack("amazon-main")], "fail")


def test_the_stage_class_and_function_agree(compose) -> None:
    rgb, alpha = compose("coffee", size=400, fill=0.5)
    item = Item("c", "memory", rgb, alpha)
    stage = CheckMarketplace(CheckParams(rules=["amazon-main"], action="flag"))
    (by_stage,) = stage([item])
    by_function = check_marketplace(item, [builtin_pack("amazon-main")], "flag")
    assert by_stage.flags == by_function.flags == ("size.min", "product.fill")
    assert by_stage.metrics == by_function.metrics and by_stage.image is item.image


def test_params_reject_an_unknown_pack_before_any_image_is_read() -> None:
    with pytest.raises(ValidationError, match="got rule pack 'amazon'; expected one of amazon-main"):
        CheckParams(rules=["amazon"])
    with pytest.raises(ValidationError, match="cannot read rule pack"):
        CheckParams(rules=["missing.yaml"])


def test_a_bad_user_pack_stops_the_recipe_naming_both_files(small_catalog: Path, tmp_path: Path) -> None:
    pack = tmp_path / "packs" / "bad.yaml"
    pack.parent.mkdir()
    pack.write_text("name: bad\nextends: amazon-main\nrules:\n  logo: {}\n", encoding="utf-8")
    path = write_recipe(tmp_path, recipe(small_catalog, tmp_path / "out", "flag", ["amazon-main", "packs/bad.yaml"]))
    with pytest.raises(RecipeError, match=rf"{path}:\d+: .*rules.*{pack}:4: got rule id 'logo'"):
        run_recipe(path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))
