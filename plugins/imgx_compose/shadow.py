"""A soft drop shadow derived from a product mask."""

from __future__ import annotations

import cv2
import numpy as np

from imgx.arrays import check_alpha

__all__ = ["drop_shadow"]

#: Above this Gaussian sigma (pixels) the shadow is blurred at a reduced resolution, then scaled back up: a wide blur
#: has no detail finer than sigma / 4, and a 12 MP mask blurred at full resolution costs seconds.
_FULL_RES_SIGMA = 8.0


def drop_shadow(
    alpha: np.ndarray, *, offset: tuple[float, float] = (0.0, 0.0), blur: float = 0.0, opacity: float = 0.5
) -> np.ndarray:
    """The shadow a product casts on its background: its mask shifted, blurred and scaled by ``opacity``.

    :param alpha: ``(H, W)`` uint8 product mask (255 = product), not modified.
    :param offset: ``(x, y)`` shift in pixels, positive to the right and down; fractions shift by interpolation.
        Mask pixels shifted out of the frame are lost; nothing enters from outside.
    :param blur: blur radius in pixels, as CSS ``box-shadow`` means it: a Gaussian with sigma ``blur / 2``; 0 is a hard
        shadow. Sigmas above 8 px are blurred at ``1/k`` resolution (k = sigma / 4) and scaled back (bilinear).
    :param opacity: 0..1, the shadow's strength where the shifted mask is fully opaque and unblurred.
    :return: ``(H, W)`` float32 shadow coverage in ``0..opacity`` (0 = no shadow).
    """
    if not (isinstance(alpha, np.ndarray) and alpha.ndim == 2):
        got = f"{alpha.dtype} {alpha.shape}" if isinstance(alpha, np.ndarray) else type(alpha).__name__
        raise ValueError(f"got {got} for the shadow mask; expected an (H, W) uint8 array")
    check_alpha(alpha, alpha.shape)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"got opacity={opacity} for the shadow; expected 0..1")
    if blur < 0:
        raise ValueError(f"got blur={blur} for the shadow; expected a radius >= 0")
    height, width = alpha.shape
    sigma = blur / 2.0
    factor = max(1, int(sigma / (_FULL_RES_SIGMA / 2))) if sigma > _FULL_RES_SIGMA else 1
    plane = alpha.astype(np.float32) * np.float32(opacity / 255.0)
    if factor > 1:
        small = (max(1, round(width / factor)), max(1, round(height / factor)))
        plane = cv2.resize(plane, small, interpolation=cv2.INTER_AREA)
    scale_x, scale_y = plane.shape[1] / width, plane.shape[0] / height
    dx, dy = float(offset[0]) * scale_x, float(offset[1]) * scale_y
    if dx or dy:
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        plane = cv2.warpAffine(
            plane, shift, (plane.shape[1], plane.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
    if sigma > 0:
        plane = cv2.GaussianBlur(
            plane, (0, 0), sigmaX=sigma * scale_x, sigmaY=sigma * scale_y, borderType=cv2.BORDER_CONSTANT
        )
    if factor > 1:
        plane = cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(plane, 0.0, np.float32(opacity)).astype(np.float32, copy=False)
