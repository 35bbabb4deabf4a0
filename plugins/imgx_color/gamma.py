"""Gamma: brighten or darken the midtones through a lookup table (black and white stay put)."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams
from imgx.arrays import check_rgb

__all__ = ["Gamma", "GammaParams", "adjust_gamma"]


def adjust_gamma(image: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``out = 255 * (in / 255) ** (1 / gamma)``, applied through a 256-entry LUT.

    ``gamma > 1`` brightens the midtones (2.2 maps 128 to 186), ``gamma < 1`` darkens them (0.5 maps 128 to 64); 0 and
    255 are fixed. This is the "levels" convention, the inverse of ``skimage.exposure.adjust_gamma``.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param gamma: > 0; 1 leaves the image unchanged.
    :return: ``(H, W, 3)`` uint8 RGB, a new array (the input itself when ``gamma == 1``).
    """
    check_rgb(image, allow_empty=True)
    if gamma <= 0:
        raise ValueError(f"got {gamma!r} for gamma; expected a number > 0")
    if gamma == 1.0 or image.size == 0:
        return image
    ramp = np.arange(256, dtype=np.float64) / 255.0
    lut = np.clip(255.0 * ramp ** (1.0 / gamma) + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, lut)


class GammaParams(StageParams):
    gamma: float = Field(1.0, ge=0.1, le=10.0, description="> 1 brightens midtones, < 1 darkens them, 1 = unchanged")


class Gamma(Stage):
    """Gamma through a LUT; see :func:`adjust_gamma`. Alpha is carried through."""

    name: ClassVar[str] = "color.gamma"
    Params: ClassVar[type[StageParams]] = GammaParams
    summary: ClassVar[str] = "Gamma curve through a lookup table (> 1 brightens midtones)."
    params: GammaParams

    def process(self, item: Item) -> Item:
        return item.replace(image=adjust_gamma(item.image, self.params.gamma))
