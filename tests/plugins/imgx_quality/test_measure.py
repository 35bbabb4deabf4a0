"""``quality.metrics``' measurements cross-checked against scikit-image on real photos with known distortions, a
product mask whose background alone is restyled, and sharpness ordering."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from _support import frozen, load_rgba_pack, real_photo
from imgx import Item, StageError
from imgx_quality import MetricsParams, QualityMetrics, measure, sharpness

PHOTOS = ("astronaut", "coffee", "chelsea", "grace_hopper")


def blur(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 2.0)


def noise(image: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=20)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("distort", [blur, noise, jpeg])
def test_ssim_and_psnr_match_skimage(name: str, distort) -> None:
    reference = real_photo(name, 256)
    distorted = distort(reference)
    got = measure(distorted, reference, metrics=("ssim", "psnr"))
    ssim = structural_similarity(reference, distorted, channel_axis=2, data_range=255)
    psnr = peak_signal_noise_ratio(reference, distorted, data_range=255)
    assert got["ssim"] == pytest.approx(ssim, abs=1e-9) and got["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert 0.0 < got["ssim"] < 0.99 and 10.0 < got["psnr"] < 45.0, got
    mse = np.mean((reference.astype(np.float64) - distorted) ** 2)  # PSNR from its definition, not skimage
    assert got["psnr"] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-9)


@pytest.mark.parametrize("shape", [(301, 257), (512, 383), (97, 640)], ids=["odd", "tall", "wide"])
def test_in_strips_and_chunks_the_metrics_are_skimages_and_hold_a_strip_at_a_time(
    shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSIM, PSNR and CIEDE2000 go through strips of rows (chunks of product pixels) of at most ``CHUNK_PIXELS``, so
    a 4000 px photo's float64 copies are never whole (audience-variants peaked at 3.3 GB per worker on 12 MP photos).
    With the strips made small, the values are scikit-image's on the whole image, and the largest Python allocation
    is a fraction of what scikit-image's SSIM holds for the whole image."""
    import importlib
    import tracemalloc

    module = importlib.import_module("imgx_quality.measure")  # the module, which the package's function shadows

    h, w = shape
    reference = cv2.resize(real_photo("astronaut", 640), (w, h), interpolation=cv2.INTER_AREA)
    distorted = jpeg(blur(reference))
    keep = cv2.resize(load_rgba_pack()[1], (w, h), interpolation=cv2.INTER_NEAREST) >= 128
    tracemalloc.start()
    try:
        expected_ssim = structural_similarity(reference, distorted, channel_axis=2, data_range=255)
        whole_peak = tracemalloc.get_traced_memory()[1]
        monkeypatch.setattr(module, "CHUNK_PIXELS", 4096)  # strips of a few rows, chunks of 4096 pixels
        tracemalloc.reset_peak()
        got = measure(distorted, reference, alpha=keep.astype(np.uint8) * 255, metrics=("ssim", "psnr"))
        strips_peak = tracemalloc.get_traced_memory()[1]
        got |= measure(distorted, reference, alpha=keep.astype(np.uint8) * 255, metrics=("product_delta_e",))
    finally:
        tracemalloc.stop()
    expected_delta_e = deltaE_ciede2000(rgb2lab(distorted[keep][None]), rgb2lab(reference[keep][None])).mean()
    assert got["ssim"] == pytest.approx(expected_ssim, abs=1e-12)  # summed per row: the same to float rounding
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(reference, distorted, data_range=255), abs=1e-9)
    assert got["product_delta_e"] == pytest.approx(expected_delta_e, rel=1e-12) and keep.sum() > 4096
    assert strips_peak < whole_peak / 4, (strips_peak, whole_peak)


def test_distortions_rank_as_expected() -> None:
    reference = real_photo("astronaut", 256)
    mild = measure(cv2.GaussianBlur(reference, (0, 0), 0.8), reference, metrics=("ssim", "psnr"))
    strong = measure(cv2.GaussianBlur(reference, (0, 0), 3.0), reference, metrics=("ssim", "psnr"))
    assert mild["ssim"] > strong["ssim"] and mild["psnr"] > strong["psnr"]


def test_identical_images_have_ssim_one_and_no_psnr() -> None:
    image = real_photo("coffee", 128)
    got = measure(image, image, metrics=("ssim", "psnr"))
    assert got["ssim"] == pytest.approx(1.0) and got["psnr"] is None  # infinite dB is not JSON


def test_a_reference_of_another_size_is_resized_to_the_output() -> None:
    reference = real_photo("chelsea", 300)
    output = cv2.resize(reference, (150, reference.shape[0] * 150 // reference.shape[1]), interpolation=cv2.INTER_AREA)
    got = measure(output, reference, metrics=("ssim", "psnr"))
    assert got["ssim"] == pytest.approx(1.0) and got["psnr"] is None


def test_product_delta_e_ignores_a_restyled_background() -> None:
    rgb, alpha = load_rgba_pack()
    product = alpha >= 128
    assert 0.05 < product.mean() < 0.95
    background = np.zeros_like(rgb)
    background[:] = (230, 230, 230)
    before = np.where(product[..., None], rgb, background).astype(np.uint8)
    after = before.copy()
    after[~product] = (40, 120, 200)  # restyle the background only
    got = measure(after, before, alpha=alpha, metrics=("product_delta_e", "ssim"))
    assert got["product_delta_e"] == pytest.approx(0.0, abs=1e-9)
    everywhere = deltaE_ciede2000(rgb2lab(after), rgb2lab(before)).mean()
    assert everywhere > 10.0 and got["ssim"] < 0.95  # the background moved a lot


def test_product_delta_e_matches_skimage_on_a_shifted_product() -> None:
    rgb, alpha = load_rgba_pack()
    shifted = np.clip(rgb.astype(np.int16) + np.array([12, -8, 5], np.int16), 0, 255).astype(np.uint8)
    got = measure(shifted, rgb, reference_alpha=alpha, metrics=("product_delta_e",))["product_delta_e"]
    keep = alpha >= 128
    expected = deltaE_ciede2000(rgb2lab(shifted[keep][None]), rgb2lab(rgb[keep][None])).mean()
    assert got == pytest.approx(expected, rel=1e-9) and 1.0 < got < 20.0, got


def test_no_mask_no_product_delta_e() -> None:
    image = real_photo("coffee", 96)
    assert measure(image, image, metrics=("product_delta_e",)) == {"product_delta_e": None}


@pytest.mark.parametrize("name", PHOTOS)
def test_sharp_is_sharper_than_blurred(name: str) -> None:
    image = real_photo(name, 256)
    assert sharpness(image) > sharpness(blur(image)) * 2 > 0


def test_stage_and_function_agree_and_pass_the_output_on_unchanged() -> None:
    reference = frozen(real_photo("astronaut", 128))
    output = frozen(jpeg(reference))
    stage = QualityMetrics(MetricsParams(metrics=("ssim", "sharpness")))
    [item] = stage([Item("a", "a.png", output)], [Item("a", "a.png", reference)])
    assert item.image is output and item.metrics == measure(output, reference, metrics=("ssim", "sharpness"))


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected some of"):
        measure(real_photo("coffee", 32), real_photo("coffee", 32), metrics=("niqe",))
    with pytest.raises(ValueError):
        MetricsParams(metrics=("niqe",))


def test_the_stage_refuses_a_missing_reference() -> None:
    image = frozen(real_photo("coffee", 32))
    with pytest.raises(StageError, match="expected 2"):
        QualityMetrics().process(Item("a", "a.png", image))
