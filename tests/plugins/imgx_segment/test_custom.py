"""``segment.onnx``: a team's own ONNX network. rembg's ``u2netp.onnx`` (the one such file the project can get) run
through it gives ``segment.product``'s masks on real photos; pins, conventions and bad parameters."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from _support import default_registry, frozen, write_recipe
from imgx import Item, StageContext, StageError
from imgx.ledger import read_ledger
from imgx_segment import SegmentOnnx, SegmentOnnxParams, SegmentProduct, SegmentProductParams
from imgx_segment.custom import PRESETS
from imgx_segment.product import LOW_CONFIDENCE


def context() -> StageContext:
    return StageContext(backend="onnxruntime", batch_size=4, registry=default_registry())


def run(stage, images: list[np.ndarray]) -> list[Item]:
    items = [Item(f"sku-{i}", "memory", frozen(image)) for i, image in enumerate(images)]
    out = stage(items)
    assert all(after.image is before.image for before, after in zip(items, out, strict=True))
    return out


def masks(stage, images: list[np.ndarray]) -> list[np.ndarray]:
    return [item.alpha for item in run(stage, images)]


def assert_same_masks(ours: list[np.ndarray], built_in: list[np.ndarray]) -> None:
    for mine, reference in zip(ours, built_in, strict=True):
        difference = np.abs(mine.astype(int) - reference.astype(int))
        assert difference.max() <= 2 and difference.mean() < 0.05, (difference.max(), difference.mean())
        assert (reference >= 128).mean() > 0.01  # a real product mask, not two empty ones


@pytest.mark.parametrize("how", ["model_file", "model", "explicit"])
def test_rembg_u2netp_through_the_onnx_path_gives_segment_products_masks(photos, onnx_file: Path, how: str) -> None:
    # segment.product's default closed-form matting, asked for here (segment.onnx leaves the network's edge alone)
    post = {"min_island": 0.05, "refine_radius": 2, "matting": "closed_form"}
    given = {
        "model_file": {"model_file": str(onnx_file), "preset": "u2net"},
        "model": {"model": "u2netp", "preset": "u2net"},
        "explicit": {"model_file": str(onnx_file), **PRESETS["u2net"]},
    }[how]
    images = [photos["coffee"], photos["rocket"], photos["astronaut"]]
    ours = masks(SegmentOnnx(SegmentOnnxParams(**given, **post), context()), images)
    built_in = masks(SegmentProduct(SegmentProductParams(**post), context()), images)
    assert_same_masks(ours, built_in)


def test_tta_flip_through_the_onnx_path_gives_segment_products_masks_and_confidence(photos) -> None:
    """The same ``tta: flip`` and ``min_mask_confidence`` on both stages: the same masks (the plain path's tolerance),
    the same confidence per photo, the same ``low_confidence`` flag; and the flip does change the masks."""
    images = [photos["coffee"], photos["rocket"], photos["astronaut"]]
    post = {"min_island": 0.05, "refine_radius": 2, "matting": "none"}
    plain = run(SegmentProduct(SegmentProductParams(**post), context()), images)
    built_in = run(SegmentProduct(SegmentProductParams(**post, tta="flip"), context()), images)
    ranked = sorted(item.metrics["confidence"] for item in built_in)
    least = (ranked[0] + ranked[1]) / 2  # between the least confident photo and the next
    built_in = run(
        SegmentProduct(SegmentProductParams(**post, tta="flip", min_mask_confidence=least), context()), images
    )
    ours = run(
        SegmentOnnx(
            SegmentOnnxParams(model="u2netp", preset="u2net", **post, tta="flip", min_mask_confidence=least), context()
        ),
        images,
    )
    assert_same_masks([i.alpha for i in ours], [i.alpha for i in built_in])
    assert any(not np.array_equal(a.alpha, b.alpha) for a, b in zip(plain, built_in, strict=True))  # flip did work
    for mine, reference in zip(ours, built_in, strict=True):
        assert 0.0 < reference.metrics["confidence"] <= 1.0
        assert mine.metrics["confidence"] == pytest.approx(reference.metrics["confidence"], abs=2e-3)
        assert (LOW_CONFIDENCE in mine.flags) == (LOW_CONFIDENCE in reference.flags)
    assert sum(LOW_CONFIDENCE in item.flags for item in ours) == 1


def test_every_item_gets_a_confidence_and_the_new_parameters_keep_the_hash(photos) -> None:
    params = SegmentOnnxParams(model="u2netp", preset="u2net")
    assert params.matting == "none" and "matting" not in params.fingerprint()  # the network's own edge, as before
    assert SegmentOnnxParams(model="u2netp", preset="u2net", matting="closed_form").fingerprint()["matting"] == (
        "closed_form"
    )
    (item,) = run(SegmentOnnx(params, context()), [photos["coffee"]])
    (reference,) = run(SegmentProduct(SegmentProductParams(), context()), [photos["coffee"]])
    assert item.metrics["confidence"] == pytest.approx(reference.metrics["confidence"], abs=2e-3)
    assert item.flags == ()
    assert "tta" not in params.fingerprint() and "min_mask_confidence" not in params.fingerprint()
    flipped = SegmentOnnxParams(model="u2netp", preset="u2net", tta="flip", min_mask_confidence=0.5).fingerprint()
    assert (flipped["tta"], flipped["min_mask_confidence"]) == ("flip", 0.5)


def test_flip_scales_on_a_network_with_a_fixed_input_size_says_so(photos) -> None:
    """rembg's ``u2netp.onnx`` is exported at 1 x 3 x 320 x 320: ``flip_scales`` would run it at 384."""
    stage = SegmentOnnx(SegmentOnnxParams(model="u2netp", preset="u2net", tta="flip_scales"), context())
    with pytest.raises(StageError, match=r"fixed at 320 x 320 but tta 'flip_scales' .* runs it at 384 x 384; use tta"):
        masks(stage, [photos["coffee"]])


def test_a_pinned_sha256_is_checked_and_a_missing_file_is_named(onnx_file: Path, tmp_path: Path, photos) -> None:
    right = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    copy = tmp_path / "net.onnx"
    shutil.copyfile(onnx_file, copy)
    pinned = SegmentOnnx(SegmentOnnxParams(model_file=str(copy), preset="u2net", sha256=right.upper()), context())
    assert masks(pinned, [photos["coffee"]])[0].max() == 255
    wrong = SegmentOnnx(SegmentOnnxParams(model_file=str(copy), preset="u2net", sha256="0" * 64), context())
    with pytest.raises(StageError, match=rf"has sha256 {right}, not the pinned 0000"):
        masks(wrong, [photos["coffee"]])
    gone = SegmentOnnx(SegmentOnnxParams(model_file=str(tmp_path / "nope.onnx"), preset="u2net"), context())
    with pytest.raises(StageError, match=r"nope.onnx does not exist; fix the path \(relative to the recipe\)"):
        masks(gone, [photos["coffee"]])


def test_a_logit_output_goes_through_a_sigmoid(onnx_file: Path, photos) -> None:
    """``sigmoid: true`` on a network whose output is already 0..1 squeezes it into 0.5..0.73: after min-max
    normalisation the product is still where it was (the transform is monotonic)."""
    plain = masks(SegmentOnnx(SegmentOnnxParams(model="u2netp", preset="u2net"), context()), [photos["coffee"]])[0]
    squeezed = SegmentOnnx(SegmentOnnxParams(model="u2netp", preset="u2net", sigmoid=True), context())
    mask = masks(squeezed, [photos["coffee"]])[0]
    agree = ((mask >= 128) == (plain >= 128)).mean()
    assert agree > 0.97 and not np.array_equal(mask, plain)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"preset": "u2net"}, "give exactly one of model_file"),
        ({"model": "u2netp", "model_file": "x.onnx", "preset": "u2net"}, "give exactly one of model_file"),
        ({"model": "u2netp"}, "no preset and no input_size, mean, std, output, sigmoid"),
        ({"model": "u2netp", "input_size": 320, "mean": [0.5, 0.5, 0.5]}, "no preset and no std, output, sigmoid"),
        ({"model": "u2netp", "preset": "u2net", "std": [1, 0, 1]}, "std may not contain 0"),
        ({"model": "u2netp", "preset": "u2net", "sha256": "abc"}, "expected 64 hexadecimal digits"),
        ({"model": "u2netp", "preset": "sam"}, "Input should be 'u2net', 'isnet', 'birefnet' or 'rmbg'"),
    ],
)
def test_bad_parameters_say_what_to_set(given: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SegmentOnnxParams(**given)


def test_an_output_the_network_does_not_have_is_named(photos) -> None:
    stage = SegmentOnnx(SegmentOnnxParams(model="u2netp", preset="u2net", output=7), context())
    with pytest.raises(StageError, match="has 1 inputs and 7 outputs; expected one image input and an output number 7"):
        masks(stage, [photos["coffee"]])


def test_a_recipe_runs_a_model_file_next_to_it(onnx_file: Path, photo_catalog: Path, tmp_path: Path) -> None:
    """``imgx run`` with ``model_file`` relative to the recipe, then ``segment.cutout``: every item gets a cut-out."""
    from imgx.runner import run_recipe

    count = len(list(photo_catalog.rglob("*.jpg")))
    recipe_dir = tmp_path / "recipe"
    (recipe_dir / "models").mkdir(parents=True)
    shutil.copyfile(onnx_file, recipe_dir / "models" / "mine.onnx")
    document = {
        "version": 1,
        "name": "own-model",
        "input": {"path": str(photo_catalog)},
        "output": {"dir": str(tmp_path / "out"), "format": "png", "naming": "{output}/{sku}.{ext}"},
        "execution": {"workers": 1},
        "stages": [
            {"id": "mask", "uses": "segment.onnx", "with": {"model_file": "models/mine.onnx", "preset": "u2net"}},
            {"id": "cut", "uses": "segment.cutout", "needs": ["mask"]},
        ],
        "outputs": ["cut"],
    }
    summary = run_recipe(write_recipe(recipe_dir, yaml.safe_dump(document)))
    assert (summary.items, summary.outputs_ok) == (count, count) and count >= 4
    confidences = [json.loads(row["metrics"])["mask.confidence"] for row in read_ledger(tmp_path / "out").to_pylist()]
    assert len(confidences) == count and all(0.0 < c <= 1.0 for c in confidences), confidences
    from PIL import Image

    written = sorted((tmp_path / "out" / "cut").rglob("*.png"))
    assert len(written) == count
    for path in written:
        with Image.open(path) as image:
            alpha = np.asarray(image.getchannel("A"))
        assert image.mode == "RGBA" and alpha.min() == 0 and alpha.max() == 255
