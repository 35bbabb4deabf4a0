"""A linear (any angle) or radial colour gradient with two or more stops."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from imgx.color import parse_color

__all__ = ["GradientKind", "gradient", "gradient_positions"]

GradientKind = Literal["linear", "radial"]


def gradient_positions(height: int, width: int, *, kind: GradientKind = "linear", angle: float = 180.0) -> np.ndarray:
    """Where each pixel lies along the gradient: ``(H, W)`` float32, 0 at the start and 1 at the end.

    Positions are measured between pixel centres, so the end pixels get the end colours exactly:

    - ``linear``: along the direction ``angle`` in degrees, CSS convention (0 = bottom to top, 90 = left to right,
      180 = top to bottom, 270 = right to left); the gradient line is as long as the projection of the image onto
      it (CSS ``linear-gradient``), so the two corners it starts and ends at get the first and last stop.
    - ``radial``: a circle from the image centre (0) to the farthest corner pixel (1), CSS ``farthest-corner``.

    A 1-pixel-long gradient line (a 1 x 1 image, a 1-pixel-wide image along its length) puts every pixel at 0.
    """
    if height < 1 or width < 1:
        raise ValueError(f"got {width} x {height} for a gradient; expected at least 1 x 1 pixels")
    if kind not in ("linear", "radial"):
        raise ValueError(f"got {kind!r} for the gradient kind; expected 'linear' or 'radial'")
    x = np.arange(width, dtype=np.float32) - (width - 1) / 2.0
    y = np.arange(height, dtype=np.float32) - (height - 1) / 2.0
    if kind == "radial":
        radius = math.hypot((width - 1) / 2.0, (height - 1) / 2.0)
        t = np.sqrt(x[None, :] ** 2 + y[:, None] ** 2) / np.float32(radius if radius > 0 else 1.0)
        return np.minimum(t, 1.0).astype(np.float32)
    theta = math.radians(angle)
    dx, dy = math.sin(theta), -math.cos(theta)  # CSS: 0 deg points up, angles turn clockwise
    dx, dy = (0.0 if abs(dx) < 1e-12 else dx), (0.0 if abs(dy) < 1e-12 else dy)
    length = abs((width - 1) * dx) + abs((height - 1) * dy)
    if length <= 0:
        return np.zeros((height, width), np.float32)
    t = (x[None, :] * np.float32(dx) + y[:, None] * np.float32(dy)) / np.float32(length) + np.float32(0.5)
    return np.clip(t, 0.0, 1.0).astype(np.float32)


def gradient(
    height: int,
    width: int,
    colors: Sequence[str | tuple[int, int, int]],
    *,
    positions: Sequence[float] | None = None,
    kind: GradientKind = "linear",
    angle: float = 180.0,
) -> np.ndarray:
    """A colour gradient image, interpolated between the stops in sRGB (as CSS and design tools do).

    :param height: rows of the image.
    :param width: columns of the image.
    :param colors: two or more stops: ``"#RRGGBB"`` / ``"#RGB"`` strings or ``(r, g, b)`` 0..255 tuples, first to last.
    :param positions: where each stop sits on 0..1, non-decreasing, one per colour; ``None`` spaces them evenly.
        Before the first position the first colour holds, after the last the last one.
    :param kind: ``linear`` or ``radial``; see :func:`gradient_positions`.
    :param angle: ``linear`` only: direction in degrees, CSS convention (180 = top to bottom).
    :return: ``(H, W, 3)`` uint8 RGB.
    """
    rgb = np.array([parse_color(c) if isinstance(c, str) else tuple(c) for c in colors], dtype=np.float32)
    if rgb.ndim != 2 or rgb.shape[0] < 2 or rgb.shape[1] != 3 or (rgb < 0).any() or (rgb > 255).any():
        raise ValueError(f"got {list(colors)!r} for the gradient colours; expected two or more colours like '#ffffff'")
    if positions is None:
        where = np.linspace(0.0, 1.0, len(rgb), dtype=np.float32)
    else:
        where = np.asarray(positions, dtype=np.float32)
        if where.shape != (len(rgb),) or (where < 0).any() or (where > 1).any() or (np.diff(where) < 0).any():
            raise ValueError(
                f"got {list(positions)!r} for the gradient positions; expected {len(rgb)} non-decreasing numbers "
                "in 0..1, one per colour"
            )
    t = gradient_positions(height, width, kind=kind, angle=angle)
    out = np.empty((height, width, 3), np.uint8)
    for channel in range(3):
        values = np.interp(t, where, rgb[:, channel])
        out[..., channel] = np.clip(values + 0.5, 0, 255).astype(np.uint8)
    return out
