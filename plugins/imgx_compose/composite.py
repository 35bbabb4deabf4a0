"""Put a masked product over a background, with an optional shadow between them."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from imgx.arrays import check_alpha, check_rgb, flatten_alpha

from ._common import linear_to_srgb, solid, srgb_to_linear

__all__ = ["BlendSpace", "composite"]

BlendSpace = Literal["srgb", "linear"]


def composite(
    image: np.ndarray,
    alpha: np.ndarray,
    background: np.ndarray,
    *,
    shadow: np.ndarray | None = None,
    shadow_color: tuple[int, int, int] = (0, 0, 0),
    space: BlendSpace = "srgb",
) -> np.ndarray:
    """``out = product * a + (background darkened by the shadow) * (1 - a)``, per pixel.

    The shadow is laid over the background first (``bg * (1 - s) + shadow_color * s``), then the product over both
    with its straight (not premultiplied) alpha.

    ``space`` says where the mixing happens:

    - ``srgb`` (default): on the 8-bit codes, as browsers, PNG viewers and imgx's own JPEG flattening composite a
      cut-out, and as segmentation mattes (U2-Net, photo cut-outs) are estimated. A cut-out PNG shown on a white page
      and ``compose.background`` onto white give the same pixels: both are :func:`imgx.arrays.flatten_alpha`.
    - ``linear``: on linear light (sRGB curve decoded, mixed, encoded), the physically right mix for partly covered
      edge pixels and for a shadow, which removes light: soft edges and shadows come out lighter than in ``srgb``.

    :param image: ``(H, W, 3)`` uint8 RGB product photo, not modified.
    :param alpha: ``(H, W)`` uint8 product mask (255 = product), not modified.
    :param background: ``(H, W, 3)`` uint8 RGB, not modified.
    :param shadow: ``None`` or ``(H, W)`` float32 shadow coverage in 0..1 (see :func:`~imgx_compose.drop_shadow`).
    :param shadow_color: ``(r, g, b)`` 0..255 colour of the shadow.
    :param space: ``srgb`` or ``linear``.
    :return: ``(H, W, 3)`` uint8 RGB.
    """
    check_rgb(image)
    check_alpha(alpha, image.shape)
    check_rgb(background, "background")
    if background.shape != image.shape:
        raise ValueError(f"got {background.shape} for background; expected the image's shape {image.shape}")
    if shadow is not None and (not isinstance(shadow, np.ndarray) or shadow.shape != image.shape[:2]):
        got = shadow.shape if isinstance(shadow, np.ndarray) else type(shadow).__name__
        raise ValueError(f"got {got} for shadow; expected an {image.shape[:2]} float32 array in 0..1")
    if space not in ("srgb", "linear"):
        raise ValueError(f"got {space!r} for the blend space; expected 'srgb' or 'linear'")

    color = np.array(shadow_color, np.uint8)
    if space == "srgb":  # the toolkit's exact integer "over", the encoder's own
        bg = background if shadow is None else _lay_shadow(background, shadow, color, linear=False)
        return flatten_alpha(image, alpha, bg)
    # Linear light: cv2.blendLinear is dst = (w1 * src1 + w2 * src2) / (w1 + w2) on float32, one multi-threaded pass
    # (alpha 255 and 0 stay exact).
    a = alpha.astype(np.float32)
    a *= np.float32(1.0 / 255.0)
    bg = srgb_to_linear(background)
    if shadow is not None:
        bg = _lay_shadow(bg, shadow, color, linear=True)
    return linear_to_srgb(cv2.blendLinear(srgb_to_linear(image), bg, a, 1.0 - a))


def _lay_shadow(background: np.ndarray, shadow: np.ndarray, color: np.ndarray, linear: bool) -> np.ndarray:
    """``background * (1 - s) + color * s`` inside the box where the shadow is non-zero; a new array."""
    rows, cols = np.flatnonzero(shadow.any(axis=1)), np.flatnonzero(shadow.any(axis=0))
    out = background.copy()
    if rows.size == 0:
        return out
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    s = np.clip(shadow[box], 0.0, 1.0).astype(np.float32)
    if linear:  # float32 arithmetic, exact where s == 0
        region = out[box]
        region += s[:, :, None] * (srgb_to_linear(color) - region)
        return out
    tint = solid(s.shape[0], s.shape[1], color)
    out[box] = cv2.blendLinear(tint, out[box], s, 1.0 - s)
    return out
