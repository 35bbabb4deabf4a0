"""White balance: remove a colour cast with per-channel gains (``auto`` near-neutral estimate, grey world, robust
white patch) or OpenCV's learned estimator."""

from __future__ import annotations

from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams
from imgx.arrays import check_rgb

from ._lut import gain_lut

__all__ = ["WhiteBalance", "WhiteBalanceMethod", "WhiteBalanceParams", "estimate_illuminant", "white_balance"]

WhiteBalanceMethod = Literal["auto", "gray_world", "white_patch", "learned", "none"]

#: BT.601 luma weights (as ``cv2.COLOR_RGB2GRAY``); ``auto`` keeps the luma of the estimated white.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: ``auto``: chroma thresholds of the successive estimates, the first around "no cast", then around the estimate.
#: 0.3 admits the strongest casts a catalog shot has (about 25 % between channels) on a near-white background.
_NEUTRAL_CHROMA = (0.3, 0.15, 0.1, 0.08)
#: ``auto``: the estimate is made on an area-averaged copy of at most this many pixels (which also averages noise).
_ESTIMATE_PIXELS = 1 << 15
#: ``auto``: the share of the image that must be near-neutral after correction to trust the estimate fully (above
#: ``_SUPPORT_FULL``), partly (linearly in between) or not at all (below ``_SUPPORT_NONE``).
_SUPPORT_NONE, _SUPPORT_FULL = 0.05, 0.30


