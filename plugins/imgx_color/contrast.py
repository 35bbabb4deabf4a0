"""Auto exposure / contrast: CLAHE on the lightness channel, so colours keep their hue."""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams
from imgx.arrays import check_rgb

__all__ = ["Contrast", "ContrastParams", "auto_contrast"]


def auto_contrast(image: np.ndarray, *, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (CLAHE) of the L channel of CIE Lab; a and b are untouched.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param clip_limit: contrast limit per tile (OpenCV's ``clipLimit``); higher is stronger, about 1..4 is usual.
    :param tile_grid: the image is split into ``tile_grid x tile_grid`` tiles that are equalised separately.
    :return: ``(H, W, 3)`` uint8 RGB, a new array.
    """
    check_rgb(image, allow_empty=True)
    if image.size == 0:
        return image
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile_grid), int(tile_grid)))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


class ContrastParams(StageParams):
    clip_limit: float = Field(2.0, ge=0.1, le=40.0, description="CLAHE contrast limit; higher is stronger (1..4 usual)")
    tile_grid: int = Field(
        8, ge=1, le=64, description="CLAHE grid: the image is split into tile_grid x tile_grid tiles"
    )


class Contrast(Stage):
    """Auto exposure / contrast by CLAHE on Lab lightness; see :func:`auto_contrast`. Alpha is carried through."""

    name: ClassVar[str] = "color.contrast"
    Params: ClassVar[type[StageParams]] = ContrastParams
    summary: ClassVar[str] = "Auto exposure/contrast: CLAHE on the L channel of Lab."
    params: ContrastParams

    def process(self, item: Item) -> Item:
        p = self.params
        return item.replace(image=auto_contrast(item.image, clip_limit=p.clip_limit, tile_grid=p.tile_grid))
