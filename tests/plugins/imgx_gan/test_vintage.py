"""The ``gan.vintage`` stage on real photos through the real registry, weights and backends: what the look does,
strength, working size and detail, tiling, alpha, odd inputs, batches and parameters."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from scipy import ndimage
from skimage.color import rgb2lab

from _support import default_registry, frozen, load_photo, real_photo
from imgx import Item, StageContext
from imgx.arrays import working_size
from imgx.runtime import tile_boxes
from imgx_gan.vintage import AUTO_TILE, VintageLook, VintageParams, tile_side, vintage_arrays


@pytest.fixture(scope="module")
def stage() -> VintageLook:
    """One eager stage whose ``infer_images`` the tests reuse with their own parameters."""
    return VintageLook(VintageParams(), StageContext(backend="eager", batch_size=4, registry=default_registry()))


def run(stage: VintageLook, images: list[np.ndarray], **params) -> list[np.ndarray]:
    return vintage_arrays(images, VintageParams(**params), stage.infer_images)


def blocks(image: np.ndarray, size: int = 16) -> np.ndarray:
    """``(H, W, 3)`` -> the float32 means of its ``size x size`` blocks: the low-frequency colour of the image."""
    h, w = image.shape[0] // size * size, image.shape[1] // size * size
    return image[:h, :w].astype(np.float32).reshape(h // size, size, w // size, size, 3).mean(axis=(1, 3))


def look(image: np.ndarray) -> dict[str, float]:
    """CIELAB measures of an ``(H, W, 3)`` uint8 RGB image: mean chroma, mean a* (red+ / green-), the 2nd and 98th
    percentiles of L* (black and white points) and the std of L* (contrast)."""
    lab = rgb2lab(image)
    light = lab[..., 0]
    return {
        "chroma": float(np.hypot(lab[..., 1], lab[..., 2]).mean()),
        "red": float(lab[..., 1].mean()),
        "black": float(np.percentile(light, 2)),
        "white": float(np.percentile(light, 98)),
        "contrast": float(light.std()),
    }


@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_the_vintage_look_fades_and_mutes_a_real_photo(stage, name) -> None:
    """The generator's look, measured at 192 px (L*, a*, chroma in CIELAB; coffee | astronaut): less colourful (chroma
    -5.2 | -2.0), less red (a* -6.2 | -1.0), faded: blacks lifted (L* 2nd percentile +1.6 | +3.8), highlights dimmed
    (98th -9.2 | -3.3), contrast lower (L* std -2.2 | -3.3). Asserted with about half those margins."""
    image = frozen(real_photo(name, 192))
    out = run(stage, [image])[0]
    before, after = look(image), look(out)
    change = {key: after[key] - before[key] for key in before}
    assert change["chroma"] < -1.0, change
    assert change["red"] < -0.5, change
    assert change["black"] > 0.5, change
    assert change["white"] < -1.5, change
    assert change["contrast"] < -1.0, change
    assert 5.0 < np.abs(out.astype(np.float32) - image).mean() < 40.0  # a look, not a new picture


def test_strength_zero_is_the_input_and_strength_blends_monotonically(stage) -> None:
    image = frozen(real_photo("coffee", 128))
    assert run(stage, [image], strength=0.0)[0] is image
    large = frozen(real_photo("astronaut", 200))
    assert run(stage, [large], strength=0.0, max_side=64)[0] is large
    full = run(stage, [image], strength=1.0)[0].astype(np.float32)
    distances = []
    for strength in (0.25, 0.5, 0.75):
        out = run(stage, [image], strength=strength)[0].astype(np.float32)
        expected = image + strength * (full - image)
        assert np.abs(out - expected).max() <= 1.0, strength  # one rounding
        distances.append(float(np.abs(out - image).mean()))
    distances.append(float(np.abs(full - image).mean()))
    assert distances == sorted(distances) and distances[0] > 0.5 and distances[-1] > 3 * distances[0]


def test_a_large_photo_runs_at_max_side_and_keeps_its_size_and_detail(stage) -> None:
    image = frozen(real_photo("coffee", 256))
    seen: list[tuple[int, ...]] = []

    def infer(images: list[np.ndarray]) -> list[np.ndarray]:
        seen.extend(x.shape for x in images)
        return stage.infer_images(images)

    sharp = vintage_arrays([image], VintageParams(max_side=128), infer)[0]
    soft = vintage_arrays([image], VintageParams(max_side=128, keep_detail=False), infer)[0]
    assert seen == [(86, 128, 3), (86, 128, 3)]  # 171 x 256 at long side 128
    assert sharp.shape == soft.shape == image.shape

    def detail(x: np.ndarray) -> float:
        return float(ndimage.laplace(x.astype(np.float32).mean(axis=2)).std())

    # measured: the photo 39.8, keep_detail 38.5, the upscaled picture 9.5; the same look at low frequency (0.22)
    assert detail(sharp) > 0.85 * detail(image) and detail(soft) < 0.5 * detail(image)
    assert np.abs(blocks(sharp) - blocks(soft)).mean() < 1.5
    assert np.abs(blocks(sharp) - blocks(image)).mean() > 5.0


def test_a_huge_photo_is_worked_at_max_side_without_growing_the_network_input(stage) -> None:
    image = frozen(np.asarray(Image.fromarray(load_photo("astronaut")).resize((2400, 1800), Image.Resampling.BILINEAR)))
    seen: list[tuple[int, ...]] = []

    def infer(images: list[np.ndarray]) -> list[np.ndarray]:
        seen.extend(x.shape for x in images)
        return stage.infer_images(images)

    out = vintage_arrays([image], VintageParams(max_side=256), infer)[0]
    assert seen == [(192, 256, 3)] and out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(blocks(out, 64) - blocks(image, 64)).mean() > 3.0


@pytest.mark.parametrize("keep_detail", [True, False])
def test_the_full_size_blend_in_bands_equals_it_in_one_piece(stage, monkeypatch, keep_detail) -> None:
    """The blend back at the input size runs in bands of rows (bounded memory); narrow bands give the one-piece
    result (Pillow resamples each band with the taps of the whole enlargement; float rounding may flip a level)."""
    import imgx_gan.vintage as module

    image = frozen(real_photo("astronaut", 200))
    params = VintageParams(max_side=96, strength=0.7, keep_detail=keep_detail)
    whole = vintage_arrays([image], params, stage.infer_images)[0]
    assert image.shape[0] * image.shape[1] <= module.STRIP_PIXELS  # one band by default
    monkeypatch.setattr(module, "STRIP_PIXELS", 200 * 7)  # bands of 7 rows
    banded = vintage_arrays([image], params, stage.infer_images)[0]
    diff = np.abs(banded.astype(np.int16) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_full_resolution_goes_through_tiles_no_larger_than_the_tile(stage) -> None:
    image = frozen(real_photo("chelsea", 300))
    seen: list[tuple[int, ...]] = []

    def infer(images: list[np.ndarray]) -> list[np.ndarray]:
        seen.extend(x.shape for x in images)
        return stage.infer_images(images)

    out = vintage_arrays([image], VintageParams(max_side=None, tile=128, overlap=32), infer)[0]
    assert out.shape == image.shape
    assert len(seen) == len(tile_boxes(*image.shape[:2], 128, 32)) > 4
    assert {shape for shape in seen} == {(128, 128, 3)}
    assert tile_side(2000, 1500, "auto") == AUTO_TILE and tile_side(1024, 700, "auto") is None
    assert (
        tile_side(2000, 1500, "none") is None and tile_side(300, 200, 256) == 256 and tile_side(200, 100, 256) is None
    )


def seam_ratio(image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> float:
    """Mean absolute step across the tiles' inner edges over the mean step everywhere (1 = no different)."""
    f = image.astype(np.float32)
    gx, gy = np.abs(np.diff(f, axis=1)).mean(axis=(0, 2)), np.abs(np.diff(f, axis=0)).mean(axis=(1, 2))
    xs = {x for b in boxes for x in (b[2], b[3]) if 0 < x < image.shape[1]}
    ys = {y for b in boxes for y in (b[0], b[1]) if 0 < y < image.shape[0]}
    return float(np.mean([gx[x - 1] for x in xs] + [gy[y - 1] for y in ys]) / np.mean(np.r_[gx, gy]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_tiles_leave_no_seam_and_keep_the_look_of_the_whole(stage, name) -> None:
    """Tiled (192 px tiles, overlap 64) against untiled, on a 256 px photo that fits both ways.

    Instance norm gives every tile its own statistics, so a tiled result is *not* the untiled one; measured (coffee |
    astronaut): mean abs difference 3.6 | 4.4 (the look itself changes pixels by 10 | 14), 16 px block colours
    3.5 | 3.9 apart, and the change the look makes correlates 0.94 | 0.97 with the untiled change. Seams: the step
    across tile edges over the step everywhere is that of the untiled image (0.76 | 0.90 vs 0.76 | 0.92), while
    tiles without feathering (overlap 0) show them (0.89 | 1.13)."""
    image = frozen(real_photo(name, 256))
    whole = run(stage, [image], max_side=None, tile="auto")[0]
    tiled = run(stage, [image], max_side=None, tile=192, overlap=64)[0]
    hard = run(stage, [image], max_side=None, tile=192, overlap=0)[0]
    boxes = tile_boxes(*image.shape[:2], 192, 64)
    assert len(boxes) > 1
    assert seam_ratio(tiled, boxes) < 1.08 * seam_ratio(whole, boxes)
    assert seam_ratio(hard, boxes) > 1.1 * seam_ratio(whole, boxes)  # the measure does see seams
    assert np.abs(tiled.astype(np.float32) - whole).mean() < 6.0
    change_tiled, change_whole = blocks(tiled) - blocks(image), blocks(whole) - blocks(image)
    assert np.corrcoef(change_tiled.ravel(), change_whole.ravel())[0, 1] > 0.9


def test_alpha_is_carried_through_at_the_input_size(stage) -> None:
    photo = real_photo("rocket", 160)
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[20:-20, 30:-30] = 255
    items = [Item("a", "memory", frozen(photo), frozen(alpha)), Item("b", "memory", frozen(photo[:64, :80]))]
    small = VintageLook(VintageParams(max_side=96), StageContext(backend="eager", registry=default_registry()))
    for result in (stage(items), small(items)):
        assert result[0].alpha is items[0].alpha and result[1].alpha is None
        assert [r.image.shape for r in result] == [i.image.shape for i in items]
        assert result[0].sku == "a" and np.abs(result[0].image.astype(np.float32) - photo).mean() > 3.0


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 200), (37, 23)])
def test_tiny_and_thin_images_keep_their_size(stage, shape) -> None:
    photo = real_photo("astronaut", 64)
    image = frozen(np.asarray(Image.fromarray(photo).resize(shape[::-1], Image.Resampling.BILINEAR)))
    out = run(stage, [image, real_photo("coffee", 64)])[0]
    assert out.shape == image.shape and out.dtype == np.uint8


