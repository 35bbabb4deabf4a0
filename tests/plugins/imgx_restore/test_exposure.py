"""``restore.exposure`` on darkened real photos, through the real registry, weights and backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from skimage.metrics import structural_similarity

from _support import default_registry, frozen, load_rgba_pack, real_photo, write_recipe
from imgx import Item, StageContext
from imgx.runner import run_recipe
from imgx_restore import ExposureLearned, ExposureLearnedParams, enhance_arrays
from imgx_restore.ops import mean_luma

from .conftest import darken


def make(backend: str = "eager", batch_size: int = 4, **params) -> ExposureLearned:
    return ExposureLearned(
        ExposureLearnedParams(**params),
        StageContext(backend=backend, batch_size=batch_size, registry=default_registry()),
    )


def items(*images: np.ndarray, alpha: np.ndarray | None = None) -> list[Item]:
    return [Item(f"sku-{i}", "memory", frozen(image), alpha) for i, image in enumerate(images)]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def spread(image: np.ndarray) -> float:
    """The 5..95 percentile range of luma: how much of the tonal range the photo uses."""
    y = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.percentile(y, 95) - np.percentile(y, 5))


@pytest.fixture(scope="module")
def stage() -> ExposureLearned:
    """An eager stage with the default parameters (enhances images darker than mean luma 0.4)."""
    return make()


@pytest.mark.parametrize("name", ["coffee", "astronaut", "chelsea"])
def test_darkened_photos_get_brighter_wider_and_closer_to_the_original(stage, name) -> None:
    """``0.3 * x ** 2``: measured at 200 px (coffee, astronaut, chelsea): mean 17.7/23.1/17.7 -> 112.5/118.8/145.0
    (originals 98.6/114.6/115.3), 5..95 % luma range 48/55/28 -> 128/192/74, SSIM to the original 0.19/0.28/0.18 ->
    0.64/0.72/0.70."""
    original = real_photo(name, 200)
    dark = darken(original)
    (out,) = stage(items(dark))
    assert out.image.shape == dark.shape
    assert out.image.mean() > 3 * dark.mean()
    assert spread(out.image) > 2 * spread(dark)
    assert ssim(original, out.image) > ssim(original, dark) + 0.3


def test_the_stage_gives_neuro_low_lights_result(original_zerodce) -> None:
    dark = darken(real_photo("rocket", 111))
    (out,) = make(only_if_darker_than=None)(items(dark))
    x = torch.from_numpy(dark.transpose(2, 0, 1) / np.float32(255.0))[None]
    with torch.inference_mode():
        expected = original_zerodce(x)[0][0].permute(1, 2, 0).numpy()
    truncated = (np.clip(expected, 0, 1) * 255).astype(np.uint8)  # the original's conversion
    diff = out.image.astype(int) - truncated
    assert diff.min() >= 0 and diff.max() <= 1  # rounding instead of truncation: at most one level brighter


def test_well_exposed_images_are_skipped_and_alpha_weights_the_test(stage) -> None:
    bright, dark = real_photo("coffee", 96), darken(real_photo("coffee", 96))
    assert mean_luma(bright) > 0.4 > mean_luma(dark)
    outs = stage(items(bright, dark))
    assert outs[0].image is not None and np.array_equal(outs[0].image, bright)
    assert outs[1].image.mean() > 2 * dark.mean()
    assert np.array_equal(make(only_if_darker_than=None)(items(bright))[0].image, bright) is False

    # a dark product on a white background: the image is bright on average, the product (alpha) is not
    rgb, alpha = load_rgba_pack()
    product = darken(rgb)
    image = np.where(alpha[..., None] > 0, product, 255).astype(np.uint8)
    assert mean_luma(image) > 0.4 > mean_luma(image, alpha)
    (skipped,) = stage(items(image))
    (lit,) = stage(items(image, alpha=alpha))
    assert np.array_equal(skipped.image, image)
    assert lit.alpha is not None and np.array_equal(lit.alpha, alpha)
    opaque = alpha > 128
    assert lit.image[opaque].mean() > 2 * image[opaque].mean()


def test_strength_blends_between_the_photo_and_the_result() -> None:
    dark = darken(real_photo("astronaut", 80))
    (zero,) = make(strength=0.0)(items(dark))
    assert np.array_equal(zero.image, dark)
    full = make()(items(dark))[0].image.astype(float)
    half = make(strength=0.5)(items(dark))[0].image.astype(float)
    assert np.abs(half - (dark + full) / 2).max() <= 1.0


def test_tiny_grayscale_and_batches_are_handled_per_item(stage) -> None:
    rng = np.random.default_rng(4)
    tiny = [rng.integers(0, 60, shape, dtype=np.uint8) for shape in [(1, 1, 3), (3, 5, 3), (1, 9, 3), (2, 2, 3)]]
    outs = stage(items(*tiny))
    assert [o.image.shape for o in outs] == [t.shape for t in tiny]
    assert all(o.image.mean() > t.mean() for o, t in zip(outs, tiny, strict=True))

    gray = np.repeat(darken(real_photo("grace_hopper", 90))[..., :1], 3, axis=2)
    (out,) = stage(items(gray))
    assert np.array_equal(out.image[..., 0], out.image[..., 1]) and np.array_equal(out.image[..., 1], out.image[..., 2])
    assert out.image.mean() > 2 * gray.mean()

    photos = [darken(real_photo(n, 72)) for n in ("coffee", "chelsea", "rocket")]
    batched = stage(items(*photos))
    for photo, out in zip(photos, batched, strict=True):
        assert np.abs(out.image.astype(int) - stage(items(photo))[0].image).max() <= 1


def test_large_images_run_in_tiles_close_to_the_whole_run() -> None:
    """Tiles of 96, overlap 32, on a 160 x 240 photo: measured mean difference to the whole run 0.08 levels, max 6."""
    dark = darken(real_photo("chelsea", 240))
    whole = make()(items(dark))[0].image
    tiled_stage = make(tile=96, overlap=32, batch_size=16)
    tiled = tiled_stage(items(dark))[0].image
    # 2 x 4 tiles of one shape; on the CPU a call holds at most CPU_CALL_PIXELS (7 tiles of 96 x 96)
    assert tiled_stage.shapes_seen == {(7, 3, 96, 96): 1, (1, 3, 96, 96): 1}
    diff = np.abs(tiled.astype(int) - whole)
    assert diff.mean() < 0.15 and diff.max() <= 8, (diff.mean(), diff.max())


def test_enhance_arrays_and_params_check_their_inputs(stage) -> None:
    with pytest.raises(ValueError, match=r"got uint16 \(4, 4, 3\) for the image of restore.exposure; expected"):
        enhance_arrays([np.zeros((4, 4, 3), np.uint16)], stage.infer_images)
    with pytest.raises(ValueError, match=r"got strength 2; expected 0\.\.1"):
        enhance_arrays([], stage.infer_images, strength=2)
    assert enhance_arrays([], stage.infer_images) == []
    for params, message in [
        ({"strength": 1.5}, "less than or equal to 1"),
        ({"only_if_darker_than": 0}, "greater than 0"),
        ({"tile": 32, "overlap": 32}, "expected overlap < tile"),
        ({"max_side": 512}, "Extra inputs"),
    ]:
        with pytest.raises(ValidationError, match=message):
            ExposureLearnedParams(**params)
    assert ExposureLearnedParams(only_if_darker_than=None).only_if_darker_than is None


def test_onnxruntime_gives_the_eager_pixels(stage) -> None:
    photos = [darken(real_photo("coffee", 100)), darken(real_photo("astronaut", 64))]
    ort = make("onnxruntime")
    assert ort.choice.name == "onnxruntime"
    for a, b in zip(ort(items(*photos)), stage(items(*photos)), strict=True):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1
    ort.close()


def test_an_empty_image_fails_alone_with_a_message(stage) -> None:
    with pytest.raises(ValueError, match=r"got uint8 \(3, 0, 3\) for the image of item 'sku-0' \(restore.exposure\)"):
        stage(items(np.zeros((3, 0, 3), np.uint8)))


@pytest.mark.slow
def test_a_huge_image_runs_in_bounded_tiles() -> None:
    """A darkened photo enlarged to 1500 x 2250 (3.4 MP): default 512 tiles (4 x 5, one shape)."""
    from PIL import Image

    dark = darken(np.asarray(Image.fromarray(real_photo("chelsea", 451)).resize((2250, 1500))))
    stage = make(batch_size=4)
    (out,) = stage(items(dark))
    assert out.image.shape == dark.shape and out.image.mean() > 3 * dark.mean()
    assert stage.shapes_seen == {(1, 3, 512, 512): 20}  # one 512 px tile per call on the CPU


def _run_exposure_recipe(tmp_path, uses: str):
    """``imgx run`` of a one-stage recipe using ``uses`` on one darkened photo; the run summary and the output."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(darken(real_photo("coffee", 64))).save(catalog / "dark.png")
    out = tmp_path / "out"
    recipe = {
        "version": 1,
        "name": "exposure-test",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 1, "backend": "eager"},
        "stages": [{"id": "lit", "uses": uses}],
    }
    summary = run_recipe(write_recipe(tmp_path, recipe))
    with Image.open(out / "dark" / "lit.png") as png:
        return summary, np.asarray(png.convert("RGB"))


def test_a_recipe_runs_the_stage_by_its_name(tmp_path) -> None:
    summary, image = _run_exposure_recipe(tmp_path, "restore.exposure")
    assert summary.items == 1 and summary.items_failed == 0 and summary.exit_code == 0
    assert image.mean() > 3 * darken(real_photo("coffee", 64)).mean()


# the deprecated alias: recipes written before the rename keep running, with a warning
def test_the_old_name_still_works_in_a_recipe_with_a_deprecation_warning(tmp_path) -> None:
    with pytest.warns(DeprecationWarning, match="color.exposure_learned"):
        summary, _ = _run_exposure_recipe(tmp_path, "color.exposure_learned")
    assert summary.items == 1 and summary.items_failed == 0 and summary.exit_code == 0
