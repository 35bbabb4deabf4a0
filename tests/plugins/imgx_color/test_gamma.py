"""Gamma through a LUT: exact values on grey levels, monotone on a photo."""

from __future__ import annotations

import numpy as np
import pytest

from imgx_color import adjust_gamma


@pytest.mark.parametrize(("gamma", "expected"), [(2.2, 186), (1 / 2.2, 56), (0.5, 64), (2.0, 181), (1.0, 128)])
def test_mid_grey_maps_to_expected_value(gamma, expected) -> None:
    grey = np.full((4, 4, 3), 128, np.uint8)
    out = adjust_gamma(grey, gamma)
    assert (out == expected).all(), (gamma, out[0, 0])
    assert round(255 * (128 / 255) ** (1 / gamma)) == expected


def test_black_and_white_fixed_and_photo_brightens(coffee) -> None:
    ends = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(adjust_gamma(ends, 3.0), ends)
    brighter = adjust_gamma(coffee, 1.5)
    assert (brighter >= coffee).all() and brighter.mean() > coffee.mean() + 10
    assert (adjust_gamma(coffee, 0.7) <= coffee).all()


def test_identity_and_bad_gamma(coffee) -> None:
    assert adjust_gamma(coffee, 1.0) is coffee
    with pytest.raises(ValueError, match="got 0 for gamma"):
        adjust_gamma(coffee, 0)
