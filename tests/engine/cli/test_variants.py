"""Audience variants: a recipe's ``variants:`` table fans the nodes that refer to ``${variant.NAME}`` (and what
needs them) out per row, through the real CLI on real photos. One output per row with ``{variant}`` in its name, a
``variant`` column in the ledger, ``--resume`` redoing only the row that changed, the manifest, and errors that name
the row and the recipe line before any image is read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from PIL import Image

from _support import write_recipe
from imgx.errors import RecipeError
from imgx.ledger import read_ledger
from imgx.recipe import load_recipe
from imgx.recipe.variants import references, substitute

ROWS = [{"id": "dull", "sat": 0.4}, {"id": "vivid", "sat": 1.8}]


def recipe_body(catalog: Path, out: Path, variants: object = None, **output: object) -> dict:
    return {
        "version": 1,
        "name": "audiences",
        "input": {"path": str(catalog), "pattern": "**/*.jpg"},
        "output": {"dir": str(out), "format": "png", **output},
        "execution": {"workers": 1, "batch_size": 4},
        "variants": ROWS if variants is None else variants,
        "stages": [
            {"id": "enhanced", "uses": "color.enhance", "with": {"white_balance": "gray_world"}},
            {"id": "sat", "uses": "color.saturation", "needs": ["enhanced"], "with": {"saturation": "${variant.sat}"}},
            {"id": "square", "uses": "geometry.fit", "needs": ["sat"], "with": {"size": 96}},
        ],
        "outputs": ["enhanced", "square"],
    }


def chroma(path: Path) -> float:
    """Mean distance of a pixel's channels from its grey: 0 for a grey image, higher for a more saturated one."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())


def test_each_row_gets_its_own_output_named_and_recorded_by_variant(imgx, photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, recipe_body(photo_catalog, out))
    planned = imgx("plan", recipe)
    assert planned.exit_code == 0, planned.output
    assert "variants: 2 row(s) (dull, vivid) x node(s) sat, square = 4 node(s)" in planned.stdout
    result = imgx("run", recipe)
    assert result.exit_code == 0, result.output
    skus = sorted(str(p.relative_to(photo_catalog).with_suffix("")) for p in photo_catalog.rglob("*.jpg"))
    ledger = read_ledger(out).to_pylist()
    assert len(ledger) == 3 * len(skus) and {r["status"] for r in ledger} == {"ok"}
    by_output = {(r["sku"], r["output"]): r for r in ledger}
    for sku in skus:
        assert (
            by_output[(sku, "enhanced")]["variant"] == ""
            and by_output[(sku, "enhanced")]["path"] == f"{sku}/enhanced.png"
        )
        for row in ROWS:
            written = by_output[(sku, f"square@{row['id']}")]
            assert written["variant"] == row["id"] and written["path"] == f"{sku}/square-{row['id']}.png"
        assert chroma(out / f"{sku}/square-vivid.png") > 2 * chroma(out / f"{sku}/square-dull.png")
    manifest = pq.read_table(out / "_imgx" / "variants.parquet")
    assert manifest.column_names == ["sku", "variant", "output", "path", "recipe_hash", "metrics"]
    assert sorted(zip(*manifest.select(["sku", "variant", "output"]).to_pydict().values(), strict=True)) == sorted(
        (sku, row["id"], "square") for sku in skus for row in ROWS
    )
    assert pacsv.read_csv(out / "_imgx" / "variants.csv").num_rows == manifest.num_rows
    assert "variants manifest: " in result.stderr


def test_changing_one_row_redoes_only_that_variant(imgx, photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, recipe_body(photo_catalog, out))
    assert imgx("run", recipe).exit_code == 0
    before = read_ledger(out).to_pylist()
    first = {(r["sku"], r["output"]): r["recipe_hash"] for r in before}
    first_run = {r["run_id"] for r in before}
    changed = [{"id": "dull", "sat": 0.4}, {"id": "vivid", "sat": 1.5}]
    recipe = write_recipe(tmp_path, recipe_body(photo_catalog, out, changed))
    again = imgx("run", recipe, "--resume")
    assert again.exit_code == 0, again.output
    rows = [r for r in read_ledger(out).to_pylist() if r["run_id"] not in first_run]
    assert {r["output"] for r in rows} == {"square@vivid"} and len(rows) == len(first) // 3
    assert all(first[(r["sku"], r["output"])] != r["recipe_hash"] for r in rows)


def test_a_variants_file_relative_to_the_recipe(imgx, photo_catalog: Path, tmp_path: Path) -> None:
    (tmp_path / "audiences.csv").write_text("id,sat,note\nteens,1.7,bright\nclassic,0.6,muted\n")
    body = recipe_body(photo_catalog, tmp_path / "out", "audiences.csv", naming="{variant}/{sku}_{output}.{ext}")
    result = imgx("run", write_recipe(tmp_path, body))
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    sku = sorted(str(p.relative_to(photo_catalog).with_suffix("")) for p in photo_catalog.rglob("*.jpg"))[0]
    assert f"teens/{sku}_square.png" in written and f"classic/{sku}_square.png" in written
    assert f"{sku}_enhanced.png" in written  # no variant: no folder for it


@pytest.mark.parametrize(
    ("variants", "with_", "naming", "expected"),
    [
        ([{"id": "a", "sat": 1.0}, {"id": "b", "satt": 1}], None, None, r"recipe.yaml:\d+: .*'b'.* has no 'sat'"),
        ([{"id": "a", "sat": "very"}], None, None, r"variant 'a' \(variants\[0\]\): got 'very'"),
        ([{"id": "a", "sat": 1}, {"id": "a", "sat": 2}], None, None, r"id 'a' is repeated"),
        ([{"id": "../x", "sat": 1}], None, None, r"expected a plain name"),
        (ROWS, None, "{sku}/{output}.{ext}", r"has no \{variant\}"),
        (ROWS, {"saturation": 1.2}, None, r"no stage parameter refers to a variant field"),
    ],
)
def test_bad_variants_are_recipe_errors_with_the_line(
    photo_catalog: Path, tmp_path: Path, variants: list, with_: dict | None, naming: str | None, expected: str
) -> None:
    body = recipe_body(photo_catalog, tmp_path / "out", variants, **({"naming": naming} if naming else {}))
    if with_ is not None:
        body["stages"][1]["with"] = with_
    recipe = write_recipe(tmp_path, body)
    from imgx.runner import RunOptions, prepare

    with pytest.raises(RecipeError, match=expected):
        prepare(recipe, RunOptions())
    assert not (tmp_path / "out").exists()


def test_a_reference_without_variants_is_an_error(tmp_path: Path, photo_catalog: Path) -> None:
    body = recipe_body(photo_catalog, tmp_path / "out")
    del body["variants"]
    with pytest.raises(RecipeError, match=r"refers to \$\{variant.sat\}, but the recipe has no variants"):
        load_recipe(write_recipe(tmp_path, body))


def test_substitution_keeps_types_and_interpolates_text() -> None:
    row = {"id": "a", "n": 3, "name": "oil"}
    value = {"k": "${variant.n}", "s": "style-${variant.name}-${variant.n}.png", "l": ["${variant.name}", 1]}
    assert substitute(value, row) == {"k": 3, "s": "style-oil-3.png", "l": ["oil", 1]}
    assert sorted(name for _, name in references(value)) == ["n", "n", "name", "name"]
    assert json.dumps(substitute({"x": 1.5}, row)) == '{"x": 1.5}'
