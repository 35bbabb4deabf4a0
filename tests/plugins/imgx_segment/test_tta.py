"""``segment.product``'s test-time augmentation (``tta``) and its confidence per mask, on composites of the ground-truth
set (benchmarks/segment_eval.py) with the real ``u2netp.onnx`` through ONNX Runtime, and through a real ``imgx run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import default_registry, write_recipe
from imgx import Item, StageContext
from imgx.ledger import read_ledger
from imgx.runner import run_recipe
from imgx_segment import SegmentOnnxParams, SegmentProduct, SegmentProductParams, mask_from_prediction
from imgx_segment.preprocess import network_input
from imgx_segment.product import LOW_CONFIDENCE
from imgx_segment.tta import SECOND_SIDE, mask_confidence, merge_views, predict, second_side, views
from segment_eval import build_testset, iou

# build_testset(0, 32): present-white, horse-gradient, bottle-texture, box-photo (0..3), box-white (11, an easy mask:
# IoU 0.998) and bag-texture (31, the set's worst: 0.879). TTA is compared with one pass on all six.
EASY, BUSY = 11, 31
USED = (0, 1, 2, 3, EASY, BUSY)


@pytest.fixture(scope="module")
def composites() -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The composites the tests use, by their index in ``build_testset(0, 32)`` (unused ones are left ``None``)."""
    testset = build_testset(seed=0, n=32)
    return [item if index in USED else None for index, item in enumerate(testset)]


def stage(**params: object) -> SegmentProduct:
    return SegmentProduct(
        SegmentProductParams(**params),
        StageContext(backend="onnxruntime", batch_size=8, registry=default_registry()),
    )


@pytest.fixture(scope="module")
def flip_stage() -> SegmentProduct:
    return stage(tta="flip")


@pytest.fixture(scope="module")
def runs(composites: list, flip_stage: SegmentProduct) -> dict[str, dict[int, Item]]:
    """The stage's items for each ``tta`` (none, flip) on the used composites, by index."""
    items = [Item(composites[i][2], "testset", composites[i][0]) for i in USED]
    return {
        "none": dict(zip(USED, stage()(items), strict=True)),
        "flip": dict(zip(USED, flip_stage(items), strict=True)),
    }


def test_flip_is_as_good_as_one_pass_or_better(composites: list, runs: dict[str, dict[int, Item]]) -> None:
    scores = {mode: [iou(out[i].alpha, composites[i][1]) for i in USED] for mode, out in runs.items()}
    assert np.mean(scores["flip"]) >= np.mean(scores["none"]) - 0.002, scores
    assert min(scores["flip"]) >= min(scores["none"]) - 0.01, scores


def test_the_flip_view_is_the_network_on_the_mirrored_photo(
    composites: list, flip_stage: SegmentProduct, runs: dict[str, dict[int, Item]]
) -> None:
    image = composites[3][0]  # the box on a photo: an asymmetric scene
    flipped = np.ascontiguousarray(image[:, ::-1])
    # mirroring the network input is preparing the mirrored photo, bit for bit
    assert np.array_equal(views(image, "flip")[1], network_input(flipped))
    segment = flip_stage
    plain = segment.infer_images([network_input(image)])[0][:, :, 0]
    mirrored = segment.infer_images([network_input(flipped)])[0][:, :, 0]
    expected = (plain + mirrored[:, ::-1]) / np.float32(2)
    merged = predict([image], "flip", segment.infer_images)[0]
    assert np.abs(merged - expected).max() < 1e-5  # one batch of two against two single passes
    assert not np.allclose(plain, mirrored[:, ::-1], atol=1e-3)  # the views do differ
    alpha = runs["flip"][3].alpha  # the stage's own mask, from a batch of six photos (twelve views)
    want = mask_from_prediction(image, expected, segment.params)
    assert np.abs(alpha.astype(int) - want.astype(int)).max() <= 1
    assert np.array_equal(merge_views([plain[:, :, None]], "none"), plain)


def test_flip_scales_runs_two_sides_and_merges_at_320() -> None:
    image = np.zeros((50, 70, 3), np.uint8)
    image[10:40, 20:50] = (200, 40, 40)
    shapes = [v.shape for v in views(image, "flip_scales")]
    assert shapes == [(320, 320, 3), (320, 320, 3), (384, 384, 3), (384, 384, 3)]
    preds = [np.full((s[0], s[1], 1), k, np.float32) for k, s in enumerate(shapes)]
    merged = merge_views(preds, "flip_scales")
    assert merged.shape == (320, 320) and np.allclose(merged, 1.5)
    with pytest.raises(ValueError, match="expected one of none, flip, flip_scales"):
        views(image, "rotate")


