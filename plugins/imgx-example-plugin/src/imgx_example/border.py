"""``example.border``: a solid border of ``width`` pixels around the image (and its alpha, when it has one)."""

from __future__ import annotations

import re

import imgx
import numpy as np
from pydantic import Field, field_validator

__all__ = ["BorderParams", "BorderStage", "add_border", "parse_hex_color"]

_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def parse_hex_color(color: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` as an ``(r, g, b)`` tuple of ints in 0..255."""
    if not _HEX_COLOR.fullmatch(color):
        raise ValueError(f"got {color!r} for a colour; expected '#RRGGBB', e.g. '#FFFFFF' for white")
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def add_border(
    image: np.ndarray,
    width: int,
    color: tuple[int, int, int],
    alpha: np.ndarray | None = None,
    border_alpha: int = 255,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Surround an image with a solid border.

    :param image: ``(H, W, 3)`` uint8 RGB.
    :param width: border width in pixels on every side (0 returns copies of the inputs).
    :param color: ``(r, g, b)`` of the border, 0..255.
    :param alpha: optional ``(H, W)`` uint8 alpha (255 = opaque); padded with ``border_alpha`` so it keeps matching
        the image.
    :param border_alpha: alpha of the border pixels. When ``alpha`` is ``None`` and this is below 255, an alpha is
        created (255 inside, ``border_alpha`` on the border) so the border's transparency is not lost.
    :return: ``(H + 2*width, W + 2*width, 3)`` uint8 RGB and the ``(H + 2*width, W + 2*width)`` uint8 alpha or
        ``None``.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"got image {image.dtype} {image.shape} for add_border; expected (H, W, 3) uint8 RGB")
    if alpha is not None and (alpha.dtype != np.uint8 or alpha.shape != image.shape[:2]):
        raise ValueError(f"got alpha {alpha.dtype} {alpha.shape} for add_border; expected {image.shape[:2]} uint8")
    if width < 0:
        raise ValueError(f"got width={width} for add_border; expected a width >= 0")
    h, w = image.shape[:2]
    out = np.empty((h + 2 * width, w + 2 * width, 3), np.uint8)
    out[...] = np.asarray(color, np.uint8)
    out[width : width + h, width : width + w] = image
    if alpha is None and border_alpha == 255:
        return out, None
    out_alpha = np.full(out.shape[:2], border_alpha, np.uint8)
    out_alpha[width : width + h, width : width + w] = 255 if alpha is None else alpha
    return out, out_alpha


class BorderParams(imgx.StageParams):
    """Parameters of ``example.border`` (the ``with:`` block of a recipe node)."""

    width: int = Field(16, ge=0, le=4096, description="Border width in pixels, added on every side.")
    color: str = Field("#FFFFFF", description="Border colour as '#RRGGBB' (e.g. '#FFFFFF' for white).")
    alpha: int = Field(
        255, ge=0, le=255, description="Alpha of the border (255 = opaque); images without alpha gain one when < 255."
    )

    @field_validator("color")
    @classmethod
    def _check_color(cls, value: str) -> str:
        parse_hex_color(value)
        return value.upper()


class BorderStage(imgx.Stage):
    """The thin stage: validated params in, :func:`add_border` on each item."""

    name = "example.border"
    Params = BorderParams
    summary = "Add a solid border of `width` pixels in `color` around each image (alpha padded to match)."

    def __init__(self, params: BorderParams | None = None, context: imgx.StageContext | None = None) -> None:
        super().__init__(params, context)
        self.rgb = parse_hex_color(self.params.color)  # parsed once per worker, not once per image

    def process(self, item: imgx.Item, *others: imgx.Item) -> imgx.Item:
        image, alpha = add_border(item.image, self.params.width, self.rgb, item.alpha, self.params.alpha)
        return item.replace(image=image, alpha=alpha)
