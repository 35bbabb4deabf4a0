"""``gan.upscale`` on real photos: what it does to a photo (measured against bicubic), tiling, output sizes, alpha,
``only_below``, and bad input per item. Inputs stay 1..48 px: RRDBNet costs ~36 MFLOP per input pixel."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from skimage.metrics import peak_signal_noise_ratio as psnr

from _support import default_registry, frozen, real_photo
from imgx import Item, StageContext, StageError
from imgx.arrays import resize_plane
from imgx_gan.upscale import Upscale, UpscaleParams, upscale_arrays


@pytest.fixture(scope="module")
def stage() -> Upscale:
    """One eager stage for the module (the network loads once); tests pass their own params to ``upscale_arrays``."""
    built = Upscale(UpscaleParams(), StageContext(backend="eager", batch_size=4, registry=default_registry()))
    yield built
    built.close()


def stage_with(base: Upscale, **params) -> Upscale:
    """A stage with other params that shares ``base``'s loaded backend (no second 16.7M-parameter load)."""
    other = Upscale.__new__(Upscale)
    other.__dict__.update(base.__dict__)
    other.params = UpscaleParams(**params)
    return other


def gradient_energy(image: np.ndarray) -> float:
    """Mean absolute difference of neighbouring luma values: how much fine detail an image has."""
    luma = image.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean())


