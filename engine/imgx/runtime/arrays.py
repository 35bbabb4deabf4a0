"""The array conversions every model stage makes around :meth:`~imgx.runtime.ModelStage.infer_images`, whose inputs
and outputs are ``(h, w, C)`` float32 in 0..1: uint8 <-> float, the working size under a ``max_side``, and padding
tiny images up to what a network needs. NumPy only (no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["pad_min", "to_float", "to_uint8", "working_size"]


def to_float(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(H, W, C)`` float32 in 0..1 (``/ 255``)."""
    return np.multiply(image, np.float32(1.0 / 255.0), dtype=np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` float32 in 0..1 (a network's output may overshoot) -> uint8: ``clip(x, 0, 1) * 255 + 0.5``,
    truncated (rounded half up, as PIL and torchvision save images)."""
    out = np.clip(x, 0.0, 1.0, dtype=np.float32)
    out *= 255.0
    out += 0.5
    return out.astype(np.uint8)


def working_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """The ``(h, w)`` a network runs an image at: unchanged when its long side is within ``max_side`` (or
    ``max_side`` is ``None``), else scaled so the long side is ``max_side`` (sides rounded, at least 1)."""
    if max_side is None or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def pad_min(image: np.ndarray, side: int) -> np.ndarray:
    """Mirror-pad (bottom and right) an ``(H, W, C)`` array until both sides are at least ``side``; the input itself
    when they already are. A pad wider than the image mirrors the mirrored image again; a 1-pixel side repeats."""
    while image.shape[0] < side or image.shape[1] < side:
        h, w = image.shape[:2]
        pad_h = max(0, min(side - h, h - 1) if h > 1 else side - h)
        pad_w = max(0, min(side - w, w - 1) if w > 1 else side - w)
        mode = "reflect" if h > 1 and w > 1 else "edge"
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
    return image
