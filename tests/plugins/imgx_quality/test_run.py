"""``quality.metrics`` and ``quality.gate`` through a real ``imgx run``: metrics land in the ledger under the node's
id; ``fail`` fails the item alone naming the bound and the shortfall; ``flag`` keeps it with a flag per bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from _support import real_photo, write_recipe
from imgx import Item, RecipeError, StageError
from imgx.ledger import read_ledger
from imgx.runner import run_recipe
from imgx_quality import Bound, gate

PHOTOS = ("astronaut", "coffee", "chelsea")


@pytest.fixture
def photo_catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for name in PHOTOS:
        Image.fromarray(real_photo(name, 96)).save(folder / f"{name}.png")
    return folder


def recipe(catalog: Path, out: Path, gate_with: dict) -> dict:
    return {
        "version": 1,
        "name": "quality",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 2, "max_failures": 1.0},
        "stages": [
            {"id": "bright", "uses": "color.gamma", "with": {"gamma": 1.6}},
            {"id": "keep", "uses": "color.gamma", "with": {"gamma": 1.0}},
            {"id": "q", "uses": "quality.metrics", "needs": ["bright", "keep"]},
            {"id": "g", "uses": "quality.gate", "needs": ["q"], "with": gate_with},
        ],
        "outputs": ["g"],
    }


def rows_of(out: Path) -> dict[str, dict]:
    rows = {}
    for row in read_ledger(out).to_pylist():
        row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
        rows[row["sku"]] = row
    return rows


def test_metrics_land_in_the_ledger_and_match_skimage(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_recipe(write_recipe(tmp_path, recipe(photo_catalog, out, {"bounds": {"ssim": {"min": 0.0}}})))
    rows = rows_of(out)
    assert summary.items == 3 and summary.items_failed == 0
    for name in PHOTOS:
        metrics = rows[name]["metrics"]
        assert {"q.ssim", "q.psnr", "q.sharpness"} <= set(metrics) and metrics["q.product_delta_e"] is None
        written = np.asarray(Image.open(out / name / "g.png").convert("RGB"))
        source = np.asarray(Image.open(photo_catalog / f"{name}.png").convert("RGB"))
        expected = structural_similarity(written, source, channel_axis=2, data_range=255)
        assert metrics["q.ssim"] == pytest.approx(expected, abs=1e-9) and metrics["q.ssim"] < 0.99


def test_fail_fails_the_item_alone_naming_the_bound(photo_catalog: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    run_recipe(write_recipe(tmp_path / "p", recipe(photo_catalog, probe, {"bounds": {"ssim": {"min": 0.0}}})))
    ssim = {sku: row["metrics"]["q.ssim"] for sku, row in rows_of(probe).items()}
    ranked = sorted(ssim, key=ssim.get)
    threshold = (ssim[ranked[0]] + ssim[ranked[1]]) / 2  # exactly the worst item falls below
    out = tmp_path / "out"
    gate_with = {"bounds": {"ssim": {"min": threshold}}, "action": "fail"}
    summary = run_recipe(write_recipe(tmp_path, recipe(photo_catalog, out, gate_with)))
    rows = rows_of(out)
    assert summary.items == 3 and summary.items_failed == 1
    worst = rows[ranked[0]]
    assert worst["status"] == "failed" and not (out / ranked[0] / "g.png").exists()
    assert "q.ssim" in worst["error"] and "< min" in worst["error"] and "short by" in worst["error"], worst["error"]
    for sku in ranked[1:]:
        assert rows[sku]["status"] == "ok" and (out / sku / "g.png").exists()


def test_flag_keeps_every_item_and_flags_each_broken_bound(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    gate_with = {"bounds": {"ssim": {"min": 0.999}, "sharpness": {"max": 1e9}}, "action": "flag"}
    summary = run_recipe(write_recipe(tmp_path, recipe(photo_catalog, out, gate_with)))
    rows = rows_of(out)
    assert summary.items_failed == 0
    for name in PHOTOS:
        assert rows[name]["status"] == "ok" and rows[name]["flags"] == "g:ssim_below_min", rows[name]["flags"]


def test_a_bound_on_an_unmeasured_metric_fails_the_item_clearly(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    gate_with = {"bounds": {"product_delta_e_typo": {"max": 3}}, "action": "flag"}
    summary = run_recipe(write_recipe(tmp_path, recipe(photo_catalog, out, gate_with)))
    rows = rows_of(out)
    assert summary.items_failed == 3
    assert all("no metric 'product_delta_e_typo'" in row["error"] for row in rows.values())


def test_gate_message_states_the_shortfall() -> None:
    item = Item("s", "s.png", np.zeros((4, 4, 3), np.uint8), metrics={"q.ssim": 0.42, "q.product_delta_e": 5.0})
    bounds = {"ssim": Bound(min=0.5), "product_delta_e": Bound(max=3)}
    with pytest.raises(StageError) as caught:
        gate(item, bounds, "fail")
    assert "q.ssim 0.42 < min 0.5 (short by 0.08)" in str(caught.value)
    assert "q.product_delta_e 5 > max 3 (over by 2)" in str(caught.value)
    assert gate(item, bounds, "flag").flags == ("ssim_below_min", "product_delta_e_above_max")
    assert gate(item, {"ssim": Bound(min=0.4)}, "fail") is item


def test_missing_flag_flags_an_unmeasured_metric_instead_of_failing() -> None:
    item = Item("s", "s.png", np.zeros((4, 4, 3), np.uint8), metrics={"q.ssim": 0.9})
    bounds = {"ssim": Bound(min=0.5), "niqe": Bound(max=5)}
    assert gate(item, bounds, "fail", missing="flag").flags == ("niqe_missing",)
    with pytest.raises(StageError, match="no metric 'niqe'"):
        gate(item, bounds, "flag")


def test_the_source_image_is_a_node_to_measure_against(photo_catalog: Path, tmp_path: Path) -> None:
    """``needs: [bright, source]``: the decoded catalog image itself is the reference, no copy node needed; and
    ``source`` cannot be taken as a node id."""
    body = recipe(photo_catalog, tmp_path / "out", {"bounds": {"ssim": {"min": 0.0}}})
    body["stages"] = [s for s in body["stages"] if s["id"] != "keep"]
    body["stages"][1]["needs"] = ["bright", "source"]
    summary = run_recipe(write_recipe(tmp_path, body))
    assert summary.items == 3 and summary.items_failed == 0
    for name, row in rows_of(tmp_path / "out").items():
        written = np.asarray(Image.open(tmp_path / "out" / name / "g.png").convert("RGB"))
        source = np.asarray(Image.open(photo_catalog / f"{name}.png").convert("RGB"))
        expected = structural_similarity(written, source, channel_axis=2, data_range=255)
        assert row["metrics"]["q.ssim"] == pytest.approx(expected, abs=1e-9)
    body["stages"][0]["id"] = "source"
    body["stages"][1]["needs"] = ["source", "source"]
    with pytest.raises(RecipeError, match="'source' names the decoded catalog image"):
        run_recipe(write_recipe(tmp_path / "bad", body))
