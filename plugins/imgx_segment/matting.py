"""Alpha matting of a mask's uncertain band: closed-form (Levin et al. 2008, solved here with SciPy) or KNN (Chen et
al. 2013, by pymatting).

U2-Netp's mask is a saliency map upsampled from 320 x 320: its edge is a few pixels soft wherever the photo is, and it
knows nothing of hair, fur or glass. Matting re-estimates alpha from the image's own colours in a band around the
mask's edge (a trimap: sure product, sure background, unknown), so a soft edge follows the photo.

Cost is bounded: the band's box (plus the band) is cut out and scaled down so its long side is at most
:data:`MATTING_SIDE` pixels; the solve runs there and its alpha, scaled back up, replaces only the unknown pixels.
Sure pixels keep the network's values, so a mask without an uncertain band is returned unchanged.

``closed_form`` needs nothing beyond SciPy (which scikit-image brings): :func:`closed_form_alpha` builds the matting
Laplacian of the band's windows and solves it directly. It is the same system as pymatting's ``estimate_alpha_cf``
(the tests compare the two), written here because importing pymatting costs each worker ~200 MB resident (numba and
llvmlite) and its first import on a machine JIT-compiles for ~50 s, where the solve itself takes 10-40 ms. ``knn``
runs pymatting (MIT), an optional dependency (``pip install 'pymatting>=1.1.16'``); without it,
:func:`check_available` raises an error naming the fix; ``segment.product`` checks when its parameters are read.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import cv2
import numpy as np

__all__ = ["MATTING_MODES", "MATTING_SIDE", "Matting", "check_available", "closed_form_alpha", "matte", "trimap"]

Matting = Literal["none", "closed_form", "knn"]
MATTING_MODES: tuple[str, ...] = ("none", "closed_form", "knn")
MATTING_SIDE = 192  # long side in pixels of the crop the solver runs on (cost ~ its pixel count)
CF_EPSILON = 1e-7  # closed-form matting's colour-line regulariser (pymatting's default)
RIDGE = 1e-9  # the diagonal added to the closed-form system so a band no sure pixel reaches is not singular
READ_ROWS = 256  # rows of the crop whose unknown pixels are read back from the solver's alpha at a time
UNKNOWN = 128  # the code of an unknown pixel in :func:`_codes`' uint8 trimap (0 background, 255 product)
SURE = 0.9  # mask values at or above this (below 1 - this) are sure product (background) before the band is cut


def check_available(mode: str) -> None:
    """Raise ``RuntimeError`` naming the install command when ``mode`` needs pymatting (``knn``) and it is not
    installed."""
    if mode == "knn" and importlib.util.find_spec("pymatting") is None:
        raise RuntimeError(
            f"matting: {mode} needs the pymatting package, which is not installed; install it with "
            "pip install 'pymatting>=1.1.16' (or set matting: none)"
        )


def _codes(mask: np.ndarray, band: int) -> np.ndarray:
    """:func:`trimap` as ``(H, W)`` uint8 codes (0, :data:`UNKNOWN`, 255): a byte a pixel, where the float trimap of
    a 4000 px photo would take 96 MB; built in two byte planes, each eroded in place."""
    if mask.ndim != 2:
        raise ValueError(f"got mask {mask.dtype} {mask.shape}; expected (H, W) float32 in 0..1")
    size = 2 * band + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    product = cv2.compare(mask, SURE, cv2.CMP_GE)  # 255 where sure product
    cv2.erode(product, kernel, dst=product, borderType=cv2.BORDER_REPLICATE)
    rest = cv2.compare(mask, 1.0 - SURE, cv2.CMP_GT)  # 255 where not sure background
    cv2.dilate(rest, kernel, dst=rest, borderType=cv2.BORDER_REPLICATE)  # = not the eroded sure background
    np.bitwise_and(rest, UNKNOWN, out=rest)
    np.bitwise_or(product, rest, out=product)  # sure product stays 255, the rest of the band becomes UNKNOWN
    return product


def trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """The trimap of a ``(H, W)`` float32 mask (0..1): ``(H, W)`` float64, 1 = sure product, 0 = sure background,
    0.5 = unknown: the mask's soft pixels and everything within ``band`` pixels of its 0.5 edge."""
    codes = _codes(mask, band)
    return np.where(codes == UNKNOWN, 0.5, codes / 255.0)


