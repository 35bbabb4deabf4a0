"""Unsharp-mask sharpening: add back the difference between the image and a Gaussian blur of it."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams
from imgx.arrays import by_row_strips, check_rgb

__all__ = ["Sharpen", "SharpenParams", "unsharp_mask"]


def unsharp_mask(image: np.ndarray, amount: float = 0.5, radius: float = 1.0, threshold: int = 0) -> np.ndarray:
    """``out = image + amount * (image - gaussian_blur(image, radius))``, saturated to uint8.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param amount: strength; 0 = off, 0.3..1 usual.
    :param radius: sigma of the Gaussian blur in pixels: the size of the detail that is sharpened.
    :param threshold: pixels whose largest channel difference to the blur is <= ``threshold`` (grey levels) are left
        as they are, so flat areas and fine noise are not sharpened.
    :return: ``(H, W, 3)`` uint8 RGB, a new array (the input itself when ``amount == 0``).
    """
    check_rgb(image, allow_empty=True)
    if amount < 0 or radius <= 0:
        raise ValueError(f"got amount={amount!r}, radius={radius!r} for unsharp_mask; expected amount >= 0, radius > 0")
    if amount == 0.0 or image.size == 0:
        return image

    def strip(rows: np.ndarray) -> np.ndarray:
        blurred = cv2.GaussianBlur(rows, (0, 0), float(radius))
        sharp = cv2.addWeighted(rows, 1.0 + amount, blurred, -float(amount), 0.0)
        if threshold > 0:
            dr, dg, db = cv2.split(cv2.absdiff(rows, blurred))
            detail = (cv2.max(cv2.max(dr, dg), db) > threshold).view(np.uint8)
            out = rows.copy()
            cv2.copyTo(sharp, detail, out)
            return out
        return sharp

    # OpenCV's uint8 Gaussian reads round(3 sigma) rows each side; strips bound the blur and its copies (130 MB on a
    # 4000 px photo at once) to a strip's, with the same pixels
    return by_row_strips(strip, image, reach=int(np.ceil(3 * radius)) + 1)


class SharpenParams(StageParams):
    amount: float = Field(0.5, ge=0.0, le=5.0, description="strength: 0 = off, 0.3..1 usual")
    radius: float = Field(1.0, ge=0.1, le=50.0, description="Gaussian sigma in pixels: size of the detail sharpened")
    threshold: int = Field(0, ge=0, le=255, description="leave pixels whose detail is <= this many grey levels")


class Sharpen(Stage):
    """Unsharp-mask sharpening; see :func:`unsharp_mask`. Alpha is carried through."""

    name: ClassVar[str] = "color.sharpen"
    Params: ClassVar[type[StageParams]] = SharpenParams
    summary: ClassVar[str] = "Unsharp-mask sharpening (amount, radius, threshold)."
    params: SharpenParams

    def process(self, item: Item) -> Item:
        p = self.params
        return item.replace(image=unsharp_mask(item.image, p.amount, p.radius, p.threshold))
