"""rembg's pre- and post-processing for U2-Netp, as plain functions (no torch).

- :func:`network_input`: the RGB image resized to 320 x 320 with Pillow's bicubic filter, divided by its maximum
  (``im / max(np.max(im), 1e-6)``), then normalised with ImageNet's mean (0.485, 0.456, 0.406) and std
  (0.229, 0.224, 0.225). rembg computes in float64 and casts to float32; float32 here differs by ~1e-7.
- :func:`normalise_prediction`: the network's first output min-max normalised to 0..1 over the image, as rembg does.
  A prediction with no contrast (max - min < :data:`FLAT_RANGE`, e.g. a flat image) would divide by ~0: it gives an
  empty mask (all 0) instead, i.e. no product found.
- :func:`upsample_mask`: the 320 x 320 mask resized to the image size with Pillow's bicubic filter on float values,
  clipped to 0..1. rembg quantises to uint8 (truncating) before resizing; imgx keeps floats until the end and
  rounds, so its alpha is the better of the two and differs from rembg's by at most 1 or 2 levels of 255.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from imgx.arrays import check_rgb

from .models import INPUT_SIDE

__all__ = ["FLAT_RANGE", "MEAN", "STD", "network_input", "normalise_prediction", "upsample_mask"]

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
FLAT_RANGE = 1e-6  # a prediction whose max - min is below this has no object in it


def network_input(
    image: np.ndarray,
    side: int = INPUT_SIDE,
    mean: np.ndarray | Sequence[float] = MEAN,
    std: np.ndarray | Sequence[float] = STD,
) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(side, side, 3)`` float32, max-scaled and normalised (rembg's; ImageNet's mean and
    std by default, another family's for ``segment.onnx``)."""
    check_rgb(image)
    small = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
    small *= np.float32(1.0 / max(float(small.max()), 1e-6))
    small -= np.asarray(mean, np.float32)
    small /= np.asarray(std, np.float32)
    return small


def normalise_prediction(pred: np.ndarray) -> np.ndarray:
    """The network's ``(h, w)`` (or ``(h, w, 1)``) float32 output -> ``(h, w)`` float32 min-max normalised to 0..1;
    all 0 when it has no contrast (see :data:`FLAT_RANGE`)."""
    pred = np.asarray(pred, np.float32).reshape(pred.shape[0], pred.shape[1])
    low, high = float(pred.min()), float(pred.max())
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError(f"got a prediction with non-finite values (min {low}, max {high}); expected finite values")
    if high - low < FLAT_RANGE:
        return np.zeros_like(pred)
    return (pred - np.float32(low)) / np.float32(high - low)


def upsample_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``(h, w)`` float32 mask in 0..1 -> ``(height, width)`` float32 in 0..1 (Pillow bicubic on floats, clipped)."""
    if mask.shape == (height, width):
        return mask
    resized = np.asarray(
        Image.fromarray(np.ascontiguousarray(mask, np.float32), "F").resize((width, height), Image.Resampling.BICUBIC)
    )
    return np.clip(resized, 0.0, 1.0)
