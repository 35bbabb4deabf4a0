"""Mask clean-ups on masks with known answers, and the guided filter on a real photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from _support import real_photo
from imgx.arrays import STRIP_ROWS
from imgx_segment.refine import fill_holes, guided_edges, keep_largest, refine, remove_islands, threshold


def blobs() -> np.ndarray:
    """A 64 x 96 float32 mask: a big square with a hole (soft-edged), a small square, a tiny speck."""
    mask = np.zeros((64, 96), np.float32)
    mask[8:48, 8:48] = 1.0
    mask[20:30, 20:30] = 0.0  # hole
    mask[7, 8:48] = 0.4  # soft rim of the big object
    mask[10:20, 60:70] = 1.0  # 100 px
    mask[50:52, 80:82] = 1.0  # 4 px
    mask[49, 80:82] = 0.3  # soft rim of the speck
    return mask


def test_remove_islands_drops_small_objects_with_their_soft_rims() -> None:
    mask = blobs()
    out = remove_islands(mask, 0.05)  # largest core 1500 px: the 4 px speck goes, the 100 px square stays
    assert out[50:52, 80:82].max() == 0 and out[49, 80] == 0
    assert out[10:20, 60:70].min() == 1 and np.array_equal(out[:, :56], mask[:, :56])
    assert remove_islands(mask, 0.1)[10:20, 60:70].max() == 0  # 100 < 150
    assert remove_islands(mask, 0.0) is mask


def test_keep_largest_keeps_one_object() -> None:
    out = keep_largest(blobs())
    assert out[10:20, 60:70].max() == 0 and out[50:52, 80:82].max() == 0
    assert out[8:48, 8:20].min() == 1 and out[7, 10] == pytest.approx(0.4)
    empty = np.zeros((8, 8), np.float32)
    assert keep_largest(empty) is empty


def test_fill_holes_fills_enclosed_background_only() -> None:
    mask = blobs()
    out = fill_holes(mask)
    assert out[20:30, 20:30].min() == 1
    assert out[0].max() == 0 and out[:, 90].max() == 0  # background touching the border stays
    open_ring = mask.copy()
    open_ring[24:26, 8:20] = 0.0  # a channel from the hole to the outside
    open_ring[24:26, 0:8] = 0.0
    assert fill_holes(open_ring)[22, 22] == 0


def test_threshold_and_guided_filter_follow_the_image() -> None:
    """A real photo's disc on a light backdrop; its mask coarsened as a 320 px network output upsampled would be: the
    guided filter snaps the edge back (IoU up), the threshold makes it hard."""
    from segment_eval import iou

    photo = real_photo("coffee", 128)[:80]
    truth = np.zeros((80, 128), np.float32)
    cv2.circle(truth, (64, 40), 28, 1.0, -1, cv2.LINE_AA)
    image = (photo * truth[:, :, None] + 235 * (1 - truth[:, :, None])).astype(np.uint8)
    small = cv2.resize(truth, (20, 12), interpolation=cv2.INTER_AREA)
    rough = np.clip(cv2.resize(small, (128, 80), interpolation=cv2.INTER_CUBIC), 0, 1)
    refined = guided_edges(rough, image, radius=2, eps=1e-2)
    assert refined.dtype == np.float32 and refined.shape == truth.shape
    assert iou(rough, truth) < 0.985 and iou(refined, truth) > 0.995
    assert guided_edges(rough, image, radius=0, eps=1e-2) is rough
    hard = threshold(rough, 0.5)
    assert set(np.unique(hard)) <= {0.0, 1.0} and iou(hard, truth) == iou(rough, truth)
    with pytest.raises(ValueError, match=r"expected the same height and width"):
        guided_edges(rough, image[:10], 4, 1e-3)
    with pytest.raises(ValueError, match=r"got mask uint8 .*expected \(H, W\) float32"):
        threshold(truth.astype(np.uint8), 0.5)


def test_refine_applies_the_steps_in_order() -> None:
    mask = blobs()
    image = np.zeros((64, 96, 3), np.uint8)
    out = refine(mask, image, largest_only=True, holes=True, level=0.5)
    expected = np.zeros_like(mask)
    expected[8:48, 8:48] = 1.0
    assert np.array_equal(out, expected)
    assert refine(mask, image) is mask


def test_guided_filter_in_strips_equals_the_whole_image_filter() -> None:
    """The guided filter runs on row strips plus its reach (bounded memory on 4000 px photos); on a real photo with a
    soft mask it matches one call on the whole image to float rounding, and the uint8 alpha is the same."""
    image = real_photo("chelsea", 3 * STRIP_ROWS)
    h, w = image.shape[:2]
    assert h > STRIP_ROWS + 2 * 16
    small = cv2.GaussianBlur(np.random.default_rng(3).random((24, 32)).astype(np.float32), (0, 0), 3)
    small = (small - small.min()) / (small.max() - small.min())
    mask = np.clip(cv2.resize((small - 0.5) * 4 + 0.5, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
    for radius in (1, 4, 16):
        guide = image.astype(np.float32) * np.float32(1.0 / 255.0)
        whole = np.clip(cv2.ximgproc.guidedFilter(guide=guide, src=mask, radius=radius, eps=1e-2), 0, 1)
        strips = guided_edges(mask, image, radius=radius, eps=1e-2)
        assert strips.dtype == np.float32 and np.abs(strips - whole).max() < 1e-6, radius
        assert np.array_equal((strips * 255 + 0.5).astype(np.uint8), (whole * 255 + 0.5).astype(np.uint8))
        assert np.abs(strips - mask).max() > 0.01  # the filter did move the mask
