"""Denoise: OpenCV's non-local means for colour images, or a cheaper bilateral filter."""

from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from imgx import Item, Stage, StageParams
from imgx.arrays import check_rgb

__all__ = ["Denoise", "DenoiseMethod", "DenoiseParams", "denoise"]

DenoiseMethod = Literal["nlmeans", "bilateral"]


def denoise(
    image: np.ndarray,
    strength: float = 5.0,
    method: DenoiseMethod = "nlmeans",
    *,
    window: int = 7,
    search_window: int = 21,
) -> np.ndarray:
    """Remove sensor / JPEG noise.

    - ``nlmeans``: ``cv2.fastNlMeansDenoisingColored`` with ``h = hColor = strength`` on ``window`` x ``window``
      patches searched in a ``search_window`` square (cost grows with ``search_window ** 2``).
    - ``bilateral``: ``cv2.bilateralFilter`` over a ``window`` pixel neighbourhood, ``sigmaColor = 2 * strength``,
      ``sigmaSpace = window / 2``; several times faster, smooths less selectively.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param strength: about the noise standard deviation in grey levels; 0 = off.
    :param method: ``nlmeans`` or ``bilateral``.
    :param window: odd patch size (nlmeans) or neighbourhood diameter (bilateral), in pixels.
    :param search_window: odd search square of nlmeans, in pixels.
    :return: ``(H, W, 3)`` uint8 RGB, a new array (the input itself when ``strength == 0``).
    """
    check_rgb(image, allow_empty=True)
    if strength < 0:
        raise ValueError(f"got {strength!r} for strength; expected a number >= 0")
    if strength == 0.0 or image.size == 0:
        return image
    if method == "nlmeans":
        # OpenCV converts to Lab assuming BGR order; give it BGR so that h applies to lightness and hColor to colour.
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        out = cv2.fastNlMeansDenoisingColored(
            bgr, None, float(strength), float(strength), int(window), int(search_window)
        )
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    if method == "bilateral":
        return cv2.bilateralFilter(image, int(window), 2.0 * float(strength), window / 2.0)
    raise ValueError(f"got {method!r} for method; expected 'nlmeans' or 'bilateral'")


class DenoiseParams(StageParams):
    strength: float = Field(5.0, ge=0.0, le=50.0, description="about the noise std dev in grey levels; 0 = off")
    method: DenoiseMethod = Field("nlmeans", description="nlmeans (better, slower) | bilateral (faster)")
    window: int = Field(7, ge=3, le=21, description="odd: nlmeans patch size / bilateral neighbourhood diameter (px)")
    search_window: int = Field(
        21, ge=3, le=51, description="odd: nlmeans search square (px); cost grows with its square"
    )

    @field_validator("window", "search_window")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"got {value}; expected an odd number of pixels (e.g. {value + 1})")
        return value


class Denoise(Stage):
    """Denoise (non-local means or bilateral); see :func:`denoise`. Alpha is carried through."""

    name: ClassVar[str] = "color.denoise"
    Params: ClassVar[type[StageParams]] = DenoiseParams
    summary: ClassVar[str] = "Denoise with non-local means (or a bilateral filter)."
    params: DenoiseParams

    def process(self, item: Item) -> Item:
        p = self.params
        image = denoise(item.image, p.strength, p.method, window=p.window, search_window=p.search_window)
        return item.replace(image=image)
