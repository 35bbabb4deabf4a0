"""``recipes/marketplace-fix.yaml`` on the real-photo catalog with one known violation per file: what the recipe can
repair (background, fill, crop, size, border) is repaired, and its own last node, ``check.marketplace`` with
amazon-main, flags exactly what it cannot (a blurred product, a CMYK source, two products)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from _support import REPO
from imgx.cli import app
from imgx.ledger import read_ledger

UNFIXABLE = {"blurred": "main:blur", "cmyk": "main:color.space", "two-products": "main:product.count"}


def test_the_fix_recipe_repairs_what_it_can_and_flags_the_rest(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "fixed"
    flags = ["--set", f"input.path={catalog}", "--set", f"output.dir={out}", "--no-progress"]
    result = CliRunner().invoke(
        app, ["run", str(REPO / "recipes" / "marketplace-fix.yaml"), *flags], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    rows = {r["sku"]: r for r in read_ledger(out).to_pylist()}
    assert len(rows) == 12 and {r["status"] for r in rows.values()} == {"ok"}
    assert {sku: r["flags"] for sku, r in rows.items() if r["flags"]} == UNFIXABLE
    for row in rows.values():
        with Image.open(out / row["path"]) as image:
            assert image.format == "JPEG" and image.size == (2000, 2000) and image.mode == "RGB"
            corners = [image.getpixel(xy) for xy in ((0, 0), (1999, 0), (0, 1999), (1999, 1999))]
        assert all(min(c) >= 250 for c in corners), (row["sku"], corners)  # white background, also once grey
