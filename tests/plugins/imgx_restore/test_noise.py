"""The noise-level estimator on real photos with known Gaussian noise (added, rounded and clipped to uint8, as a
noisy 8-bit photo is), on clean photos, tiny images, grayscale and with an alpha matte."""

from __future__ import annotations

import numpy as np
import pytest

from _support import load_photo, real_photo
from imgx_restore.noise import estimate_sigma

from .conftest import add_noise


@pytest.mark.parametrize("name", ["coffee", "astronaut", "chelsea", "rocket"])
@pytest.mark.parametrize(("sigma", "rel"), [(10, 0.2), (25, 0.06), (50, 0.06), (75, 0.06)])
def test_estimates_known_noise(name: str, sigma: int, rel: float) -> None:
    """Within 6 % from sigma 25 up; texture adds to low noise levels (coffee, sigma 10: 11.9)."""
    noisy = add_noise(load_photo(name), sigma, seed=sigma)
    assert estimate_sigma(noisy) == pytest.approx(sigma, rel=rel)


@pytest.mark.parametrize("name", ["coffee", "astronaut", "chelsea", "rocket"])
def test_low_noise_and_clean_photos_read_low(name: str) -> None:
    photo = load_photo(name)
    clean = estimate_sigma(photo)
    assert 0.0 <= clean < 3.0  # texture and JPEG residue only
    assert estimate_sigma(add_noise(photo, 5)) == pytest.approx(5, abs=2.0)
    assert clean < estimate_sigma(add_noise(photo, 5)) < estimate_sigma(add_noise(photo, 10))


def test_clipping_near_black_and_white_is_accounted_for() -> None:
    """astronaut has large near-black and near-white areas, where clipping hides part of the noise."""
    noisy = add_noise(load_photo("astronaut"), 25)
    from imgx_restore.noise import MAD_TO_SIGMA, _detail_and_mean

    details = np.concatenate([_detail_and_mean(noisy[..., c].astype(np.float32))[0] for c in range(3)])
    plain = float(np.median(details)) * MAD_TO_SIGMA  # Donoho's estimator without the refinement
    assert plain < 23.0 and abs(estimate_sigma(noisy) - 25) < abs(plain - 25)


def test_tiny_grayscale_and_float_inputs() -> None:
    for shape in [(1, 1, 3), (3, 5, 3), (2, 40, 3), (40, 3, 3)]:
        assert estimate_sigma(np.full(shape, 128, np.uint8)) == 0.0
    assert estimate_sigma(np.full((64, 64, 3), 128, np.uint8)) == pytest.approx(0.0, abs=1e-6)  # flat: no noise
    noisy = add_noise(real_photo("chelsea", 300), 20)
    gray = noisy.mean(axis=2).astype(np.uint8)  # averaging 3 channels lowers the noise to 20 / sqrt(3)
    assert estimate_sigma(gray) == pytest.approx(20 / np.sqrt(3), rel=0.15)
    assert estimate_sigma(noisy.astype(np.float32)) == estimate_sigma(noisy)
    with pytest.raises(ValueError, match=r"expected \(H, W\) or \(H, W, C\)"):
        estimate_sigma(np.zeros((2, 2, 2, 2), np.uint8))


def test_alpha_restricts_the_estimate_to_the_product() -> None:
    """A noisy product pasted on a flat, noise-free grey background (2/3 of the image): the background pulls the plain
    estimate to 0, the alpha keeps it at the product's noise. (A white or black background is left out anyway, as
    clipped.)"""
    product = add_noise(real_photo("rocket", 160), 20)
    h, w = product.shape[:2]
    image = np.full((h, w * 3, 3), 180, np.uint8)
    image[:, w : 2 * w] = product
    alpha = np.zeros(image.shape[:2], np.uint8)
    alpha[:, w : 2 * w] = 255
    assert estimate_sigma(image) < 1
    assert estimate_sigma(image, alpha) == pytest.approx(20, rel=0.12)
    assert estimate_sigma(image, np.zeros_like(alpha)) == estimate_sigma(image)  # no product pixels: whole image
    with pytest.raises(ValueError, match="expected"):
        estimate_sigma(image, alpha[:, :10])
    image[:, :w] = image[:, 2 * w :] = 255
    assert estimate_sigma(image) == pytest.approx(20, rel=0.12)  # white: clipped, left out without an alpha
