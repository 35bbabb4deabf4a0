"""Input checks shared by the colour ops (private)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_rgb", "gain_lut"]


def check_rgb(image: np.ndarray, name: str = "image") -> None:
    """Raise ``ValueError`` unless ``image`` is an ``(H, W, 3)`` uint8 RGB array (message built only on failure)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return
    got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
    raise ValueError(f"got {got} for {name}; expected an (H, W, 3) uint8 RGB array")


def gain_lut(gains: np.ndarray) -> np.ndarray:
    """A ``(1, 256, 3)`` uint8 lookup table for :func:`cv2.LUT` that multiplies each channel by its gain (rounded,
    saturated to 0..255)."""
    ramp = np.arange(256, dtype=np.float32)[:, None]
    lut = np.clip(ramp * np.asarray(gains, dtype=np.float32)[None, :] + 0.5, 0, 255).astype(np.uint8)
    return lut.reshape(1, 256, 3)
