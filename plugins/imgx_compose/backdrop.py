"""A backdrop image (a brand background) read once and scaled to cover any frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imgx.arrays import check_rgb, resize_plane
from imgx.io import open_picture

__all__ = ["cover", "load_backdrop"]


def load_backdrop(path: str | Path, matte: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read a backdrop image file: EXIF orientation applied, any mode converted to RGB, transparency flattened over
    ``matte``.

    :param path: an image file Pillow reads (JPEG, PNG, WebP, ...).
    :param matte: ``(r, g, b)`` colour under the backdrop's own transparent pixels.
    :return: ``(H, W, 3)`` uint8 RGB.
    :raises ValueError: the file is missing or not an image.
    """
    try:
        return open_picture(path, matte)
    except (OSError, ValueError) as exc:
        raise ValueError(f"got {str(path)!r} for the backdrop image; expected a readable image file ({exc})") from exc


def cover(backdrop: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``backdrop`` (aspect kept) until it covers ``width x height``, then centre-crop the overflow.

    Area resampling when it shrinks, Lanczos when it grows.

    :param backdrop: ``(h, w, 3)`` uint8 RGB, not modified.
    :return: ``(height, width, 3)`` uint8 RGB.
    """
    check_rgb(backdrop, "backdrop")
    if width < 1 or height < 1:
        raise ValueError(f"got {width} x {height} for the frame; expected at least 1 x 1 pixels")
    src_h, src_w = backdrop.shape[:2]
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    backdrop = resize_plane(backdrop, (new_w, new_h), "area" if scale < 1 else "lanczos")
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return np.ascontiguousarray(backdrop[top : top + height, left : left + width])