def closed_form_alpha(image: np.ndarray, tri: np.ndarray, epsilon: float = CF_EPSILON) -> np.ndarray:
    """Closed-form matting (Levin, Lischinski and Weiss 2008) of the unknown pixels of a trimap.

    The matting Laplacian of 3 x 3 windows (each window's colours a line in RGB, regularised by ``epsilon``) couples
    every unknown pixel to its neighbours; alpha of the unknown pixels minimises it with the sure pixels fixed:
    ``L_uu a_u = -L_uk a_k``, one sparse symmetric solve. Only the windows that hold an unknown pixel enter, so the cost
    is that of the band, not of the crop. The system is pymatting's ``estimate_alpha_cf`` (radius 1, same epsilon),
    solved directly instead of by preconditioned CG; the tests hold the two together on real composites.

    :param image: ``(h, w, 3)`` float64 RGB in 0..1.
    :param tri: ``(h, w)`` float64 trimap: 1 product, 0 background, anything else unknown.
    :return: ``(h, w)`` float64 alpha, clipped to 0..1; the sure pixels keep the trimap's values. An unknown region
        with no sure pixel in reach keeps 0.5 (it has nothing to follow).
    """
    from scipy.sparse import coo_matrix, identity
    from scipy.sparse.linalg import spsolve

    h, w = tri.shape
    known = (tri == 0.0) | (tri == 1.0)
    alpha = np.where(known, tri, 0.5)
    if known.all() or h < 3 or w < 3:
        return alpha
    index = np.arange(h * w).reshape(h, w)
    # the 3 x 3 windows (centres 1..h-2, 1..w-2) that hold an unknown pixel
    unknown = (~known).astype(np.uint8)
    touched = cv2.dilate(unknown, np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool)
    cy, cx = np.nonzero(touched)
    cy, cx = cy + 1, cx + 1
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    ids = np.stack([index[cy + dy, cx + dx] for dy, dx in offsets], axis=1)  # (n, 9)
    colours = image.reshape(-1, 3)[ids]  # (n, 9, 3)
    mean = colours.mean(axis=1)
    centred = colours - mean[:, None, :]
    cov = centred.transpose(0, 2, 1) @ centred / 9.0 + (epsilon / 9.0) * np.eye(3)
    inverse = np.linalg.inv(cov)
    values = np.eye(9)[None] - (1.0 + (centred @ inverse) @ centred.transpose(0, 2, 1)) / 9.0
    rows = np.repeat(ids, 9, axis=1).ravel()
    cols = np.tile(ids, (1, 9)).ravel()
    laplacian = coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w)).tocsr()
    u = np.flatnonzero(~known.ravel())
    k = np.flatnonzero(known.ravel())
    coupled = laplacian[u]  # the rows of the unknown pixels, cut once for both blocks
    a_uu = coupled[:, u]
    rhs = -(coupled[:, k] @ tri.ravel()[k])
    # a ridge far below the Laplacian's entries: an unknown region no sure pixel reaches is singular without it and
    # settles at 0.5 with it; everywhere else it moves alpha by ~1e-9
    ridge = RIDGE * identity(u.size, format="csr")
    solved = spsolve((a_uu + ridge).tocsc(), rhs + RIDGE * 0.5, permc_spec="MMD_AT_PLUS_A")
    alpha.ravel()[u] = solved
    return np.clip(alpha, 0.0, 1.0)


def _solve(image: np.ndarray, tri: np.ndarray, mode: str) -> np.ndarray:
    if mode == "closed_form":
        return closed_form_alpha(image, tri)
    if mode == "knn":
        import pymatting

        return pymatting.estimate_alpha_knn(image, tri)
    raise ValueError(f"got matting {mode!r}; expected one of {', '.join(MATTING_MODES)}")


