"""The README's picture of the review page: a real run, its page, and a PNG screenshot of it in headless Chromium.

The run: the demo catalog's real photos and a few synthetic product shots, plus one tiny shot (flagged ``size.min``)
and one truncated JPEG (it fails at ``decode``); a recipe that enhances each image, checks it against the
``google-merchant`` and ``shopify`` rule packs (``check.marketplace``, ``action: flag``: non-square images get
``warning:aspect``) and writes a square main image. Then ``imgx review`` and
``chromium --headless=new --screenshot``; the PNG is reduced to 256 colours to stay small.

    python benchmarks/review_screenshot.py                  # writes docs/review.png
    python benchmarks/review_screenshot.py --keep build/rv  # keeps the catalog, the run and review.html there
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from PIL import Image

from imgx.review import write_review
from imgx.runner import RunOptions, run_recipe
from imgx.samples import build_demo_catalog

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def build(folder: Path) -> Path:
    """The catalog, the run and its review page under ``folder``; returns the page."""
    catalog = folder / "catalog"
    build_demo_catalog(catalog, synthetic=3, size=480)
    real = sorted((catalog / "real").glob("*.jpg"))
    with Image.open(real[0]) as photo:  # a supplier's thumbnail: under google-merchant's 100 x 100
        photo.convert("RGB").resize((90, 60)).save(catalog / "real" / "tiny-thumbnail.jpg", quality=90)
    data = real[1].read_bytes()
    (catalog / "real" / "truncated-upload.jpg").write_bytes(data[: len(data) // 3])  # fails at decode
    recipe = {
        "version": 1,
        "name": "review-demo",
        "input": {"path": str(catalog), "pattern": "**/*.jpg"},
        "output": {"dir": str(folder / "out"), "format": "jpeg", "quality": 85},
        "execution": {"workers": 1, "max_failures": 5},
        "stages": [
            {"id": "enhanced", "uses": "color.enhance", "with": {"white_balance": "auto", "auto_contrast": True}},
            {
                "id": "checked",
                "uses": "check.marketplace",
                "needs": ["enhanced"],
                "with": {"rules": ["google-merchant", "shopify"], "action": "flag"},
            },
            {"id": "main", "uses": "geometry.fit", "needs": ["enhanced"], "with": {"size": 800}},
        ],
        "outputs": ["checked", "main"],
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    run_recipe(path, RunOptions())
    page = folder / "review.html"
    summary = write_review(folder / "out", page, limit=200, title="spring catalog (demo)")
    print(f"review page: {summary.rows} rows ({summary.failed} failed, {summary.flagged} flagged): {page}")
    return page


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 900) -> None:
    """A ``width`` x ``height`` PNG of ``page`` in headless Chromium, reduced to 256 colours."""
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--screenshot={shot}",
                f"--window-size={width},{height}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with Image.open(shot) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    small.save(buffer, "PNG", optimize=True)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(buffer.getvalue())
    print(f"screenshot: {png} ({len(buffer.getvalue()) // 1024} KiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "review.png", help="the PNG to write")
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp folder, removed)")
    args = parser.parse_args(argv)
    if shutil.which(CHROMIUM) is None:
        print(f"{CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 2
    folder = args.keep or Path(tempfile.mkdtemp(prefix="imgx-review-"))
    try:
        screenshot(build(folder), args.out)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