@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_it_restores_detail_that_bicubic_does_not_and_stays_faithful(stage, name) -> None:
    original = real_photo(name, 128)
    h, w = original.shape[0] // 4 * 4, original.shape[1] // 4 * 4
    original = original[:h, :w]
    small = np.asarray(Image.fromarray(original).resize((w // 4, h // 4), Image.Resampling.BICUBIC))
    bicubic = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))
    upscaled = upscale_arrays([small], UpscaleParams(), stage.infer_tiles)[0]
    assert upscaled.shape == original.shape and upscaled.dtype == np.uint8
    # Sharper: detail (gradient energy) 1.3-1.45x bicubic's here, and nearer the original's (coffee 11.9 vs bicubic
    # 8.9, original 21.1; astronaut 19.5 vs 13.5, original 29.3).
    detail, blurred, truth = gradient_energy(upscaled), gradient_energy(bicubic), gradient_energy(original)
    assert detail >= 1.2 * blurred and abs(detail - truth) < abs(blurred - truth), (detail, blurred, truth)
    # Faithful: scaled back down it is the input again (measured 28.2 / 26.0 dB)...
    back = np.asarray(Image.fromarray(upscaled).resize((w // 4, h // 4), Image.Resampling.BICUBIC))
    assert psnr(small, back) >= 24.0
    # ...and its PSNR against the original is close to bicubic's, not above it: a GAN trades a little PSNR for
    # detail (measured 22.2 vs 22.2 dB, 18.3 vs 19.5 dB).
    assert psnr(original, upscaled) >= psnr(original, bicubic) - 2.5


def test_tiled_equals_untiled_within_what_the_receptive_field_allows(stage) -> None:
    image = real_photo("astronaut", 64)[:40, :40]
    whole = upscale_arrays([image], UpscaleParams(pad=0), stage.infer_tiles)[0]
    tiled = upscale_arrays([image], UpscaleParams(pad=0, tile=24, overlap=8), stage.infer_tiles)[0]  # 4 tiles
    assert tiled.shape == whole.shape == (160, 160, 3)
    diff = np.abs(tiled.astype(np.int16) - whole).max(axis=2)
    # RRDBNet's receptive field is larger than these tiles, so every pixel moves a little (mean 3.8 levels here; far
    # less with 256 px tiles; PSNR 34 dB), but the seams (overlaps 16..24 px) differ about as much as the rest
    assert psnr(whole, tiled) >= 28.0 and diff.mean() <= 5.0, (psnr(whole, tiled), diff.mean())
    band = np.zeros(diff.shape, bool)
    band[64:96] = True
    band[:, 64:96] = True
    assert diff[band].mean() <= 2.0 * diff[~band].mean() + 1.0, (diff[band].mean(), diff[~band].mean())


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_exactly_scale_times_the_input(stage, scale) -> None:
    image = real_photo("coffee", 24)[:13, :17]
    four = upscale_arrays([image], UpscaleParams(pad=0), stage.infer_tiles)[0]
    assert four.shape == (52, 68, 3)
    for method in ("lanczos", "area") if scale < 4 else ("lanczos",):
        params = UpscaleParams(pad=0, scale=scale, downscale=method)
        out = upscale_arrays([image], params, stage.infer_tiles)[0]
        assert out.shape == (13 * scale, 17 * scale, 3) and out.dtype == np.uint8
        # the 2x and 3x results are the 4x result resampled
        np.testing.assert_array_equal(out, resize_plane(four, (out.shape[1], out.shape[0]), method))


def test_stage_upscales_only_small_items_and_resizes_alpha(stage) -> None:
    small = frozen(real_photo("coffee", 32))  # 21 x 32
    large = frozen(real_photo("astronaut", 48))
    alpha = np.zeros(small.shape[:2], np.uint8)
    alpha[5:15, 8:24] = 255
    items = [Item("small", "memory", small, frozen(alpha)), Item("large", "memory", large)]
    out = stage_with(stage, scale=2, only_below=40)(items)
    assert out[0].image.shape == (42, 64, 3) and out[0].alpha is not None and out[0].alpha.shape == (42, 64)
    assert abs(float(out[0].alpha.mean()) / 255 - 160 / 672) < 0.02  # the matte covers the same share
    assert out[0].alpha[20, 32] == 255 and out[0].alpha[2, 2] == 0
    assert out[1] is items[1]  # long side 48 is not below 40: passed through untouched
    assert out[0].meta == items[0].meta and out[0].sku == "small"


def test_a_batch_equals_its_items_alone(stage) -> None:
    images = [frozen(real_photo("coffee", 16)), frozen(real_photo("astronaut", 12)), frozen(real_photo("rocket", 16))]
    items = [Item(f"sku-{i}", "memory", image) for i, image in enumerate(images)]
    unpadded = stage_with(stage, pad=0)
    together = unpadded(items)
    for item, result in zip(items, together, strict=True):
        alone = unpadded([item])[0]
        assert result.image.shape == (item.image.shape[0] * 4, item.image.shape[1] * 4, 3)
        assert np.abs(alone.image.astype(int) - result.image).max() <= 1


def test_tiny_and_grayscale_images_work(stage) -> None:
    dot = np.full((1, 1, 3), 120, np.uint8)
    strip = real_photo("astronaut", 8)[:3, :5]
    outs = upscale_arrays([dot, strip], UpscaleParams(), stage.infer_tiles)
    assert outs[0].shape == (4, 4, 3) and outs[1].shape == (12, 20, 3)
    # flat stays flat thanks to the mirrored context (119..123; without it, a textured patch of 54..193)
    assert outs[0].max() - outs[0].min() <= 10 and abs(float(outs[0].mean()) - 120) <= 5
    assert np.abs(outs[1].reshape(-1, 3).mean(0) - strip.reshape(-1, 3).mean(0)).max() <= 10  # measured 3.5
    gray = np.repeat(real_photo("coffee", 40).mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    out = upscale_arrays([gray], UpscaleParams(pad=0), stage.infer_tiles)[0].astype(int)
    spread = out.max(axis=2) - out.min(axis=2)
    assert spread.mean() <= 4.0, spread.mean()  # stays grey (measured 1.8 levels)


def test_an_output_over_the_limit_fails_alone_before_any_inference(stage) -> None:
    ok = Item("ok", "memory", frozen(real_photo("coffee", 16)))
    big = Item("big", "memory", frozen(real_photo("astronaut", 200)))
    limited = stage_with(stage, max_output_megapixels=0.5)
    with pytest.raises(StageError, match=r"'big'.*would be 0\.6 MP; expected at most max_output_megapixels=0\.5"):
        limited([ok, big])
    assert limited([ok])[0].image.shape == (44, 64, 3)
    skipping = stage_with(stage, max_output_megapixels=0.5, only_below=100)
    assert skipping([big])[0] is big


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"overlap": 32, "tile": 32}, "expected overlap < tile"),
        ({"scale": 5}, "scale"),
        ({"tile": 8}, "greater than or equal to 16"),
        ({"only_below": 0}, "greater than or equal to 1"),
        ({"downscale": "nearest"}, "'lanczos' or 'area'"),
        ({"tiles": 4}, "Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(params, words) -> None:
    with pytest.raises(ValidationError, match=words):
        UpscaleParams(**params)


def test_the_stage_plans_tiles_and_listing_it_does_not_import_torch() -> None:
    assert Upscale.input_size(UpscaleParams(tile=256), 1000, 90) == (256, 110)  # 10 px of context on each side
    code = (
        "import sys, imgx_gan; assert 'gan.upscale' in [s.name for s in imgx_gan.STAGES]; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_tiles_one_per_call_give_the_pixels_of_batched_tiles(stage) -> None:
    """A CPU runs one tile per network call (memory: a batch of 4 tiles of 256 px peaked at 7.7 GB); the pixels are
    those of tiles batched as a GPU runs them, up to the batch-order rounding the eager backend has anyway (see
    test_a_batch_equals_its_items_alone: 2 of 76,800 values one level apart here)."""
    image = real_photo("astronaut", 64)[:40, :40]
    params = UpscaleParams(pad=0, tile=24, overlap=8)  # 4 tiles
    batched = upscale_arrays([image, image[::-1]], params, stage.infer_tiles, tiles_per_call=16)
    single = upscale_arrays([image, image[::-1]], params, stage.infer_tiles, tiles_per_call=1)
    for one, many in zip(single, batched, strict=True):
        assert one.shape == many.shape == (160, 160, 3)
        diff = np.abs(one.astype(np.int16) - many)
        assert diff.max() <= 1 and np.count_nonzero(diff) <= 0.001 * diff.size, (diff.max(), np.count_nonzero(diff))


@pytest.mark.parametrize(("backend", "tolerance"), [("onnxruntime", 1e-5), ("eager", 1e-4)])
def test_the_upsampler_on_row_strips_gives_the_whole_networks_output(backend, tolerance, tmp_path) -> None:
    """On a CPU the trunk runs on the tile and the upsampler on strips of UPSAMPLER_ROWS feature rows (its 4x feature
    maps are 256 MiB each for a whole 256 px tile): the output is the whole network's on the tile, from one call of
    the registry's module through the same backend (ONNX Runtime measured identical, eager within float rounding)."""
    from imgx.models import load_module
    from imgx.runtime import BackendOptions, create_backend
    from imgx_gan.upscale import UPSAMPLER_ROWS

    context = StageContext(backend=backend, cache_dir=str(tmp_path), threads=2, registry=default_registry())
    split = Upscale(UpscaleParams(), context)
    net = load_module(split.spec, registry=context.registry)
    whole = create_backend(backend, net, BackendOptions(cache_dir=tmp_path, threads=2), context.registry)
    whole.load()
    try:
        tile = to_float_tile(real_photo("astronaut", 48)[: UPSAMPLER_ROWS + 13])  # 45 rows: two strips
        (got,) = split.infer_tiles([tile])
        import torch

        expected = whole.infer(torch.from_numpy(tile.transpose(2, 0, 1).copy())[None])[0].permute(1, 2, 0).numpy()
        assert got.shape == expected.shape == (4 * tile.shape[0], 4 * tile.shape[1], 3)
        assert np.abs(got - expected).max() <= tolerance, np.abs(got - expected).max()
        assert split.parts["upsampler"].options.model_key != split.backend.options.model_key
    finally:
        split.close()
        whole.close()


def to_float_tile(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.astype(np.float32) / 255)


def test_its_work_for_the_eta_is_the_network_pixels_of_its_tiles_and_none_for_images_passed_through() -> None:
    params = UpscaleParams(only_below=640, tile=256, overlap=16)
    assert Upscale.work(params, 480, 640) == 0.0  # long side 640 is not below 640: passed through
    assert Upscale.work(params, 120, 160) == pytest.approx(140 * 180 / 1e6)  # one tile: the image and its 10 px pad
    # 623 + 20 px padded: three tiles of 256 a side (overlaps counted twice): 9 tiles
    assert Upscale.work(params, 623, 623) == pytest.approx(9 * 256 * 256 / 1e6)
    assert Upscale.work(UpscaleParams(), 4000, 3000) > 100 * Upscale.work(UpscaleParams(), 120, 160)


@pytest.mark.parametrize("backend", ["onnxruntime", "eager"])
def test_on_onnx_runtime_the_pytorch_weights_are_freed_once_the_sessions_exist(backend, tmp_path) -> None:
    """ONNX Runtime's sessions (trunk and upsampler, built at start) hold their own weights: the module's 67 MB are
    freed (each tensor emptied) and the stage still upscales (the outputs are compared with the whole network above);
    eager runs the module itself and keeps it."""
    import torch

    context = StageContext(backend=backend, cache_dir=str(tmp_path), threads=2, registry=default_registry())
    stage = Upscale(UpscaleParams(), context)
    held = sum(tensor.numel() for tensor in stage.module.state_dict().values())
    assert stage.weights_freed == (backend == "onnxruntime")
    assert (held == 0) == (backend == "onnxruntime") and (backend == "onnxruntime" or held > 16_000_000)
    (item,) = stage([Item(sku="s", source="s", image=real_photo("astronaut", 40))])
    assert item.image.shape == (160, 160, 3) and item.image.std() > 10
    if backend == "onnxruntime":
        with torch.inference_mode(), pytest.raises(RuntimeError):
            stage.module(torch.zeros(1, 3, 8, 8))  # no numbers from freed weights
