"""The composite runs the single ops in the fixed order, through the same functions."""

from __future__ import annotations

import cv2
import numpy as np

from imgx_color import (
    EnhanceParams,
    adjust_gamma,
    adjust_saturation,
    auto_contrast,
    denoise,
    enhance,
    unsharp_mask,
    white_balance,
)


def test_fixed_order_matches_chain_of_functions(coffee) -> None:
    params = EnhanceParams(
        white_balance="gray_world",
        wb_max_gain=2.0,
        clip_limit=2.5,
        tile_grid=6,
        gamma=1.2,
        saturation=1.1,
        vibrance=0.2,
        denoise=4.0,
        denoise_method="bilateral",
        sharpen=0.6,
        sharpen_radius=1.2,
        sharpen_threshold=3,
    )
    step = white_balance(coffee, "gray_world", max_gain=2.0)
    step = auto_contrast(step, clip_limit=2.5, tile_grid=6)
    step = adjust_gamma(step, 1.2)
    step = adjust_saturation(step, 1.1, 0.2)
    step = denoise(step, 4.0, "bilateral")
    step = unsharp_mask(step, 0.6, 1.2, 3)
    np.testing.assert_array_equal(enhance(coffee, params), step)


def test_all_neutral_is_identity(coffee) -> None:
    neutral = EnhanceParams(white_balance="none", auto_contrast=False, vibrance=0.0, sharpen=0.0)
    assert enhance(coffee, neutral) is coffee


def test_default_enhance_fixes_a_dull_cast_photo(photos, with_cast) -> None:
    """The defaults (auto white balance, mild CLAHE, vibrance, sharpen) on a dull, bluish, soft photo: more neutral
    whites, more tonal range, crisper."""
    clean = photos["astronaut"]
    dull = cv2.GaussianBlur((clean.astype(np.float32) * 0.7 + 30).astype(np.uint8), (0, 0), 1.0)
    dull = with_cast(dull, (0.85, 0.95, 1.0))
    out = enhance(dull)
    whites = clean.min(axis=2) > 190
    assert _chroma(out, whites) < 0.6 * _chroma(dull, whites)
    assert _l_spread(out) > _l_spread(dull) + 10
    assert _laplacian_var(out) > 1.5 * _laplacian_var(dull)


def test_default_is_auto_white_balance() -> None:
    assert EnhanceParams().white_balance == "auto"


def test_default_enhance_neutralises_every_catalog_cast(catalog_shots, background_cast) -> None:
    """White balance -> CLAHE -> vibrance -> sharpen on the studio shots. Before (white patch with the old
    per-channel cap of 1.5) the under-exposed magenta shot went from 24.7 % to 27.9 % (pinker), the under-exposed
    warm and cool ones to 23.9 % and 26.8 %. Measured now: worst 4.2 % against the true background (its own tint), at
    most 0.9 % from grey; vibrance and CLAHE add at most 0.3 % to what white balance leaves."""
    for shot in catalog_shots:
        image, background, truth = shot["image"], shot["background"], shot["true_background"]
        out = enhance(image)
        residual = background_cast(out, background, truth)
        assert residual < 5.0, (shot["sku"], residual)
        assert background_cast(out, background, (1.0, 1.0, 1.0)) < 1.5, shot["sku"]
        assert residual < background_cast(white_balance(image, "auto"), background, truth) + 1.0, shot["sku"]


def _chroma(image: np.ndarray, where: np.ndarray) -> float:
    pixels = image[where].astype(np.int16)
    return float((pixels.max(axis=1) - pixels.min(axis=1)).mean())


def _l_spread(image: np.ndarray) -> float:
    p5, p95 = np.percentile(cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0], [5, 95])
    return float(p95 - p5)


def _laplacian_var(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
