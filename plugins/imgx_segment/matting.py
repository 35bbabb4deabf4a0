"""Alpha matting of a mask's uncertain band: closed-form (Levin et al. 2008) or KNN (Chen et al. 2013) by pymatting.

U2-Netp's mask is a saliency map upsampled from 320 x 320: its edge is a few pixels soft wherever the photo is, and it
knows nothing of hair, fur or glass. Matting re-estimates alpha from the image's own colours in a band around the
mask's edge (a trimap: sure product, sure background, unknown), so a soft edge follows the photo.

Cost is bounded: the band's box (plus the band) is cut out and scaled down so its long side is at most
:data:`MATTING_SIDE` pixels; the solve runs there and its alpha, scaled back up, replaces only the unknown pixels.
Sure pixels keep the network's values, so a mask without an uncertain band is returned unchanged.

pymatting (MIT) is an optional dependency (``pip install 'pymatting>=1.1.16'``; it pulls numba and llvmlite, about
210 MB, and JIT-compiles on its first import: about 50 s once, then cached next to the package). Without it,
:func:`check_available` raises an error naming the fix; ``segment.product`` checks when its parameters are read.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import cv2
import numpy as np

__all__ = ["MATTING_MODES", "MATTING_SIDE", "Matting", "check_available", "matte", "trimap"]

Matting = Literal["none", "closed_form", "knn"]
MATTING_MODES: tuple[str, ...] = ("none", "closed_form", "knn")
MATTING_SIDE = 192  # long side in pixels of the crop the solver runs on (cost ~ its pixel count)
SURE = 0.9  # mask values at or above this (below 1 - this) are sure product (background) before the band is cut


def check_available(mode: str) -> None:
    """Raise ``RuntimeError`` naming the install command when ``mode`` needs pymatting and it is not installed."""
    if mode != "none" and importlib.util.find_spec("pymatting") is None:
        raise RuntimeError(
            f"matting: {mode} needs the pymatting package, which is not installed; install it with "
            "pip install 'pymatting>=1.1.16' (or set matting: none)"
        )


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """The trimap of a ``(H, W)`` float32 mask (0..1): ``(H, W)`` float64, 1 = sure product, 0 = sure background,
    0.5 = unknown: the mask's soft pixels and everything within ``band`` pixels of its 0.5 edge."""
    if mask.ndim != 2:
        raise ValueError(f"got mask {mask.dtype} {mask.shape}; expected (H, W) float32 in 0..1")
    size = 2 * band + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    sure_fg = cv2.erode((mask >= SURE).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    sure_bg = cv2.erode((mask <= 1.0 - SURE).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    out = np.full(mask.shape, 0.5, np.float64)
    out[sure_fg] = 1.0
    out[sure_bg] = 0.0
    return out


def _solve(image: np.ndarray, tri: np.ndarray, mode: str) -> np.ndarray:
    import pymatting

    if mode == "closed_form":
        return pymatting.estimate_alpha_cf(image, tri)
    if mode == "knn":
        return pymatting.estimate_alpha_knn(image, tri)
    raise ValueError(f"got matting {mode!r}; expected one of {', '.join(MATTING_MODES)}")


def matte(image: np.ndarray, mask: np.ndarray, mode: str, band: int = 6, side: int = MATTING_SIDE) -> np.ndarray:
    """The mask with its uncertain band re-estimated by alpha matting.

    :param image: ``(H, W, 3)`` uint8 RGB, the photo.
    :param mask: ``(H, W)`` float32 in 0..1, the network's (cleaned) mask.
    :param mode: ``none`` (the mask is returned), ``closed_form`` or ``knn``.
    :param band: half-width in image pixels of the unknown band around the mask's edge.
    :param side: the solver's crop is scaled down to at most this long side.
    :return: ``(H, W)`` float32 in 0..1.
    """
    if mode == "none":
        return mask
    check_available(mode)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"got image {image.shape} for a mask {mask.shape}; expected the same height and width")
    tri = trimap(mask, band)
    unknown = tri == 0.5
    if not unknown.any() or not (tri == 1.0).any():
        return mask  # no edge to matte, or nothing sure to anchor the product's colours
    ys, xs = np.nonzero(unknown)
    h, w = mask.shape
    y0, y1 = max(0, int(ys.min()) - band), min(h, int(ys.max()) + band + 1)
    x0, x1 = max(0, int(xs.min()) - band), min(w, int(xs.max()) + band + 1)
    crop_h, crop_w = y1 - y0, x1 - x0
    scale = min(1.0, side / max(crop_h, crop_w))
    small = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
    pixels = image[y0:y1, x0:x1].astype(np.float64) / 255.0
    small_tri = tri[y0:y1, x0:x1]
    if scale < 1.0:
        pixels = np.clip(cv2.resize(pixels, small, interpolation=cv2.INTER_AREA), 0.0, 1.0)  # area sums round up
        small_tri = cv2.resize(small_tri, small, interpolation=cv2.INTER_NEAREST)
    alpha = np.clip(_solve(pixels, small_tri, mode), 0.0, 1.0).astype(np.float32)
    if scale < 1.0:
        alpha = cv2.resize(alpha, (crop_w, crop_h), interpolation=cv2.INTER_LINEAR)
    out = mask.copy()
    region = unknown[y0:y1, x0:x1]
    out[y0:y1, x0:x1][region] = alpha[region]
    return out
