"""Unsharp mask raises the detail (Laplacian variance) of a real photo; the threshold spares flat areas."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgx_color import unsharp_mask


def _laplacian_var(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.mark.parametrize("name", ["coffee", "chelsea", "grace_hopper"])
def test_laplacian_variance_grows(name, photos) -> None:
    image = photos[name]
    base = _laplacian_var(image)
    mild, strong = _laplacian_var(unsharp_mask(image, 0.5)), _laplacian_var(unsharp_mask(image, 1.5))
    assert base * 1.5 < mild < strong, (base, mild, strong)  # coffee: 1193 -> 2474 (0.5), 6052 (1.5)


def test_threshold_leaves_flat_pixels(coffee) -> None:
    out = unsharp_mask(coffee, 1.0, 1.0, threshold=8)
    blurred = cv2.GaussianBlur(coffee, (0, 0), 1.0)
    flat = cv2.absdiff(coffee, blurred).max(axis=2) <= 8
    assert 0.2 < flat.mean() < 0.95
    np.testing.assert_array_equal(out[flat], coffee[flat])
    assert (out[~flat] != coffee[~flat]).any()


def test_amount_zero_is_identity(coffee) -> None:
    assert unsharp_mask(coffee, 0.0) is coffee


@pytest.mark.parametrize(("amount", "radius", "threshold"), [(0.4, 1.0, 2), (2.0, 7.5, 0)])
def test_row_strips_give_the_pixels_of_one_whole_image_pass(amount, radius, threshold) -> None:
    """A photo taller than a few strips (as a 4000 px photo is) is sharpened strip by strip to bound memory; the pixels
    are those of the blur, blend and threshold done on the whole image at once."""
    from _support import real_photo
    from imgx.arrays import STRIP_ROWS

    image = np.ascontiguousarray(np.rot90(real_photo("chelsea", 4 * STRIP_ROWS)))  # portrait: 4 strips tall
    blurred = cv2.GaussianBlur(image, (0, 0), radius)
    whole = cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0.0)
    if threshold:
        flat = np.abs(image.astype(int) - blurred).max(axis=2) <= threshold
        whole[flat] = image[flat]
    out = unsharp_mask(image, amount, radius, threshold)
    assert np.array_equal(out, whole) and not np.array_equal(out, image)
