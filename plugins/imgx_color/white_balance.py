"""White balance: remove a colour cast with per-channel gains (grey world, robust white patch) or OpenCV's learned
estimator."""

from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams

from ._checks import check_rgb, gain_lut

__all__ = ["WhiteBalance", "WhiteBalanceMethod", "WhiteBalanceParams", "white_balance"]

WhiteBalanceMethod = Literal["gray_world", "white_patch", "learned", "none"]


def white_balance(
    image: np.ndarray, method: WhiteBalanceMethod = "gray_world", *, percentile: float = 99.0, max_gain: float = 2.0
) -> np.ndarray:
    """Remove a colour cast.

    - ``gray_world``: scale each channel so that the three channel means become their common average (brightness is
      kept).
    - ``white_patch``: scale each channel so that its ``percentile``-th value becomes 255; a percentile rather than
      the maximum so that a few clipped or hot pixels do not decide the result.
    - ``learned``: OpenCV's learning-based estimator (``cv2.xphoto.createLearningBasedWB``).
    - ``none``: the image unchanged.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param method: one of the methods above.
    :param percentile: white patch only: which percentile of each channel is taken as white (50..100).
    :param max_gain: gray world and white patch: no channel is scaled by more than ``max_gain`` or less than
        ``1 / max_gain``, so that a single-coloured product cannot be pushed to grey.
    :return: ``(H, W, 3)`` uint8 RGB, a new array (the input itself for ``none``).
    """
    check_rgb(image)
    if method == "none" or image.size == 0:
        return image
    if method == "learned":
        balancer = cv2.xphoto.createLearningBasedWB()
        bgr = balancer.balanceWhite(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if method == "gray_world":
        means = np.array(cv2.mean(image)[:3], dtype=np.float64)
        gains = means.mean() / np.maximum(means, 1e-3)
    elif method == "white_patch":
        whites = np.array([_channel_percentile(image, c, percentile) for c in range(3)], dtype=np.float64)
        gains = 255.0 / np.maximum(whites, 1.0)
    else:
        raise ValueError(f"got {method!r} for method; expected one of 'gray_world', 'white_patch', 'learned', 'none'")
    gains = np.clip(gains, 1.0 / max_gain, max_gain)
    return cv2.LUT(image, gain_lut(gains))


def _channel_percentile(image: np.ndarray, channel: int, percentile: float) -> int:
    """The ``percentile``-th value of one channel, from a 256-bin histogram (no sort, no float copy)."""
    hist = cv2.calcHist([image], [channel], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))


class WhiteBalanceParams(StageParams):
    method: WhiteBalanceMethod = Field(
        "gray_world", description="gray_world | white_patch (robust percentile) | learned (OpenCV xphoto) | none"
    )
    percentile: float = Field(99.0, ge=50.0, le=100.0, description="white_patch: channel percentile taken as white")
    max_gain: float = Field(
        2.0, ge=1.0, le=8.0, description="gray_world/white_patch: largest per-channel gain (and 1/max_gain smallest)"
    )


class WhiteBalance(Stage):
    """Remove a colour cast; see :func:`white_balance`. Alpha is carried through."""

    name: ClassVar[str] = "color.white_balance"
    Params: ClassVar[type[StageParams]] = WhiteBalanceParams
    summary: ClassVar[str] = "Remove a colour cast (grey world, robust white patch, learned)."
    params: WhiteBalanceParams

    def process(self, item: Item) -> Item:
        p = self.params
        return item.replace(image=white_balance(item.image, p.method, percentile=p.percentile, max_gain=p.max_gain))
