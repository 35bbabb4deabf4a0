"""Array helpers shared by the restoration stages (numpy only, no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["is_gray", "keep_gray", "luma", "mean_luma"]

# Rec. 601 luma weights (Pillow's "L" conversion), for RGB 0..1 or 0..255.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def is_gray(image: np.ndarray) -> bool:
    """Whether an ``(H, W, 3)`` image has three equal channels (a grayscale photo decoded as RGB)."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def keep_gray(x: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float -> the same with every channel set to their mean: a colour network's output for a grayscale
    input, kept grayscale (the networks here treat channels separately and may tint a little)."""
    return np.repeat(x.mean(axis=2, keepdims=True, dtype=np.float32), 3, axis=2)


def luma(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB (uint8 or float) -> ``(H, W)`` float32 Rec. 601 luma on the input's scale."""
    return image.astype(np.float32, copy=False) @ LUMA


def mean_luma(image: np.ndarray, alpha: np.ndarray | None = None) -> float:
    """Mean Rec. 601 luma of an ``(H, W, 3)`` uint8 RGB image on 0..1, weighted by ``alpha`` (``(H, W)`` uint8) when
    given (the product, not its transparent background); unweighted when the alpha is all 0."""
    y = luma(image) / 255.0
    if alpha is not None and alpha.any():
        weights = alpha.astype(np.float32)
        return float((y * weights).sum() / weights.sum())
    return float(y.mean())
