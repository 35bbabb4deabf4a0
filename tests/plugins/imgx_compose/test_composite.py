"""composite: product where alpha is 255, background where it is 0, a straight-alpha mix in sRGB or linear light."""

from __future__ import annotations

import numpy as np
import pytest

from imgx.arrays import flatten_alpha
from imgx_compose import composite, linear_to_srgb, srgb_to_linear


def _solid(shape: tuple[int, int], color: tuple[int, int, int]) -> np.ndarray:
    out = np.empty((*shape, 3), np.uint8)
    out[...] = color
    return out


def test_srgb_curve_round_trips_every_code() -> None:
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(linear_to_srgb(srgb_to_linear(codes)), codes)
    assert srgb_to_linear(np.uint8(128)) == pytest.approx(0.2158605, abs=1e-6)


@pytest.mark.parametrize("space", ["srgb", "linear"])
def test_solid_mask_keeps_the_product_and_zero_keeps_the_background(pack_on_photo, space) -> None:
    image, alpha = pack_on_photo
    background = _solid(alpha.shape, (10, 200, 30))
    out = composite(image, alpha, background, space=space)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])
    np.testing.assert_array_equal(out[alpha == 0], background[alpha == 0])
    edge = (alpha > 0) & (alpha < 255)
    assert edge.sum() > 50  # the matte has soft edges; they mix
    lo, hi = np.minimum(image, background)[edge], np.maximum(image, background)[edge]
    assert (out[edge] >= lo).all() and (out[edge] <= hi).all()


def test_srgb_matches_the_encoders_jpeg_flattening(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    for color in ((255, 255, 255), (0, 0, 0), (90, 160, 220)):
        out = composite(image, alpha, _solid(alpha.shape, color))
        np.testing.assert_array_equal(out, flatten_alpha(image, alpha, color))  # one implementation


def test_half_coverage_mixes_differently_in_linear_light() -> None:
    black, white = _solid((1, 1), (0, 0, 0)), _solid((1, 1), (255, 255, 255))
    half = np.array([[128]], np.uint8)
    assert composite(black, half, white, space="srgb")[0, 0, 0] == 127  # 255 * (1 - 128/255)
    light = 1 - 128 / 255  # the share of white's light that passes, encoded with the sRGB curve
    assert composite(black, half, white, space="linear")[0, 0, 0] == round(255 * (1.055 * light ** (1 / 2.4) - 0.055))


@pytest.mark.parametrize("space", ["srgb", "linear"])
def test_shadow_darkens_the_background_only_outside_the_product(pack_on_photo, space) -> None:
    image, alpha = pack_on_photo
    white = _solid(alpha.shape, (255, 255, 255))
    shadow = np.zeros(alpha.shape, np.float32)
    shadow[60:115] = 0.5  # a band across product and background
    out = composite(image, alpha, white, shadow=shadow, space=space)
    plain = composite(image, alpha, white, space=space)
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])
    outside = (alpha == 0) & (shadow > 0)
    assert (out[outside] < 255).all()
    np.testing.assert_array_equal(out[shadow == 0], plain[shadow == 0])
    expected = 128 if space == "srgb" else 188
    assert np.abs(out[outside].astype(int) - expected).max() <= 1
    tinted = composite(image, alpha, white, shadow=shadow, shadow_color=(0, 0, 255), space=space)
    assert (tinted[outside][:, 2] == 255).all() and (tinted[outside][:, 0] < 255).all()


def test_mismatched_shapes_fail_with_the_expected_layout(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    with pytest.raises(ValueError, match="background"):
        composite(image, alpha, _solid((10, 10), (0, 0, 0)))
    with pytest.raises(ValueError, match="alpha"):
        composite(image, alpha[:-1], _solid(alpha.shape, (0, 0, 0)))
    with pytest.raises(ValueError, match="shadow"):
        composite(image, alpha, _solid(alpha.shape, (0, 0, 0)), shadow=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="'srgb' or 'linear'"):
        composite(image, alpha, _solid(alpha.shape, (0, 0, 0)), space="lab")  # type: ignore[arg-type]
