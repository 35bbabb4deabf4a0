"""Mask clean-up after the network: islands, holes, the largest object, edges guided by the image, a threshold.

Each is a plain function on a ``(H, W)`` float32 mask in 0..1 (1 = product) and returns a new one; :func:`refine`
applies the ones asked for in a fixed order: islands / largest object, holes, GrabCut on the undecided pixels, alpha
matting of the edge band (:mod:`imgx_segment.matting`), guided filter, threshold. Objects are
the 8-connected components of ``mask >= 0.5``; a soft edge around a removed object is removed with it (the soft
pixels of a component of ``mask > 0`` whose core is removed).
"""

from __future__ import annotations

import cv2
import numpy as np

from imgx.arrays import by_row_strips

from .matting import matte

__all__ = [
    "GRABCUT_SIDE",
    "fill_holes",
    "grabcut",
    "guided_edges",
    "keep_largest",
    "refine",
    "remove_islands",
    "threshold",
]

CORE = 0.5  # a pixel is "in the object" at or above this
GRABCUT_SIDE = 320  # long side in pixels of the crop GrabCut runs on (its cost grows with the pixel count)
SURE_PRODUCT, SURE_BACKGROUND = 0.9, 0.1  # GrabCut's seeds: the network's mask at or above / below these


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


def grabcut(mask: np.ndarray, image: np.ndarray, iterations: int, side: int = GRABCUT_SIDE) -> np.ndarray:
    """The mask's undecided pixels relabelled by OpenCV's GrabCut (Rother et al. 2004), seeded from the network.

    The network's sure product (mask >= 0.9) and sure background (mask < 0.1) are GrabCut's fixed labels; pixels in
    between start as probable product (>= 0.5) or probable background and are decided by colour models of the photo
    and its edges. Where GrabCut's decision agrees with the mask's (>= 0.5), the soft value is kept; where it
    disagrees, the pixel becomes 1 or 0. Repeatable (OpenCV's random generator is seeded before each call). Runs on
    the box of the product and its soft edge (mask >= 0.1) plus a margin, scaled to at most ``side`` px on its long
    side, so the cost does not grow with the photo.

    :param mask: ``(H, W)`` float32 in 0..1.
    :param image: ``(H, W, 3)`` uint8 RGB, the photo.
    :param iterations: GrabCut's iterations (0 returns the mask unchanged).
    :return: ``(H, W)`` float32 in 0..1.
    """
    _check(mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"got image {image.shape} for a mask {mask.shape}; expected the same height and width")
    undecided = (mask >= SURE_BACKGROUND) & (mask < SURE_PRODUCT)
    if iterations <= 0 or not undecided.any() or not (mask >= CORE).any():
        return mask
    h, w = mask.shape
    ys, xs = np.nonzero(mask >= SURE_BACKGROUND)  # the product and its soft edge; a margin of sure background
    margin = max(4, round(0.05 * max(int(np.ptp(ys)), int(np.ptp(xs)))))
    y0, y1 = max(0, int(ys.min()) - margin), min(h, int(ys.max()) + margin + 1)
    x0, x1 = max(0, int(xs.min()) - margin), min(w, int(xs.max()) + margin + 1)
    crop = mask[y0:y1, x0:x1]
    scale = min(1.0, side / max(y1 - y0, x1 - x0))
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    pixels = np.ascontiguousarray(image[y0:y1, x0:x1, ::-1])  # OpenCV's BGR
    small = crop
    if scale < 1.0:
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    labels = np.where(small >= CORE, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    labels[small >= SURE_PRODUCT] = cv2.GC_FGD
    labels[small < SURE_BACKGROUND] = cv2.GC_BGD
    if not ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any():
        return mask  # GrabCut needs some background to model its colours
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means from OpenCV's RNG: the same input, the same mask
    cv2.grabCut(pixels, labels, None, background, foreground, int(iterations), cv2.GC_INIT_WITH_MASK)
    product = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
    if scale < 1.0:
        product = cv2.resize(product, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    decided = product >= 0.5
    out = mask.copy()
    region = out[y0:y1, x0:x1]
    flip = undecided[y0:y1, x0:x1] & (decided != (crop >= CORE))
    region[flip] = decided[flip].astype(np.float32)
    return out


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
    matting_band: int = 3,
    grabcut_iterations: int = 0,
    owned: bool = False,
) -> np.ndarray:
    """The clean-ups in order: islands (``min_island`` fraction of the largest object) or the largest object only,
    hole filling, GrabCut on the undecided pixels (``grabcut_iterations``; 0 = off), alpha matting (``matting``:
    none, closed_form or knn, in a band of ``matting_band`` pixels around the edge), guided edge refinement,
    threshold (``level``; ``None`` keeps a soft mask).

    :param mask: ``(H, W)`` float32 in 0..1.
    :param image: ``(H, W, 3)`` uint8 RGB, the guide of the guided filter.
    :param owned: the caller gives ``mask`` up, so a step may write into it (matting does: a copy of a 4000 px
        photo's mask is 46 MB); otherwise ``mask`` is left as it was.
    :return: ``(H, W)`` float32 in 0..1.
    """
    given = mask
    if largest_only:
        mask = keep_largest(mask)
    elif min_island > 0:
        mask = remove_islands(mask, min_island)
    if holes:
        mask = fill_holes(mask)
    if grabcut_iterations > 0:
        mask = grabcut(mask, image, grabcut_iterations)
    if matting != "none":
        mask = matte(image, mask, matting, matting_band, inplace=owned or mask is not given)
    if guided_radius > 0:
        mask = guided_edges(mask, image, guided_radius, guided_eps)
    if level is not None:
        mask = threshold(mask, level)
    return mask
