"""Checks, colours and the one resize primitive shared by the geometry ops (private)."""

from __future__ import annotations

from typing import Annotated, Literal

import cv2
import numpy as np
from pydantic import Field

from imgx.recipe import parse_color as recipe_color

__all__ = ["Dimension", "Interpolation", "check_image_alpha", "parse_color", "resize_plane"]

Interpolation = Literal["auto", "area", "linear", "cubic", "lanczos", "nearest"]
Dimension = Annotated[int, Field(ge=1, le=32768)]

_CV2_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "nearest": cv2.INTER_NEAREST,
}
COLOR_FORMS = "'#RRGGBB', '#RGB' or 'transparent'"


def parse_color(value: str) -> tuple[int, int, int] | None:
    """``"#RRGGBB"`` / ``"#RGB"`` -> ``(r, g, b)``; ``"transparent"`` -> ``None``. Case-insensitive."""
    if not isinstance(value, str):
        raise ValueError(f"got {value!r} for a colour; expected {COLOR_FORMS}")
    text = value.strip()
    if text.lower() == "transparent":
        return None
    try:
        return recipe_color(text)  # the recipe's own colour syntax
    except ValueError:
        raise ValueError(f"got {value!r} for a colour; expected {COLOR_FORMS}") from None


def check_image_alpha(image: np.ndarray, alpha: np.ndarray | None) -> None:
    """Raise ``ValueError`` unless ``image`` is ``(H, W, 3)`` uint8 and ``alpha`` is ``None`` or ``(H, W)`` uint8."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"got {got} for image; expected an (H, W, 3) uint8 RGB array")
    if alpha is not None and not (
        isinstance(alpha, np.ndarray) and alpha.dtype == np.uint8 and alpha.shape == image.shape[:2]
    ):
        got = f"{alpha.dtype} {alpha.shape}" if isinstance(alpha, np.ndarray) else type(alpha).__name__
        raise ValueError(f"got {got} for alpha; expected None or an {image.shape[:2]} uint8 array")
    if image.size == 0:
        raise ValueError(f"got an empty image {image.shape}; expected at least 1 x 1 pixels")


def resize_plane(array: np.ndarray, size: tuple[int, int], interpolation: Interpolation) -> np.ndarray:
    """Resize an ``(H, W, 3)`` or ``(H, W)`` uint8 array to ``size = (width, height)``.

    ``auto`` is ``area`` when neither side grows (no aliasing, no ringing) and ``cubic`` otherwise. The same size
    returns the input itself.
    """
    height, width = array.shape[:2]
    if (width, height) == size:
        return array
    if interpolation == "auto":
        shrinking = size[0] <= width and size[1] <= height
        flag = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    else:
        flag = _CV2_INTERPOLATION[interpolation]
    return cv2.resize(array, size, interpolation=flag)
