"""Saturation and vibrance: scale each pixel's distance from its own grey (luma is kept)."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams
from imgx.arrays import by_row_strips, check_rgb

__all__ = ["Saturation", "SaturationParams", "adjust_saturation"]


def adjust_saturation(image: np.ndarray, saturation: float = 1.0, vibrance: float = 0.0) -> np.ndarray:
    """Move each pixel away from (or towards) its grey of equal luma (BT.601 weights, as ``cv2.COLOR_RGB2GRAY``).

    The per-pixel factor is ``saturation * (1 + vibrance * (1 - chroma / 255))`` where ``chroma = max(R, G, B) -
    min(R, G, B)``: vibrance boosts dull pixels (skin, pastel backgrounds) more than already vivid ones, and a
    negative vibrance mutes dull pixels first. Hue and luma are kept up to clipping at 0 and 255.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param saturation: global factor: 0 = greyscale, 1 = unchanged, > 1 more colourful.
    :param vibrance: -1..1; 0 = off.
    :return: ``(H, W, 3)`` uint8 RGB, a new array (the input itself when both are neutral).
    """
    check_rgb(image, allow_empty=True)
    if saturation < 0:
        raise ValueError(f"got {saturation!r} for saturation; expected a number >= 0")
    if (saturation == 1.0 and vibrance == 0.0) or image.size == 0:
        return image
    factor_lut = saturation * (1.0 + vibrance * (1.0 - np.arange(256, dtype=np.float32) / 255.0))
    factor_lut = factor_lut.astype(np.float32).reshape(1, 256)

    def strip(rows: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(cv2.cvtColor(rows, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        if vibrance == 0.0:  # one saturating uint8 blend: image * s + grey * (1 - s)
            return cv2.addWeighted(rows, float(saturation), grey, float(1.0 - saturation), 0.0)
        r, g, b = cv2.split(rows)
        chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
        factor = cv2.LUT(chroma, factor_lut)
        # Per-pixel blend image * k + grey * (1 - k) (weights may be negative), rounded and saturated by OpenCV.
        return cv2.blendLinear(rows, grey, factor, 1.0 - factor)

    # per pixel: strips bound the grey copy and the float factors (180 MB on a 4000 px photo at once) to a strip's
    return by_row_strips(strip, image)


class SaturationParams(StageParams):
    saturation: float = Field(1.0, ge=0.0, le=4.0, description="global factor: 0 = greyscale, 1 = unchanged")
    vibrance: float = Field(
        0.0, ge=-1.0, le=1.0, description="extra boost for dull pixels, less for vivid ones; 0 = off, < 0 mutes"
    )


class Saturation(Stage):
    """Saturation and vibrance; see :func:`adjust_saturation`. Alpha is carried through."""

    name: ClassVar[str] = "color.saturation"
    Params: ClassVar[type[StageParams]] = SaturationParams
    summary: ClassVar[str] = "Saturation factor and vibrance (boosts dull colours more than vivid ones)."
    params: SaturationParams

    def process(self, item: Item) -> Item:
        p = self.params
        return item.replace(image=adjust_saturation(item.image, p.saturation, p.vibrance))