def test_a_grayscale_photo_runs_and_gets_the_look(stage) -> None:
    from skimage import data

    gray = np.asarray(Image.fromarray(data.camera()).resize((128, 128), Image.Resampling.LANCZOS))
    image = frozen(np.repeat(gray[..., None], 3, axis=2))
    out = run(stage, [image])[0]
    assert out.shape == image.shape and np.abs(out.astype(np.float32) - image).mean() > 3.0


def test_a_batch_of_mixed_sizes_equals_the_items_alone(stage) -> None:
    images = [frozen(real_photo(name, side)) for name, side in (("coffee", 96), ("astronaut", 64), ("chelsea", 99))]
    batched = run(stage, images)
    for image, out in zip(images, batched, strict=True):
        assert np.array_equal(out, run(stage, [image])[0])


@pytest.mark.slow
def test_the_onnxruntime_stage_gives_the_eager_pixels(stage) -> None:
    images = [frozen(real_photo("coffee", 128)), frozen(real_photo("astronaut", 96))]
    ort = VintageLook(VintageParams(), StageContext(backend="onnxruntime", batch_size=2, registry=default_registry()))
    assert ort.choice.name == "onnxruntime"
    for a, b in zip(run(stage, images), vintage_arrays(images, ort.params, ort.infer_images), strict=True):
        assert np.abs(a.astype(np.int16) - b).max() <= 1  # float differences of 1e-6 may flip one rounding
    ort.close()


