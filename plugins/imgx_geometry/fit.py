"""Fit an image onto a fixed canvas: whole image inside, padded (``fit``), or canvas filled, centre-cropped
(``cover``)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from imgx import Item, Stage, StageParams
from imgx.arrays import Interpolation, check_alpha, check_rgb, resize_plane
from imgx.color import parse_color_or_transparent

from ._common import Dimension

__all__ = ["Fit", "FitMode", "FitParams", "fit_to_canvas"]

FitMode = Literal["fit", "cover"]


def fit_to_canvas(
    image: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    size: int | tuple[int, int],
    mode: FitMode = "fit",
    background: str = "#ffffff",
    upscale: bool = True,
    interpolation: Interpolation = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale (keeping the aspect ratio) and centre the image on a canvas of exactly ``size``.

    - ``fit``: the whole image fits inside the canvas; the rest is padded with ``background``.
    - ``cover``: the image covers the whole canvas; what overflows is cropped equally from both sides.
    - ``upscale=False``: an image smaller than needed keeps its size (never enlarged) and is centred on the canvas,
      padded where it is smaller (both modes) and cropped where it is larger (``cover``). The output is still
      exactly the canvas size.

    Alpha: the item's alpha is resized with the image (same interpolation). The padded area gets alpha 0 when
    ``background`` is ``"transparent"`` (RGB 0 there) and alpha 255 with the background colour otherwise. Without
    an input alpha, a transparent background creates one (255 over the image, 0 in the pad); an opaque background
    returns ``None``.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param alpha: ``None`` or ``(H, W)`` uint8 alpha (255 = opaque), not modified.
    :param size: canvas side for a square, or ``(width, height)``.
    :param mode: ``fit`` or ``cover``.
    :param background: ``"#RRGGBB"``, ``"#RGB"`` or ``"transparent"``.
    :param upscale: whether images smaller than the canvas are enlarged.
    :param interpolation: ``auto`` (area when shrinking, cubic when enlarging), ``area``, ``linear``, ``cubic``,
        ``lanczos`` or ``nearest``.
    :return: ``(image, alpha)``: ``(h, w, 3)`` uint8 RGB and ``None`` or ``(h, w)`` uint8, with ``(w, h)`` the canvas.
    """
    check_rgb(image)
    if alpha is not None:
        check_alpha(alpha, image.shape)
    canvas_w, canvas_h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if canvas_w < 1 or canvas_h < 1:
        raise ValueError(f"got {size!r} for size; expected positive width and height")
    color = parse_color_or_transparent(background)
    height, width = image.shape[:2]

    if mode not in ("fit", "cover"):
        raise ValueError(f"got {mode!r} for mode; expected 'fit' or 'cover'")
    full_scale = (min if mode == "fit" else max)(canvas_w / width, canvas_h / height)
    scale = full_scale if upscale else min(full_scale, 1.0)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if mode == "fit":  # rounding must never push a side past the canvas
        new_w, new_h = min(new_w, canvas_w), min(new_h, canvas_h)
    elif scale == full_scale:  # an uncapped cover must reach both edges
        new_w, new_h = max(new_w, canvas_w), max(new_h, canvas_h)

    out_image = resize_plane(image, (new_w, new_h), interpolation)
    out_alpha = None if alpha is None else resize_plane(alpha, (new_w, new_h), interpolation)
    if out_alpha is None and color is None:
        out_alpha = np.full((new_h, new_w), 255, dtype=np.uint8)

    # Centre-crop what overflows (cover), then pad what is missing (fit, or either mode without upscale).
    crop_x, crop_y = max(0, (new_w - canvas_w) // 2), max(0, (new_h - canvas_h) // 2)
    keep_w, keep_h = min(new_w, canvas_w), min(new_h, canvas_h)
    out_image = out_image[crop_y : crop_y + keep_h, crop_x : crop_x + keep_w]
    left, top = (canvas_w - keep_w) // 2, (canvas_h - keep_h) // 2
    right, bottom = canvas_w - keep_w - left, canvas_h - keep_h - top
    pad_rgb = (0, 0, 0) if color is None else color
    out_image = cv2.copyMakeBorder(out_image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=pad_rgb)
    if out_alpha is not None:
        out_alpha = out_alpha[crop_y : crop_y + keep_h, crop_x : crop_x + keep_w]
        pad_alpha = 0 if color is None else 255
        out_alpha = cv2.copyMakeBorder(out_alpha, top, bottom, left, right, cv2.BORDER_CONSTANT, value=pad_alpha)
    return np.ascontiguousarray(out_image), None if out_alpha is None else np.ascontiguousarray(out_alpha)


class FitParams(StageParams):
    size: Dimension | tuple[Dimension, Dimension] = Field(
        description="canvas in pixels: an int for a square, or [width, height]"
    )
    mode: FitMode = Field("fit", description="fit: whole image inside, padded | cover: canvas filled, centre-cropped")
    background: str = Field("#ffffff", description="pad colour: '#RRGGBB', '#RGB' or 'transparent' (pad gets alpha 0)")
    upscale: bool = Field(True, description="enlarge images smaller than the canvas; false: centre them unscaled")
    interpolation: Interpolation = Field(
        "auto", description="auto (area to shrink, cubic to enlarge) | area | linear | cubic | lanczos | nearest"
    )

    @field_validator("background")
    @classmethod
    def _valid_color(cls, value: str) -> str:
        parse_color_or_transparent(value)
        return value.strip().lower()


class Fit(Stage):
    """Fit or cover a fixed canvas; see :func:`fit_to_canvas`. Alpha is resized, padded or created with the image."""

    name: ClassVar[str] = "geometry.fit"
    Params: ClassVar[type[StageParams]] = FitParams
    summary: ClassVar[str] = "Scale onto an exact canvas: fit (pad) or cover (centre-crop), optional transparent pad."
    example: ClassVar[dict[str, Any]] = {"size": 1024, "background": "#ffffff"}
    params: FitParams

    def process(self, item: Item) -> Item:
        p = self.params
        image, alpha = fit_to_canvas(
            item.image,
            item.alpha,
            size=p.size,
            mode=p.mode,
            background=p.background,
            upscale=p.upscale,
            interpolation=p.interpolation,
        )
        return item.replace(image=image, alpha=alpha)
