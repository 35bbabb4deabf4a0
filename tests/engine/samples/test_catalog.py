"""The demo and benchmark catalog builders: deterministic, idempotent, and their ground truth holds."""

from __future__ import annotations

import csv
import json
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image

from imgx.samples import CatalogImage, build_demo_catalog, build_synthetic_catalog

SIZE = 320
SYNTHETIC = 6


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[CatalogImage]]:
    directory = tmp_path_factory.mktemp("demo")
    return directory, build_demo_catalog(directory, synthetic=SYNTHETIC, size=SIZE, seed=3)


def catalog_files(directory: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def truth_of(directory: pathlib.Path) -> dict[str, dict]:
    manifest = json.loads((directory / "_truth" / "catalog.json").read_text())
    return {record["sku"]: record for record in manifest["images"]}


def test_build_is_deterministic(demo, tmp_path):
    directory, _ = demo
    again = build_demo_catalog(tmp_path / "again", synthetic=SYNTHETIC, size=SIZE, seed=3, workers=1)
    first, second = catalog_files(directory), catalog_files(tmp_path / "again")
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert not different, f"bytes differ between two builds: {different}"
    assert [c.sku for c in again] == [c.sku for c in demo[1]]


def test_other_seed_gives_other_products(demo, tmp_path):
    _, images = demo
    other = build_demo_catalog(tmp_path / "other", synthetic=SYNTHETIC, size=SIZE, seed=4)
    product = next(c for c in images if c.kind == "synthetic")
    assert product.path.read_bytes() != next(c for c in other if c.sku == product.sku).path.read_bytes()


def test_second_build_returns_the_existing_catalog_and_rewrites_nothing(demo):
    """No file is written again (their modification times stand); no wall-clock bound, which a loaded machine
    would make flaky: speed is measured in benchmarks/, not asserted in tests."""
    directory, images = demo
    before = {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}
    again = build_demo_catalog(directory, synthetic=SYNTHETIC, size=SIZE, seed=3)
    assert again == images
    assert {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()} == before


def test_incomplete_catalog_is_rebuilt(tmp_path):
    images = build_synthetic_catalog(tmp_path, count=3, size=64)
    expected = images[1].path.read_bytes()
    images[1].path.unlink()
    assert build_synthetic_catalog(tmp_path, count=3, size=64) == images
    assert images[1].path.read_bytes() == expected


def test_new_parameters_rebuild_and_drop_stale_files(tmp_path):
    build_synthetic_catalog(tmp_path, count=4, size=64)
    images = build_synthetic_catalog(tmp_path, count=2, size=64)
    assert len(images) == 2
    assert sorted(p.name for p in (tmp_path / "products").iterdir()) == ["sku-0001.jpg", "sku-0002.jpg"]
    assert sorted(p.name for p in (tmp_path / "_truth" / "products").iterdir()) == ["sku-0001.png", "sku-0002.png"]


def test_real_photos_decode_to_their_stated_size(demo):
    directory, images = demo
    real = [c for c in images if c.kind == "real"]
    skus = {c.sku for c in real}
    # the offline samples of the packages the demo extra installs
    assert {"real/coffee", "real/rocket", "real/chelsea", "real/grace_hopper", "real/china", "real/flower"} <= skus
    for image in real:
        assert image.path.parent == directory / "real" and image.path.suffix == ".jpg"
        assert image.cast is None
        with Image.open(image.path) as decoded:
            assert decoded.format == "JPEG" and decoded.mode == "RGB"
            assert decoded.size == image.size
            assert max(decoded.size) == SIZE


def test_real_cutout_mask_is_its_alpha(demo):
    _, images = demo
    present = next(c for c in images if c.sku == "real/present")
    image = np.asarray(Image.open(present.path).convert("RGB")).astype(np.float32)
    mask = np.asarray(Image.open(present.mask_path))
    assert mask.shape == image.shape[:2]
    # the gift box is saturated blue; the studio background is near-neutral light grey
    chroma = image.max(axis=2) - image.min(axis=2)
    assert chroma[mask == 255].mean() > 80
    assert chroma[mask == 0].mean() < 12


def test_synthetic_shots_have_mixed_sizes_and_aspects(demo):
    _, images = demo
    sizes = {c.size for c in images if c.kind == "synthetic"}
    assert len(sizes) == SYNTHETIC
    assert {w > h for w, h in sizes} == {True, False} or any(w == h for w, h in sizes)
    assert all(0.75 * SIZE - 1 <= max(size) <= SIZE for size in sizes)


def test_synthetic_mask_is_the_product(demo):
    directory, images = demo
    truth = truth_of(directory)
    for product in (c for c in images if c.kind == "synthetic"):
        assert product.mask_path == directory / "_truth" / f"{product.sku}.png"
        image = np.asarray(Image.open(product.path).convert("RGB")).astype(np.float32)
        mask = np.asarray(Image.open(product.mask_path))
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
        area = (mask > 127).mean()
        assert 0.03 < area < 0.7, f"{product.sku}: mask covers {area:.1%}"
        x0, y0, x1, y1 = truth[product.sku]["truth"]["bbox"]
        ys, xs = np.nonzero(mask)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
        # the mask's edge is an edge of the picture: just inside and just outside differ, everywhere around it
        solid = (mask > 127).astype(np.uint8)
        kernel = np.ones((5, 5), np.uint8)
        inner = solid - cv2.erode(solid, kernel)
        outer = cv2.dilate(solid, kernel) - solid
        inside = image[inner.astype(bool)].mean(axis=0)
        outside = image[outer.astype(bool)].mean(axis=0)
        assert np.abs(inside - outside).max() > 8, f"{product.sku}: no visible edge along the mask"


def test_synthetic_background_carries_the_stated_cast(demo):
    directory, images = demo
    truth = truth_of(directory)
    casts = set()
    for product in (c for c in images if c.kind == "synthetic"):
        t = truth[product.sku]["truth"]
        assert tuple(t["cast"]) == product.cast
        casts.add(t["cast_name"])
        image = np.asarray(Image.open(product.path).convert("RGB")).astype(np.float64) / 255.0
        mask = np.asarray(Image.open(product.mask_path))
        far = cv2.dilate((mask > 0).astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
        top = np.zeros_like(far)
        top[: image.shape[0] // 6] = True
        observed = image[far & top].mean(axis=0)
        # undo the stated exposure; what is left is background x cast x an achromatic gradient
        linear = (t["pivot"] + (observed - t["pivot"]) / t["contrast"]) / t["gain"]
        ratio = linear / (np.array(t["background"]) * np.array(product.cast))
        assert ratio.max() / ratio.min() < 1.03, f"{product.sku}: background {observed} does not match the truth"
        if t["cast_name"] != "neutral":  # and the cast is really visible in the picture
            uncast = linear / np.array(t["background"])
            assert uncast.max() / uncast.min() > 1.08
    assert len(casts) >= 4


def test_exposures_vary(demo):
    directory, images = demo
    truth = truth_of(directory)
    exposures = {truth[c.sku]["truth"]["exposure"] for c in images if c.kind == "synthetic"}
    assert exposures == {"normal", "under", "low_contrast"}
    for product in (c for c in images if c.kind == "synthetic"):
        t = truth[product.sku]["truth"]
        image = np.asarray(Image.open(product.path).convert("L")).astype(np.float32)
        if t["exposure"] == "under":
            assert np.percentile(image, 99) < 200
        if t["exposure"] == "low_contrast":
            assert np.percentile(image, 99.5) - np.percentile(image, 0.5) < 180


def test_manifest_lists_exactly_the_images(demo):
    directory, images = demo
    with open(directory / "manifest.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["sku"] for row in rows] == [c.sku for c in images]
    assert [directory / row["image"] for row in rows] == [c.path for c in images]
    on_disk = {p for p in directory.rglob("*.jpg")} | {p for p in directory.rglob("*.png") if "_truth" not in p.parts}
    assert on_disk == {c.path for c in images}
    for image in images:
        assert image.path.relative_to(directory).with_suffix("").as_posix() == image.sku
        if image.mask_path is not None:
            assert image.mask_path.relative_to(directory).parts[0] == "_truth"


def test_synthetic_catalog_for_benchmarks(tmp_path):
    images = build_synthetic_catalog(tmp_path, count=5, size=96, seed=1, fmt="png")
    assert [c.sku for c in images] == [f"products/sku-{i:04d}" for i in range(1, 6)]
    for image in images:
        assert image.kind == "synthetic" and image.size == (96, 96) and image.path.suffix == ".png"
        with Image.open(image.path) as decoded:
            assert decoded.size == (96, 96) and decoded.mode == "RGB"
        assert image.mask_path is not None and image.mask_path.is_file()
    again = build_synthetic_catalog(tmp_path / "again", count=5, size=96, seed=1, fmt="png")
    assert [c.path.read_bytes() for c in again] == [c.path.read_bytes() for c in images]


def test_bad_parameters_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        build_synthetic_catalog(tmp_path, count=1, fmt="gif")
    with pytest.raises(ValueError, match="count"):
        build_synthetic_catalog(tmp_path, count=-1)
