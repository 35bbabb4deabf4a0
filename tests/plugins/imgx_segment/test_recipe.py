"""``segment.product`` -> ``segment.cutout`` through ``imgx run`` on real JPEGs: RGBA PNG and WebP files, and a
flat image that fails alone (no empty or fully transparent file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from _support import real_photo, write_recipe
from imgx.ledger import read_ledger
from imgx.runner import run_recipe


def test_cutouts_end_to_end(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(real_photo("coffee", 160)).save(catalog / "coffee.jpg", quality=92)
    Image.fromarray(real_photo("rocket", 120)).save(catalog / "rocket.jpg", quality=92)
    Image.new("RGB", (64, 48), (250, 250, 250)).save(catalog / "blank.jpg")
    out = tmp_path / "out"
    recipe = {
        "version": 1,
        "name": "cutouts-test",
        "input": {"path": str(catalog), "pattern": "*.jpg"},
        "output": {
            "dir": str(out),
            "format": "png",
            "naming": "{sku}/{output}.{ext}",
            "overrides": {"web": {"format": "webp"}},
        },
        "execution": {"workers": 1, "batch_size": 4, "backend": "onnxruntime", "max_failures": 0.5},
        "stages": [
            {"id": "masked", "uses": "segment.product", "with": {"min_island": 0.05}},
            {"id": "cutout", "uses": "segment.cutout", "needs": ["masked"], "with": {"crop": True, "margin": 0.05}},
            {"id": "web", "uses": "segment.cutout", "needs": ["masked"]},
        ],
        "outputs": ["cutout", "web"],
    }
    summary = run_recipe(write_recipe(tmp_path, recipe))
    rows = {(r["sku"], r["output"]): r for r in read_ledger(out).to_pylist()}
    assert summary.items == 3 and summary.items_failed == 1 and summary.exit_code == 0
    for sku in ("blank",):
        for output in ("cutout", "web"):
            row = rows[(sku, output)]
            assert row["status"] == "failed" and "empty mask" in row["error"], row
            assert not (out / sku / f"{output}.png").exists() and not (out / sku / f"{output}.webp").exists()
    with Image.open(out / "coffee" / "cutout.png") as png:
        assert png.mode == "RGBA" and png.size[0] < 160  # cropped to the cup and saucer
        rgba = np.asarray(png)
    assert rgba[..., 3].max() == 255 and rgba[..., 3].min() == 0
    assert rgba[rgba[..., 3] == 0][:, :3].max() == 0  # hidden pixels cleared
    with Image.open(out / "rocket" / "web.webp") as webp:
        assert webp.mode == "RGBA" and webp.size == (120, 80)
        alpha = np.asarray(webp)[..., 3]
    assert 0 < (alpha >= 128).mean() < 0.1  # the rocket only
