"""``segment.cutout``: the product as a transparent cut-out (RGBA in PNG or WebP), from the mask in ``Item.alpha``.

What a catalog user gets: the image with its alpha (set by ``segment.product`` or read from an RGBA source), with

- fully transparent pixels cleared to black (``clear_transparent``): the hidden background does not leak into the
  file, which also compresses better;
- edge colours decontaminated (``decontaminate``): a semi-transparent edge pixel ``I = a F + (1 - a) B`` still holds
  the old background ``B``; it is estimated from nearby fully transparent pixels and removed (``F = (I - (1 - a) B)
  / a``), falling back to the colour of nearby opaque pixels where ``a`` is small; so the cut-out has no halo of the
  old background on a new one;
- optionally cropped to the product's box (``alpha >= 8``) plus a margin.

An item without alpha, or whose alpha has no pixel >= 8 (no product found), fails alone with a clear message; no
empty or fully transparent file is written. JPEG outputs have no alpha: the engine flattens over its background.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageError, StageParams

__all__ = ["BOX_ALPHA", "Cutout", "CutoutParams", "cutout_array", "decontaminate_edges", "product_box"]

BOX_ALPHA = 8  # alpha at or above this counts as product for the crop box and the "no product" check
SMALL_ALPHA = 0.25  # below this the solved foreground is blended towards the nearby opaque colour
EDGE_TILE = 256  # decontamination solves the squares of this side that hold an edge pixel


class CutoutParams(StageParams):
    """Parameters of ``segment.cutout``."""

    clear_transparent: bool = Field(True, description="set the RGB of fully transparent pixels to black")
    decontaminate: bool = Field(True, description="remove the old background's colour from semi-transparent edges")
    radius: int = Field(
        8, ge=1, le=64, description="pixels around an edge used to estimate background and product colour"
    )
    crop: bool = Field(False, description="crop to the product's box (alpha >= 8) plus the margin")
    margin: float = Field(0.05, ge=0.0, le=1.0, description="crop margin as a fraction of the box's longer side")


def product_box(alpha: np.ndarray, margin: float = 0.0) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of the pixels with ``alpha >= BOX_ALPHA``, grown by ``margin`` times the box's longer side
    and clipped to the image; ``None`` when there is no such pixel. ``alpha`` is ``(H, W)`` uint8."""
    rows = np.flatnonzero((alpha >= BOX_ALPHA).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((alpha >= BOX_ALPHA).any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    grow = round(margin * max(y1 - y0, x1 - x0))
    h, w = alpha.shape
    return max(0, y0 - grow), min(h, y1 + grow), max(0, x0 - grow), min(w, x1 + grow)


def _local_sums(image: np.ndarray, weight: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Box-blurred ``image * weight`` (``(H, W, 3)`` float32) and box-blurred ``weight`` (``(H, W)`` float32): their
    ratio is the weighted local mean of the image, wherever the blurred weight is above zero."""
    size = (2 * radius + 1, 2 * radius + 1)
    total = cv2.blur(weight, size, borderType=cv2.BORDER_REFLECT)
    summed = cv2.blur(image * weight[:, :, None], size, borderType=cv2.BORDER_REFLECT)
    return summed, total


def _mean_at(summed: np.ndarray, total: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted local mean at the flat pixel indices ``at`` (``(N, 3)`` float32) and whether any weight was in
    reach there (``(N,)`` bool)."""
    weight = total.reshape(-1).take(at)
    return summed.reshape(-1, 3).take(at, axis=0) / np.maximum(weight, 1e-6)[:, None], weight > 1e-6


def _solve_foreground(rgb: np.ndarray, alpha: np.ndarray, radius: int, where: np.ndarray) -> np.ndarray:
    """The decontaminated colour of the pixels ``where`` (``(h, w)`` bool) of one window, in row-major order:
    ``(h, w, 3)`` uint8 RGB and ``(h, w)`` uint8 alpha -> ``(N, 3)`` float32 (meaningful where ``0 < alpha < 255``).
    The local means need the whole window; the per-pixel solve runs on the asked pixels only (the edge: often a
    third of a tile)."""
    image = rgb.astype(np.float32)
    bg_sum, bg_total = _local_sums(image, (alpha == 0).astype(np.float32), radius)
    fg_sum, fg_total = _local_sums(image, (alpha == 255).astype(np.float32), radius)
    at = np.flatnonzero(where)
    background, has_bg = _mean_at(bg_sum, bg_total, at)
    product, has_fg = _mean_at(fg_sum, fg_total, at)
    pixels = image.reshape(-1, 3).take(at, axis=0)
    a = alpha.reshape(-1).take(at).astype(np.float32) / 255.0
    safe_a = np.maximum(a, 1.0 / 255.0)[:, None]
    solved = np.clip((pixels - (1.0 - a[:, None]) * background) / safe_a, 0.0, 255.0)
    solved = np.where(has_bg[:, None], solved, pixels)
    blend = np.clip(a / SMALL_ALPHA, 0.0, 1.0)[:, None]
    near = np.where(has_fg[:, None], product, solved)
    return blend * solved + (1.0 - blend) * near


def _edge_tiles(edge: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` of the :data:`EDGE_TILE` squares (clipped to the image) that hold an edge pixel."""
    h, w = edge.shape
    rows, cols = -(-h // EDGE_TILE), -(-w // EDGE_TILE)
    padded = np.zeros((rows * EDGE_TILE, cols * EDGE_TILE), bool)
    padded[:h, :w] = edge
    hit = padded.reshape(rows, EDGE_TILE, cols, EDGE_TILE).any(axis=(1, 3))
    return [
        (ty * EDGE_TILE, min(h, (ty + 1) * EDGE_TILE), tx * EDGE_TILE, min(w, (tx + 1) * EDGE_TILE))
        for ty, tx in zip(*np.nonzero(hit), strict=True)
    ]


def decontaminate_edges(image: np.ndarray, alpha: np.ndarray, radius: int = 8) -> np.ndarray:
    """Remove the old background from semi-transparent pixels: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 alpha ->
    ``(H, W, 3)`` uint8 RGB (opaque and fully transparent pixels unchanged).

    Only the :data:`EDGE_TILE` squares that hold an edge pixel are solved, each with ``radius`` pixels of context
    around it, so memory and time follow the length of the edge, not the image's size. The local means sum whole
    numbers (0..255 times 0/1 weights), which float32 holds exactly, so a tile's result equals the whole image's.
    """
    edge = (alpha > 0) & (alpha < 255)
    if not edge.any():
        return image
    h, w = alpha.shape
    out = image.copy()
    for y0, y1, x0, x1 in _edge_tiles(edge):
        wy0, wy1, wx0, wx1 = max(0, y0 - radius), min(h, y1 + radius), max(0, x0 - radius), min(w, x1 + radius)
        here = np.zeros((wy1 - wy0, wx1 - wx0), bool)  # the tile's edge pixels, in the window's coordinates
        here[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0] = edge[y0:y1, x0:x1]
        solved = _solve_foreground(image[wy0:wy1, wx0:wx1], alpha[wy0:wy1, wx0:wx1], radius, here)
        out[y0:y1, x0:x1][edge[y0:y1, x0:x1]] = (solved + 0.5).astype(np.uint8)
    return out


def cutout_array(image: np.ndarray, alpha: np.ndarray, params: CutoutParams) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out of one image: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 alpha -> ``(h, w, 3)`` RGB and
    ``(h, w)`` alpha (the crop's size when ``params.crop``).

    :raises ValueError: the alpha has no pixel >= :data:`BOX_ALPHA` (no product).
    """
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"got alpha {alpha.shape} for image {image.shape[:2]}; expected the same height and width")
    box = product_box(alpha, params.margin)
    if box is None:
        raise ValueError(
            f"got an empty mask (max alpha {int(alpha.max())}); expected product pixels with alpha >= {BOX_ALPHA}"
        )
    if params.crop:
        y0, y1, x0, x1 = box
        image, alpha = image[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    rgb = decontaminate_edges(image, alpha, params.radius) if params.decontaminate else image
    if params.clear_transparent:  # black where alpha is 0 (OpenCV's masked AND: a new array, ~4x numpy's where)
        rgb = cv2.bitwise_and(rgb, rgb, mask=(alpha != 0).view(np.uint8))
    return np.ascontiguousarray(rgb), np.ascontiguousarray(alpha)


class Cutout(Stage):
    """The product on a transparent background, from ``Item.alpha``; see :mod:`imgx_segment.cutout`."""

    name: ClassVar[str] = "segment.cutout"
    Params: ClassVar[type[StageParams]] = CutoutParams
    summary: ClassVar[str] = (
        "Transparent cut-out from the mask in the alpha channel (edges decontaminated, optional crop)."
    )
    example: ClassVar[dict] = {"crop": True, "margin": 0.05}
    version: ClassVar[str] = "1"
    needs_alpha: ClassVar[bool] = True  # an item without alpha is a per-item StageError
    params: CutoutParams

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        return [self.process(item) for item in batch]

    def process(self, item: Item, *others: Item) -> Item:
        if item.alpha is None:
            raise StageError(
                f"got no alpha for item {item.sku!r}; expected a mask in Item.alpha: run segment.product (or another "
                "masking stage) before segment.cutout, or read an RGBA source"
            )
        try:
            image, alpha = cutout_array(item.image, item.alpha, self.params)
        except ValueError as exc:
            raise StageError(f"segment.cutout: item {item.sku!r}: {exc}") from exc
        return item.replace(image=image, alpha=alpha)