def white_balance(
    image: np.ndarray, method: WhiteBalanceMethod = "auto", *, percentile: float = 99.0, max_gain: float = 2.0
) -> np.ndarray:
    """Remove a colour cast.

    - ``auto``: estimate the illuminant from bright near-neutral pixels (see :func:`estimate_illuminant`) and divide
      it out, keeping its luma (no brightening); the correction is scaled by the estimate's confidence, so an image
      with few near-neutral pixels (a close-up of a coloured product, a sunset) is left (nearly) as it is. Built for
      catalog shots on light studio backgrounds; a photo whose dominant colour is legitimate stays put.
    - ``gray_world``: scale each channel so that the three channel means become their common average (brightness is
      kept).
    - ``white_patch``: scale each channel so that its ``percentile``-th value becomes 255; a percentile rather than
      the maximum so that a few clipped or hot pixels do not decide the result. This also brightens.
    - ``learned``: OpenCV's learning-based estimator (``cv2.xphoto.createLearningBasedWB``).
    - ``none``: the image unchanged.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param method: one of the methods above.
    :param percentile: white patch only: which percentile of each channel is taken as white (50..100).
    :param max_gain: caps the colour correction so that a single-coloured product cannot be pushed to grey. Gray
        world and auto: no channel is scaled by more than ``max_gain`` or less than ``1 / max_gain`` (auto shrinks all
        gains together, keeping the direction of the correction). White patch: the gain of a channel relative to the
        least-scaled channel is at most ``max_gain``, and so is the common brightening, so that an under-exposed shot
        is still colour-corrected (a plain per-channel cap would clip every channel to ``max_gain`` alike and keep
        the cast).
    :return: ``(H, W, 3)`` uint8 RGB, a new array (the input itself for ``none``, and for ``auto`` when no correction
        is needed or the estimate is not trusted at all).
    """
    check_rgb(image, allow_empty=True)
    if method == "none" or image.size == 0:
        return image
    if method == "learned":
        balancer = cv2.xphoto.createLearningBasedWB()
        bgr = balancer.balanceWhite(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if method == "auto":
        white, confidence = estimate_illuminant(image)
        log_gains = np.log(float(_LUMA @ white) / white) * confidence
        largest = float(np.abs(log_gains).max())
        if largest > np.log(max_gain):
            log_gains *= np.log(max_gain) / largest
        gains = np.exp(log_gains)
        if np.all(np.abs(gains - 1.0) < 0.5 / 255):  # a no-op LUT
            return image
        return cv2.LUT(image, gain_lut(gains))
    if method == "gray_world":
        means = np.array(cv2.mean(image)[:3], dtype=np.float64)
        gains = np.clip(means.mean() / np.maximum(means, 1e-3), 1.0 / max_gain, max_gain)
    elif method == "white_patch":
        whites = np.array([_channel_percentile(image, c, percentile) for c in range(3)], dtype=np.float64)
        gains = 255.0 / np.maximum(whites, 1.0)  # all >= 1
        brightening = gains.min()
        gains = min(brightening, max_gain) * np.minimum(gains / brightening, max_gain)
    else:
        raise ValueError(
            f"got {method!r} for method; expected one of 'auto', 'gray_world', 'white_patch', 'learned', 'none'"
        )
    return cv2.LUT(image, gain_lut(gains))


def estimate_illuminant(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The colour of the light, from the bright near-neutral pixels, and how far to trust it.

    On a copy area-averaged by an integer factor to about 32,768 pixels, pixels that are clipped (a channel >= 250),
    nearly black or darker than 30 % of the 99th luma percentile are ignored. Starting from "no cast", the estimate is
    refined four times: the pixels whose chroma ``(max - min) / max`` relative to the current estimate is below 0.3,
    0.15, 0.1, then 0.08 are the near-neutral ones, and the mean of their brighter half is the new estimate. The
    confidence grows linearly from 0 to 1 as the near-neutral pixels of the last round go from 5 % to 30 % of the
    image: a studio background gives 1, a close-up of a coloured object or a sunset 0. Casts stronger than about 30 %
    between channels are out of reach (taken for legitimate colour).

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :return: the illuminant, ``(3,)`` float32 RGB with mean 1 (``[1, 1, 1]`` is no cast), and the confidence in 0..1.
    """
    check_rgb(image, allow_empty=True)
    neutral = np.ones(3, np.float32)
    height, width = image.shape[:2]
    if image.size == 0:
        return neutral, 0.0
    step = int(np.ceil(np.sqrt(height * width / _ESTIMATE_PIXELS)))
    if step > 1 and min(height, width) >= step:  # an integer factor takes OpenCV's fast area-averaging path
        image = cv2.resize(image, None, fx=1.0 / step, fy=1.0 / step, interpolation=cv2.INTER_AREA)
    planes = np.ascontiguousarray(image.reshape(-1, 3).T, dtype=np.float32)  # (3, N): fast per-pixel max/min
    red, green, blue = planes
    largest, smallest = np.maximum(np.maximum(red, green), blue), np.minimum(np.minimum(red, green), blue)
    luma = _LUMA @ planes
    usable = (largest < 250) & (smallest > 8) & (luma > 0.3 * np.percentile(luma, 99))
    white, near_neutral = neutral, usable
    for threshold in _NEUTRAL_CHROMA:
        red, green, blue = planes / white[:, None]
        top = np.maximum(np.maximum(red, green), blue)
        chroma = (top - np.minimum(np.minimum(red, green), blue)) / np.maximum(top, 1e-3)
        near_neutral = usable & (chroma < threshold)
        if np.count_nonzero(near_neutral) < 16:
            return neutral, 0.0
        brighter = near_neutral & (luma >= np.median(luma[near_neutral]))
        white = planes[:, brighter].mean(axis=1)
        white = (white / white.mean()).astype(np.float32)
    support = np.count_nonzero(near_neutral) / near_neutral.size
    confidence = float(np.clip((support - _SUPPORT_NONE) / (_SUPPORT_FULL - _SUPPORT_NONE), 0.0, 1.0))
    return white, confidence


def _channel_percentile(image: np.ndarray, channel: int, percentile: float) -> int:
    """The ``percentile``-th value of one channel, from a 256-bin histogram (no sort, no float copy)."""
    hist = cv2.calcHist([image], [channel], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))


class WhiteBalanceParams(StageParams):
    method: WhiteBalanceMethod = Field(
        "auto",
        description="auto (bright near-neutral pixels; leaves images without them alone) | gray_world | "
        "white_patch (robust percentile, also brightens) | learned (OpenCV xphoto) | none",
    )
    percentile: float = Field(99.0, ge=50.0, le=100.0, description="white_patch: channel percentile taken as white")
    max_gain: float = Field(
        2.0, ge=1.0, le=8.0, description="cap on the colour correction per channel (and 1/max_gain)"
    )


class WhiteBalance(Stage):
    """Remove a colour cast; see :func:`white_balance`. Alpha is carried through."""

    name: ClassVar[str] = "color.white_balance"
    Params: ClassVar[type[StageParams]] = WhiteBalanceParams
    summary: ClassVar[str] = "Remove a colour cast (auto near-neutral estimate, grey world, white patch, learned)."
    params: WhiteBalanceParams

    def process(self, item: Item) -> Item:
        p = self.params
        return item.replace(image=white_balance(item.image, p.method, percentile=p.percentile, max_gain=p.max_gain))
