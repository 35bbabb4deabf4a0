"""drop_shadow: the mask shifted by the offset, blurred by the radius, scaled by the opacity."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgx_compose import drop_shadow


def _centroid(plane: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(plane.shape)
    total = float(plane.sum())
    return float((xs * plane).sum() / total), float((ys * plane).sum() / total)


def test_no_offset_no_blur_is_the_mask_times_opacity(pack) -> None:
    _, alpha = pack
    shadow = drop_shadow(alpha, opacity=0.4)
    assert shadow.dtype == np.float32 and shadow.shape == alpha.shape
    np.testing.assert_allclose(shadow, alpha.astype(np.float32) / 255 * 0.4, atol=1e-6)


@pytest.mark.parametrize("offset", [(0, 6), (7, 0), (-5, 3), (2.5, -4.5)])
def test_shadow_moves_by_the_offset(pack, offset) -> None:
    _, alpha = pack
    padded = np.pad(alpha, 16)  # keep the shifted shadow inside the frame
    cx, cy = _centroid(padded.astype(np.float32))
    sx, sy = _centroid(drop_shadow(padded, offset=offset, blur=4.0, opacity=0.5))
    assert sx - cx == pytest.approx(offset[0], abs=0.05) and sy - cy == pytest.approx(offset[1], abs=0.05)


def test_blur_spreads_the_shadow_and_keeps_its_mass(pack) -> None:
    _, alpha = pack
    padded = np.pad(alpha, 24)
    hard = drop_shadow(padded, opacity=1.0)
    soft = drop_shadow(padded, blur=8.0, opacity=1.0)  # sigma 4
    assert soft.sum() == pytest.approx(hard.sum(), rel=1e-3)
    assert (soft > 0.01).sum() > (hard > 0.01).sum() * 1.15
    assert soft.max() <= 1.0 and hard.max() == pytest.approx(1.0)
    expected = cv2.GaussianBlur(hard, (0, 0), 4.0, borderType=cv2.BORDER_CONSTANT)
    np.testing.assert_allclose(soft, expected, atol=1e-5)


def test_wide_blur_at_reduced_resolution_matches_the_full_resolution_blur() -> None:
    mask = np.zeros((400, 300), np.uint8)
    cv2.ellipse(mask, (150, 220), (90, 60), 0, 0, 360, 255, -1, cv2.LINE_AA)
    fast = drop_shadow(mask, offset=(0, 20), blur=60.0, opacity=0.5)  # sigma 30: blurred at 1/7 resolution
    shifted = np.zeros_like(mask)
    shifted[20:] = mask[:-20]
    exact = cv2.GaussianBlur(shifted.astype(np.float32) * (0.5 / 255), (0, 0), 30.0, borderType=cv2.BORDER_CONSTANT)
    assert np.abs(fast - exact).max() < 0.01 and np.abs(fast - exact).mean() < 0.002


def test_shadow_shifted_out_of_the_frame_is_lost() -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 255
    assert drop_shadow(mask, offset=(30, 0), opacity=1.0).max() == 0.0


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3)])
def test_tiny_masks(shape) -> None:
    mask = np.full(shape, 255, np.uint8)
    shadow = drop_shadow(mask, offset=(1, 1), blur=40.0, opacity=0.5)
    assert shadow.shape == shape and np.isfinite(shadow).all() and 0.0 <= shadow.min() <= shadow.max() <= 0.5


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"opacity": 1.5}, "opacity"),
        ({"blur": -1.0}, "blur"),
        ({"alpha": np.zeros((4, 4, 3), np.uint8)}, "(H, W) uint8"),
    ],
)
def test_bad_arguments(kwargs, words) -> None:
    alpha = kwargs.pop("alpha", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        drop_shadow(alpha, **kwargs)