def matte(
    image: np.ndarray,
    mask: np.ndarray,
    mode: str,
    band: int = 6,
    side: int = MATTING_SIDE,
    *,
    inplace: bool = False,
) -> np.ndarray:
    """The mask with its uncertain band re-estimated by alpha matting.

    :param image: ``(H, W, 3)`` uint8 RGB, the photo.
    :param mask: ``(H, W)`` float32 in 0..1, the network's (cleaned) mask.
    :param mode: ``none`` (the mask is returned), ``closed_form`` or ``knn``.
    :param band: half-width in image pixels of the unknown band around the mask's edge.
    :param side: the solver's crop is scaled down to at most this long side.
    :param inplace: write the band into ``mask`` and return it, instead of a copy.
    :return: ``(H, W)`` float32 in 0..1.
    """
    if mode == "none":
        return mask
    check_available(mode)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"got image {image.shape} for a mask {mask.shape}; expected the same height and width")
    codes = _codes(mask, band)
    unknown = codes == UNKNOWN
    rows, cols = np.flatnonzero(unknown.any(axis=1)), np.flatnonzero(unknown.any(axis=0))
    del unknown
    if rows.size == 0 or cv2.countNonZero(cv2.compare(codes, 255, cv2.CMP_EQ)) == 0:
        return mask  # no edge to matte, or nothing sure to anchor the product's colours
    h, w = mask.shape
    y0, y1 = max(0, int(rows[0]) - band), min(h, int(rows[-1]) + band + 1)
    x0, x1 = max(0, int(cols[0]) - band), min(w, int(cols[-1]) + band + 1)
    crop_h, crop_w = y1 - y0, x1 - x0
    scale = min(1.0, side / max(crop_h, crop_w))
    small = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
    # everything at full size stays a byte a pixel: the photo is scaled down as uint8 (area averaging), the solver's
    # alpha is read back only at the unknown pixels (bilinear), so a 4000 px photo costs the solve and its band
    pixels = image[y0:y1, x0:x1]
    small_codes = codes[y0:y1, x0:x1]
    if scale < 1.0:
        pixels = cv2.resize(pixels, small, interpolation=cv2.INTER_AREA)
        small_codes = cv2.resize(small_codes, small, interpolation=cv2.INTER_NEAREST)
    tri = np.where(small_codes == UNKNOWN, 0.5, small_codes / 255.0)
    alpha = np.clip(_solve(pixels.astype(np.float64) / 255.0, tri, mode), 0.0, 1.0).astype(np.float32)
    out = mask if inplace else mask.copy()
    # the unknown pixels a strip of rows at a time: a soft mask of a 4000 px photo can have millions, and each costs
    # ~60 bytes of coordinates and weights while it is read
    for top in range(0, crop_h, READ_ROWS):
        ys, xs = np.nonzero(codes[y0 + top : y0 + min(crop_h, top + READ_ROWS), x0:x1] == UNKNOWN)
        ys += top
        out[ys + y0, xs + x0] = _bilinear(alpha, ys, xs, (crop_h, crop_w))
    return out


def _bilinear(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, full: tuple[int, int]) -> np.ndarray:
    """``values`` (an ``(h, w)`` float32 map of a ``full`` = ``(H, W)`` region scaled down) read at the region's pixels
    ``(ys, xs)``: what ``cv2.resize(values, (W, H), INTER_LINEAR)`` holds there (half-pixel centres, edges clamped),
    without making the full-size map."""
    h, w = values.shape
    if (h, w) == full:
        return values[ys, xs]
    fy = np.clip((ys + 0.5) * (h / full[0]) - 0.5, 0.0, h - 1.0).astype(np.float32)
    fx = np.clip((xs + 0.5) * (w / full[1]) - 0.5, 0.0, w - 1.0).astype(np.float32)
    y0, x0 = fy.astype(np.intp), fx.astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    dy, dx = fy - y0, fx - x0
    top = values[y0, x0] * (1 - dx) + values[y0, x1] * dx
    bottom = values[y1, x0] * (1 - dx) + values[y1, x1] * dx
    return top * (1 - dy) + bottom * dy
