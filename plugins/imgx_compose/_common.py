"""Solid fills and the sRGB transfer curve shared by the compose ops (private); checks, colour parsing and the
"over" blend come from the imgx toolkit (:mod:`imgx.arrays`, :mod:`imgx.color`)."""

from __future__ import annotations

import numpy as np

__all__ = ["linear_to_srgb", "solid", "srgb_to_linear"]


def solid(height: int, width: int, color: np.ndarray | tuple) -> np.ndarray:
    """An ``(H, W, C)`` image of one colour (``C = len(color)``, dtype of ``color``), contiguous; built from one
    row (10x faster than broadcasting a colour into an empty array)."""
    value = np.asarray(color)
    row = np.tile(value, width).reshape(1, width, value.size)
    return np.repeat(row, height, axis=0)


def _srgb_decode_lut() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


_DECODE = _srgb_decode_lut()


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """uint8 sRGB codes (any shape) -> float32 linear light in 0..1 (IEC 61966-2-1 curve, exact through a table)."""
    return _DECODE[values]


def _srgb_encode_lut(levels: int) -> np.ndarray:
    v = np.arange(levels, dtype=np.float64) / (levels - 1)
    encoded = np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1.0 / 2.4) - 0.055)
    return np.clip(np.floor(encoded * 255.0 + 0.5), 0, 255).astype(np.uint8)


_ENCODE_LEVELS = 1 << 16
_ENCODE = _srgb_encode_lut(_ENCODE_LEVELS)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """float32 linear light in 0..1 (any shape) -> uint8 sRGB codes, rounded to nearest through a 65536-entry table
    (the input is quantised to 1/65535 first, far finer than one code); every code round-trips
    :func:`srgb_to_linear` exactly."""
    index = np.clip(values, 0.0, 1.0) * np.float32(_ENCODE_LEVELS - 1) + np.float32(0.5)
    return _ENCODE[index.astype(np.uint16)]
