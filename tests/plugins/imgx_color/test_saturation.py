"""Saturation and vibrance move HSV saturation the expected way on real photos; luma is kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgx_color import adjust_saturation


def _mean_s(image: np.ndarray) -> float:
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].mean())


@pytest.mark.parametrize("name", ["coffee", "astronaut", "flower"])
def test_factor_raises_and_lowers_saturation(name, photos) -> None:
    image = photos[name]
    base = _mean_s(image)
    assert _mean_s(adjust_saturation(image, 1.5)) > base + 10  # coffee: 184 -> 221
    assert _mean_s(adjust_saturation(image, 0.5)) < base - 20  # coffee: 184 -> 118
    grey = adjust_saturation(image, 0.0)
    assert _mean_s(grey) < 1.0
    # Luma is kept: greyscale equals OpenCV's own RGB -> GRAY.
    np.testing.assert_array_equal(grey[..., 0], cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))


def test_vibrance_boosts_dull_pixels_more(photos) -> None:
    image = photos["astronaut"]
    out = adjust_saturation(image, 1.0, 0.6)
    s_in = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32)
    chroma = image.max(axis=2).astype(np.int16) - image.min(axis=2)
    chroma_out = out.max(axis=2).astype(np.int16) - out.min(axis=2)
    gain = (chroma_out + 1) / (chroma + 1)
    dull, vivid = (chroma > 10) & (chroma < 50), chroma > 150
    assert dull.sum() > 100 and vivid.sum() > 100
    assert gain[dull].mean() > gain[vivid].mean() + 0.2, (gain[dull].mean(), gain[vivid].mean())
    assert _mean_s(out) > s_in.mean() + 5
    assert _mean_s(adjust_saturation(image, 1.0, -0.6)) < s_in.mean() - 5


def test_luma_kept_when_boosting(coffee) -> None:
    luma_in = cv2.cvtColor(coffee, cv2.COLOR_RGB2GRAY).astype(np.float32)
    luma_out = cv2.cvtColor(adjust_saturation(coffee, 1.3, 0.3), cv2.COLOR_RGB2GRAY).astype(np.float32)
    assert np.abs(luma_out - luma_in).mean() < 2.0  # only clipping at 0/255 moves it


def test_identity(coffee) -> None:
    assert adjust_saturation(coffee, 1.0, 0.0) is coffee


def test_row_strips_give_the_pixels_of_one_whole_image_pass() -> None:
    """Saturation is per pixel and runs strip by strip (a 4000 px photo's float factors at once were 180 MB): the
    pixels equal one whole-image blend by the documented per-pixel factor."""
    from _support import real_photo
    from imgx.arrays import STRIP_ROWS

    image = np.ascontiguousarray(np.rot90(real_photo("astronaut", 3 * STRIP_ROWS)))
    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    chroma = (image.max(axis=2).astype(np.float32) - image.min(axis=2)) / 255.0
    factor = (1.3 * (1.0 + 0.5 * (1.0 - chroma))).astype(np.float32)
    whole = cv2.blendLinear(image, grey, factor, 1.0 - factor)
    out = adjust_saturation(image, 1.3, 0.5)
    assert np.array_equal(out, whole) and not np.array_equal(out, image)