def test_the_planned_input_is_the_working_size_or_the_tile() -> None:
    assert VintageLook.input_size(VintageParams(), 2000, 1000) == (512, 256)
    assert VintageLook.input_size(VintageParams(), 300, 200) == (300, 200)
    assert VintageLook.input_size(VintageParams(max_side=None), 3000, 2000) == (AUTO_TILE, AUTO_TILE)
    assert VintageLook.input_size(VintageParams(max_side=None, tile=256), 300, 200) == (256, 200)
    assert working_size(5, 3000, 512) == (1, 512)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"strength": 1.5}, "less than or equal to 1"),
        ({"max_side": 8}, "greater than or equal to 32"),
        ({"tile": 32}, "got tile=32; expected 'auto', 'none' or a side >= 64"),
        ({"tile": 128, "overlap": 128}, "got overlap=128 for tile=128; expected overlap < tile"),
        ({"tile": True}, "tile"),
        ({"tile": "big"}, "tile"),
        ({"max_side": None, "tile": "none"}, "got max_side=null with tile='none'; expected a max_side or tiling"),
        ({"style": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(params, words) -> None:
    with pytest.raises(ValidationError, match=words):
        VintageParams(**params)


def test_listing_the_stage_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, imgx_gan.vintage, imgx_gan.models; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
