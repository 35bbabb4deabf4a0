"""Mask clean-up after the network: islands, holes, the largest object, edges guided by the image, a threshold.

Each is a plain function on a ``(H, W)`` float32 mask in 0..1 (1 = product) and returns a new one; :func:`refine`
applies the ones asked for in a fixed order: islands / largest object, holes, alpha matting of the edge band
(:mod:`imgx_segment.matting`), guided filter, threshold. Objects are
the 8-connected components of ``mask >= 0.5``; a soft edge around a removed object is removed with it (the soft
pixels of a component of ``mask > 0`` whose core is removed).
"""

from __future__ import annotations

import cv2
import numpy as np

from imgx.arrays import by_row_strips

from .matting import matte

__all__ = ["fill_holes", "guided_edges", "keep_largest", "refine", "remove_islands", "threshold"]

CORE = 0.5  # a pixel is "in the object" at or above this


def _check(mask: np.ndarray) -> None:
    if mask.ndim != 2 or mask.dtype != np.float32:
        raise ValueError(f"got mask {mask.dtype} {mask.shape}; expected (H, W) float32 in 0..1")


def _support_labels(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Components of the soft support ``mask > 0`` (``count``, ``(H, W)`` int32 labels) and each one's core area
    (pixels >= :data:`CORE`), indexed by label (label 0 is the background)."""
    count, labels = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
    core = np.bincount(labels[mask >= CORE].ravel(), minlength=count).astype(np.int64)
    core[0] = 0
    return count, labels, core


def remove_islands(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    """Objects whose core area is below ``min_fraction`` of the largest object's are removed (set to 0), together
    with their soft edges. ``min_fraction`` 0 keeps everything."""
    _check(mask)
    if min_fraction <= 0:
        return mask
    count, labels, core = _support_labels(mask)
    if count <= 2 or core.max() == 0:
        return mask
    drop = core < min_fraction * core.max()
    drop[0] = False
    return np.where(drop[labels], np.float32(0), mask)


def keep_largest(mask: np.ndarray) -> np.ndarray:
    """Only the object with the largest core area (and its soft edge) is kept; a mask without any core is kept as is."""
    _check(mask)
    count, labels, core = _support_labels(mask)
    if count <= 2 or core.max() == 0:
        return mask
    return np.where(labels == int(core.argmax()), mask, np.float32(0))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background regions enclosed by an object (not connected to the image border through ``mask < 0.5``) become
    product (1). A hole's soft rim keeps its values."""
    _check(mask)
    background = (mask < CORE).astype(np.uint8)
    count, labels = cv2.connectedComponents(background, connectivity=4)
    if count <= 1:
        return mask
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    enclosed = np.ones(count, bool)
    enclosed[border] = False
    enclosed[0] = False  # label 0 is the object itself
    if not enclosed.any():
        return mask
    return np.where(enclosed[labels], np.float32(1), mask)


def guided_edges(mask: np.ndarray, image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The mask edge snapped to the image's edges with a guided filter (He et al.), ``cv2.ximgproc.guidedFilter``.

    :param image: ``(H, W, 3)`` uint8 RGB guide, the mask's size.
    :param radius: window radius in pixels (0 returns the mask unchanged).
    :param eps: regularisation on the 0..1 guide scale: smaller follows image edges more closely.
    """
    _check(mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"got guide {image.shape} for a mask {mask.shape}; expected the same height and width")
    if radius <= 0:
        return mask

    def strip(guide_rgb: np.ndarray, src: np.ndarray) -> np.ndarray:
        guide = guide_rgb.astype(np.float32) * np.float32(1.0 / 255.0)
        return cv2.ximgproc.guidedFilter(guide=guide, src=src, radius=int(radius), eps=float(eps))

    # an output pixel reads the guide and mask within 2 radii (means of means): strips bound the filter's ~20 float
    # planes to a strip's (0.8 GB on a 4000 px photo otherwise)
    out = by_row_strips(strip, image, mask, reach=2 * int(radius))
    return np.clip(out, 0.0, 1.0, out=out)


def threshold(mask: np.ndarray, level: float) -> np.ndarray:
    """A hard mask: 1 where ``mask >= level``, else 0."""
    _check(mask)
    return (mask >= np.float32(level)).astype(np.float32)


def refine(
    mask: np.ndarray,
    image: np.ndarray,
    *,
    min_island: float = 0.0,
    largest_only: bool = False,
    holes: bool = False,
    guided_radius: int = 0,
    guided_eps: float = 1e-2,
    level: float | None = None,
    matting: str = "none",
    matting_band: int = 6,
) -> np.ndarray:
    """The clean-ups in order: islands (``min_island`` fraction of the largest object) or the largest object only,
    hole filling, alpha matting (``matting``: none, closed_form or knn, in a band of ``matting_band`` pixels around
    the edge), guided edge refinement, threshold (``level``; ``None`` keeps a soft mask).

    :param mask: ``(H, W)`` float32 in 0..1.
    :param image: ``(H, W, 3)`` uint8 RGB, the guide of the guided filter.
    :return: ``(H, W)`` float32 in 0..1.
    """
    if largest_only:
        mask = keep_largest(mask)
    elif min_island > 0:
        mask = remove_islands(mask, min_island)
    if holes:
        mask = fill_holes(mask)
    if matting != "none":
        mask = matte(image, mask, matting, matting_band)
    if guided_radius > 0:
        mask = guided_edges(mask, image, guided_radius, guided_eps)
    if level is not None:
        mask = threshold(mask, level)
    return mask