def test_another_networks_side_mean_and_std_go_through_the_same_views() -> None:
    """``segment.onnx``'s families: ISNet's 1024 px and (0.5, 1.0) normalisation, its second side 1216."""
    image = np.zeros((50, 70, 3), np.uint8)
    image[10:40, 20:50] = (200, 40, 40)
    assert (second_side(320), second_side(1024)) == (SECOND_SIDE, 1216)
    got = views(image, "flip_scales", 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    assert [v.shape[0] for v in got] == [1024, 1024, 1216, 1216]
    assert np.array_equal(got[0], network_input(image, 1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)))
    assert np.array_equal(got[1], got[0][:, ::-1])
    ramp = np.tile(np.linspace(0, 1, 1024, dtype=np.float32), (1024, 1))
    mirrored = np.ascontiguousarray(ramp[:, ::-1])  # what a network that copies its input would say of the mirror
    merged = merge_views([ramp, mirrored, np.ones((1216, 1216), np.float32), np.ones((1216, 1216), np.float32)],
                         "flip_scales", 1024)  # fmt: skip
    assert merged.shape == (1024, 1024) and np.allclose(merged, (2 * ramp + 2) / 4)


def test_confidence_is_a_share_higher_on_an_easy_white_composite_than_a_busy_one(
    composites: list, runs: dict[str, dict[int, Item]]
) -> None:
    for out in runs.values():
        confidence = {i: item.metrics["confidence"] for i, item in out.items()}
        assert all(0.0 <= c <= 1.0 for c in confidence.values()), confidence
        assert confidence[EASY] > confidence[BUSY] + 0.02, confidence
    assert iou(runs["none"][EASY].alpha, composites[EASY][1]) > iou(runs["none"][BUSY].alpha, composites[BUSY][1])
    assert mask_confidence(np.zeros((320, 320), np.float32)) == 0.0  # no product
    sure = np.zeros((320, 320), np.float32)
    sure[100:200, 100:200] = 1.0
    assert mask_confidence(sure) == 1.0
    unsure = sure.copy()
    unsure[80:100, 100:200] = 0.5  # a grey band of a fifth of the product's area
    assert mask_confidence(unsure) == pytest.approx(100 * 100 / (100 * 120))


def test_min_mask_confidence_flags_and_changes_no_pixel(composites: list, runs: dict[str, dict[int, Item]]) -> None:
    items = [Item(composites[i][2], "testset", composites[i][0]) for i in (EASY, BUSY)]
    confidence = [runs["none"][i].metrics["confidence"] for i in (EASY, BUSY)]
    flagged = stage(min_mask_confidence=(confidence[0] + confidence[1]) / 2)(items)
    assert [LOW_CONFIDENCE in item.flags for item in flagged] == [False, True]
    assert all(LOW_CONFIDENCE not in item.flags for item in runs["none"].values())
    for item, plain in zip(flagged, (runs["none"][EASY], runs["none"][BUSY]), strict=True):
        assert np.array_equal(item.alpha, plain.alpha) and item.metrics["confidence"] == plain.metrics["confidence"]


def test_new_parameters_leave_the_hash_at_their_defaults() -> None:
    base = SegmentProductParams().fingerprint()
    assert "tta" not in base and "min_mask_confidence" not in base
    assert SegmentProductParams(tta="flip").fingerprint()["tta"] == "flip"
    assert SegmentProductParams(min_mask_confidence=0.8).fingerprint()["min_mask_confidence"] == 0.8
    assert "tta" not in SegmentOnnxParams(model="u2netp", preset="u2net").fingerprint()
    assert SegmentOnnxParams(model="u2netp", preset="u2net", tta="flip").fingerprint()["tta"] == "flip"


def test_confidence_lands_in_the_ledger_through_imgx_run(composites: list, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for index in (EASY, BUSY):
        image, _, name = composites[index]
        Image.fromarray(image).save(catalog / f"{name}.png")
    out = tmp_path / "out"
    recipe = {
        "version": 1,
        "name": "tta-test",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 4, "backend": "onnxruntime", "max_failures": 0.0},
        "stages": [
            {"id": "masked", "uses": "segment.product", "with": {"tta": "flip", "min_mask_confidence": 0.0}},
            {"id": "cutout", "uses": "segment.cutout", "needs": ["masked"]},
        ],
        "outputs": ["cutout"],
    }
    summary = run_recipe(write_recipe(tmp_path, recipe))
    assert summary.items == 2 and summary.items_failed == 0
    rows = {row["sku"]: row for row in read_ledger(out).to_pylist()}
    confidence = {sku: json.loads(row["metrics"])["masked.confidence"] for sku, row in rows.items()}
    assert set(confidence) == {composites[EASY][2], composites[BUSY][2]}
    assert 0.0 <= confidence[composites[BUSY][2]] < confidence[composites[EASY][2]] <= 1.0, confidence
