"""``imgx report`` lists the least confident masks of a real ``segment.product`` run (``imgx run`` through the CLI,
real photos and U2-Netp through ONNX Runtime), and the lowest items of any metric with ``--lowest``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import load_rgba_pack, real_photo, write_recipe
from imgx.ledger import read_ledger


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of ``imgx run``: ``segment.product`` (tta flip) over four real photos and a flat grey
    frame, whose mask is empty (no product: confidence 0)."""
    from typer.testing import CliRunner

    from imgx.cli import app

    root = tmp_path_factory.mktemp("lowest")
    catalog = root / "catalog"
    catalog.mkdir()
    for name in ("coffee", "astronaut", "rocket"):
        Image.fromarray(real_photo(name, 320)).save(catalog / f"{name}.png")
    Image.fromarray(load_rgba_pack()[0]).save(catalog / "pack.png")
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(catalog / "grey.png")
    recipe = {
        "version": 1,
        "name": "least-confident",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(root / "out"), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 8, "backend": "onnxruntime"},
        "stages": [{"id": "masked", "uses": "segment.product", "with": {"tta": "flip"}}],
        "outputs": ["masked"],
    }
    result = CliRunner().invoke(app, ["run", str(write_recipe(root, recipe))], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root / "out"


def table(stdout: str, title: str) -> list[list[str]]:
    """The body rows of the rich table titled ``title`` (cells split on the box's vertical bars)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line)
    rows = []
    for line in lines[start + 4 :]:  # title, top border, header, rule
        if not line.strip().startswith("│"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("│").split("│")])
    return rows


def test_the_report_lists_the_least_confident_masks_first(imgx, segmented: Path) -> None:
    confidence = {r["sku"]: json.loads(r["metrics"])["masked.confidence"] for r in read_ledger(segmented).to_pylist()}
    assert confidence["grey"] == 0.0 and min(v for k, v in confidence.items() if k != "grey") > 0.0, confidence
    result = imgx("report", segmented)
    assert result.exit_code == 0, result.output
    rows = table(result.stdout, "least confident: masked.confidence")
    expected = sorted(confidence, key=lambda sku: (confidence[sku], sku))
    assert [row[0] for row in rows] == expected  # all five, lowest first: the flat frame leads
    assert rows[0] == ["grey", "masked", "0", "grey/masked.png"]
    assert [float(row[2]) for row in rows] == pytest.approx([confidence[s] for s in expected], abs=6e-4)


def test_lowest_count_and_lowest_of_another_metric(imgx, segmented: Path) -> None:
    two = imgx("report", segmented, "--lowest-count", "2")
    assert len(table(two.stdout, "least confident: masked.confidence")) == 2
    only = imgx("report", segmented, "--no-metrics", "--lowest", "masked.confidence", "--lowest", "q.ssim")
    assert only.exit_code == 0, only.output
    assert "metrics of ok outputs" not in only.stdout
    assert re.search(r"least confident: masked\.confidence \(5 lowest", only.stdout), only.stdout
    assert "no numeric metric q.ssim in the ok outputs" in only.stdout
    quiet = imgx("report", segmented, "--no-metrics")
    assert "least confident" not in quiet.stdout
