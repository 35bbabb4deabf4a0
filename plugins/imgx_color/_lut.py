"""The per-channel gain lookup table shared by the colour ops (private)."""

from __future__ import annotations

import numpy as np

__all__ = ["gain_lut"]


def gain_lut(gains: np.ndarray) -> np.ndarray:
    """A ``(1, 256, 3)`` uint8 lookup table for :func:`cv2.LUT` that multiplies each channel by its gain (rounded,
    saturated to 0..255)."""
    ramp = np.arange(256, dtype=np.float32)[:, None]
    lut = np.clip(ramp * np.asarray(gains, dtype=np.float32)[None, :] + 0.5, 0, 255).astype(np.uint8)
    return lut.reshape(1, 256, 3)
