"""``segment.cutout`` on the real RGBA gift box and on masks from ``segment.product``; per-item errors."""

from __future__ import annotations

import numpy as np
import pytest

from _support import frozen, load_rgba_pack, real_photo
from imgx import Item, StageError
from imgx_segment.cutout import (
    BOX_ALPHA,
    EDGE_TILE,
    Cutout,
    CutoutParams,
    _solve_foreground,
    cutout_array,
    decontaminate_edges,
    product_box,
)


def composite(background: tuple[int, int, int], pad: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gift box (a real matte) over a solid colour: ``(image, alpha, true foreground colours)``, padded."""
    rgb, alpha = load_rgba_pack()
    rgb = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))
    alpha = np.pad(alpha, pad)
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    image = (rgb * a + np.array(background, np.float32) * (1 - a) + 0.5).astype(np.uint8)
    return image, alpha, rgb


def test_decontamination_removes_the_old_background_from_soft_edges() -> None:
    image, alpha, truth = composite((255, 0, 0))  # a red backdrop bleeds into the soft edge
    clean = decontaminate_edges(image, alpha, radius=8)
    edge = (alpha > 32) & (alpha < 224)
    assert edge.sum() > 100
    # over a new (blue) background, the cut-out's edge is closer to the true object than the raw pixels
    a = alpha[edge].astype(np.float32)[:, None] / 255.0
    blue = np.array([0, 0, 255], np.float32)
    want = truth[edge] * a + blue * (1 - a)
    raw_error = np.abs(image[edge] * a + blue * (1 - a) - want).mean()
    clean_error = np.abs(clean[edge] * a + blue * (1 - a) - want).mean()
    assert clean_error < 0.5 * raw_error, (clean_error, raw_error)
    opaque = alpha == 255
    assert np.array_equal(clean[opaque], image[opaque]) and np.array_equal(clean[alpha == 0], image[alpha == 0])


def test_cutout_clears_hidden_pixels_and_crops_to_the_box_with_a_margin() -> None:
    image, alpha, _ = composite((40, 200, 40), pad=30)
    rgb, out_alpha = cutout_array(image, alpha, CutoutParams(decontaminate=False))
    assert rgb.shape == image.shape and np.array_equal(out_alpha, alpha)
    assert rgb[alpha == 0].max() == 0 and np.array_equal(rgb[alpha > 0], image[alpha > 0])
    y0, y1, x0, x1 = product_box(alpha)
    ys, xs = np.nonzero(alpha >= BOX_ALPHA)
    assert (y0, y1, x0, x1) == (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    rgb, cropped = cutout_array(image, alpha, CutoutParams(crop=True, margin=0.1))
    grow = round(0.1 * max(y1 - y0, x1 - x0))
    assert cropped.shape == (min(alpha.shape[0], y1 + grow) - max(0, y0 - grow), x1 - x0 + 2 * grow)
    assert rgb.shape[:2] == cropped.shape and (cropped >= BOX_ALPHA).sum() == (alpha >= BOX_ALPHA).sum()
    assert product_box(np.zeros((5, 5), np.uint8)) is None


def test_the_stage_needs_alpha_and_a_product_per_item() -> None:
    image, alpha, _ = composite((255, 255, 255))
    stage = Cutout(CutoutParams(crop=True))
    good = Item("good", "memory", frozen(image), frozen(alpha))
    [out] = stage([good])
    assert out.alpha is not None and out.alpha.shape == out.image.shape[:2] and out.image.shape[0] < image.shape[0]
    with pytest.raises(StageError, match=r"got no alpha for item 'plain'; expected a mask in Item.alpha"):
        stage([Item("plain", "memory", frozen(image))])
    empty = Item("empty", "memory", frozen(image), frozen(np.full(alpha.shape, BOX_ALPHA - 1, np.uint8)))
    with pytest.raises(StageError, match=r"item 'empty': got an empty mask \(max alpha 7\); expected product pixels"):
        stage([empty])
    assert Cutout.needs_alpha


def test_decontamination_by_edge_tiles_equals_the_whole_image_solve() -> None:
    """Only the squares holding an edge pixel are solved (memory follows the edge, not the image); a real photo under
    a soft alpha that crosses tile borders and the image's own border gives exactly what solving the whole image
    gives, at every radius."""
    image = real_photo("astronaut", 2 * EDGE_TILE + 90)
    h, w = image.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    ring = np.hypot((yy - h * 0.55) / (h * 0.4), (xx - w * 0.45) / (w * 0.5))
    alpha = (np.clip((1.05 - ring) * 12, 0, 1) * 255 + 0.5).astype(np.uint8)
    alpha[:3] = np.arange(w, dtype=np.uint8)  # soft pixels on the top border too
    edge = (alpha > 0) & (alpha < 255)
    assert edge[EDGE_TILE - 2 : EDGE_TILE + 2].any() and not edge[h // 2, w // 2]
    for radius in (1, 8, 40):
        whole = image.copy()
        whole[edge] = (_solve_foreground(image, alpha, radius, edge) + 0.5).astype(np.uint8)
        tiled = decontaminate_edges(image, alpha, radius)
        assert np.array_equal(tiled, whole), (radius, int((tiled != whole).sum()))
        assert not np.array_equal(tiled[edge], image[edge])  # the solve did change the edge
