"""Centre the product on a canvas: crop to the bounding box of its mask and scale it to fill a fraction of the frame."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from imgx import Item, Stage, StageError, StageParams
from imgx.arrays import Interpolation, check_alpha, check_rgb, flatten_alpha, resize_plane
from imgx.color import parse_color_or_transparent

from ._common import Dimension

__all__ = ["Center", "CenterFit", "CenterParams", "center_fit", "center_product", "product_bbox"]


def product_bbox(alpha: np.ndarray | None, shape: tuple[int, ...], threshold: int = 128) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` (end exclusive) of the pixels whose alpha is ``>= threshold``; the whole image when
    ``alpha`` is ``None`` (no alpha means fully opaque).

    :param alpha: ``None`` or ``(H, W)`` uint8 mask.
    :param shape: the image's shape, ``(H, W, ...)``.
    :param threshold: 1..255; faint halo and shadow pixels below it do not count.
    :raises ValueError: no pixel reaches ``threshold`` (an empty mask).
    """
    height, width = shape[:2]
    if alpha is None:
        return 0, 0, width, height
    solid = alpha >= threshold
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    if rows.size == 0:
        raise ValueError(
            f"got no alpha >= {threshold} (max {int(alpha.max())}) for the product; expected a product mask: "
            "segment.product found nothing, or lower threshold"
        )
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclasses.dataclass(frozen=True)
class CenterFit:
    """Where :func:`center_product` puts a product box, and what it achieved.

    :param canvas: ``(width, height)`` of the canvas (``size``, or smaller with ``min_size``).
    :param scale: the enlargement (or reduction) applied to the photo.
    :param fill: the fraction of the canvas the box fills along its limiting side: the ``fill`` asked for, or less.
    :param limited_by: why ``fill`` fell short: ``"max_upscale"`` (the photo is too small to enlarge that far),
        ``"margin"`` (the margin left less room), or ``""`` (it was reached).
    """

    canvas: tuple[int, int]
    scale: float
    fill: float
    limited_by: str


def center_fit(
    box: tuple[int, int],
    *,
    size: int | tuple[int, int],
    fill: float = 0.85,
    margin: int = 0,
    max_upscale: float = 2.0,
    min_size: int | None = None,
) -> CenterFit:
    """The canvas and scale :func:`center_product` uses for a product box of ``box = (width, height)`` pixels, and
    the fill that reaches (see there for the rules); reads no pixel."""
    box_w, box_h = box
    canvas_w, canvas_h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def wanted(canvas_w: int, canvas_h: int) -> float:
        fit = fill * min(canvas_w / box_w, canvas_h / box_h)
        return min(fit, (canvas_w - 2 * margin) / box_w, (canvas_h - 2 * margin) / box_h)

    if min_size is not None and wanted(canvas_w, canvas_h) > max_upscale and min(canvas_w, canvas_h) > min_size:
        shrink = max(max_upscale / wanted(canvas_w, canvas_h), min_size / min(canvas_w, canvas_h))
        short = max(min_size, round(min(canvas_w, canvas_h) * shrink))
        ratio = short / min(canvas_w, canvas_h)
        canvas_w, canvas_h = max(1, round(canvas_w * ratio)), max(1, round(canvas_h * ratio))
        canvas_w, canvas_h = (short, canvas_h) if canvas_w <= canvas_h else (canvas_w, short)
    asked = fill * min(canvas_w / box_w, canvas_h / box_h)
    scale = min(wanted(canvas_w, canvas_h), max_upscale)
    reached = scale * max(box_w / canvas_w, box_h / canvas_h)
    limited_by = ""
    if scale < asked * (1 - 1e-9):
        limited_by = "max_upscale" if scale == max_upscale else "margin"
    return CenterFit((canvas_w, canvas_h), scale, reached, limited_by)


def center_product(
    image: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    size: int | tuple[int, int],
    fill: float = 0.85,
    margin: int = 0,
    threshold: int = 128,
    background: str = "#ffffff",
    max_upscale: float = 2.0,
    min_size: int | None = None,
    interpolation: Interpolation = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale and place the image so the product's bounding box is centred on a ``size`` canvas and fills ``fill`` of
    it along its limiting side (the longer side of the box on a square canvas: the marketplace main-image rule).

    The scale is ``fill * min(canvas_w / box_w, canvas_h / box_h)``, lowered so that ``margin`` pixels stay free on
    every side, and capped at ``max_upscale`` (a small product then fills less than ``fill``, rather than going soft).
    With ``min_size``, a capped product keeps its fill on a smaller canvas instead: the canvas shrinks (aspect kept,
    margin kept) until the product fills ``fill`` again, but its shorter side never below ``min_size`` (marketplaces
    prefer an 85 % product on a 1000 px square to a 45 % one on 1600 px).
    The box is centred to within half a pixel (a pixel after rounding the scaled size). What lies around the product
    in the photo comes along (cropped at the canvas edge); the canvas beyond the photo is the pad.

    Without alpha the whole image is the product (no alpha means fully opaque), so this fits the photo at ``fill``.

    Alpha out:

    - ``background: transparent``: the product mask placed on the canvas (0 in the pad); RGB 0 in the pad. Run
      ``compose.background`` after it for a colour, gradient or image background and a shadow. Without an input
      alpha, alpha is 255 over the photo and 0 in the pad.
    - a colour: the product composited (sRGB "over", as the JPEG encoder flattens) onto that colour, so the photo's
      own surroundings disappear; alpha is 255 everywhere (``None`` when the input had none).

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param alpha: ``None`` or ``(H, W)`` uint8 product mask (255 = product), not modified.
    :param size: canvas side for a square, or ``(width, height)``.
    :param fill: 0 < fill <= 1.
    :param margin: pixels kept free between the box and each canvas edge.
    :param threshold: 1..255: alpha at or above it counts for the bounding box (see :func:`product_bbox`).
    :param background: ``"#RRGGBB"``, ``"#RGB"`` or ``"transparent"``.
    :param max_upscale: the largest enlargement, >= 1 (1 never enlarges).
    :param min_size: ``None`` (the canvas is always ``size``) or the smallest shorter canvas side a capped product may
        shrink the canvas to.
    :param interpolation: ``auto`` (area when shrinking, Lanczos when enlarging), ``area``, ``linear``, ``cubic``,
        ``lanczos`` or ``nearest``; image and alpha are resampled alike.
    :return: ``(image, alpha)``: ``(h, w, 3)`` uint8 RGB and ``None`` or ``(h, w)`` uint8, with ``(w, h)`` the canvas
        (``size``, or smaller with ``min_size``).
    :raises ValueError: bad arguments, or an empty mask.
    """
    check_rgb(image)
    if alpha is not None:
        check_alpha(alpha, image.shape)
    canvas_w, canvas_h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if canvas_w < 1 or canvas_h < 1:
        raise ValueError(f"got {size!r} for size; expected positive width and height")
    if not 0 < fill <= 1:
        raise ValueError(f"got fill={fill}; expected 0 < fill <= 1")
    if margin < 0 or 2 * margin >= min(canvas_w, canvas_h):
        raise ValueError(f"got margin={margin} for a {canvas_w} x {canvas_h} canvas; expected 0 <= 2 * margin < side")
    if max_upscale < 1:
        raise ValueError(f"got max_upscale={max_upscale}; expected >= 1 (1 never enlarges)")
    if min_size is not None and not 2 * margin < min_size:
        raise ValueError(f"got min_size={min_size} with margin={margin}; expected min_size > 2 * margin")
    color = parse_color_or_transparent(background)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = product_bbox(alpha, image.shape, threshold)
    box_w, box_h = x1 - x0, y1 - y0

    layout = center_fit((box_w, box_h), size=size, fill=fill, margin=margin, max_upscale=max_upscale, min_size=min_size)
    (canvas_w, canvas_h), scale = layout.canvas, layout.scale
    if interpolation == "auto":
        interpolation = "area" if scale < 1 else "lanczos"

    # Crop the source to what the canvas shows (plus the resampling filter's reach), then scale only that.
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    reach = 4 + math.ceil(1.0 / scale)
    wx0 = max(0, math.floor(cx - canvas_w / (2 * scale)) - reach)
    wx1 = min(width, math.ceil(cx + canvas_w / (2 * scale)) + reach)
    wy0 = max(0, math.floor(cy - canvas_h / (2 * scale)) - reach)
    wy1 = min(height, math.ceil(cy + canvas_h / (2 * scale)) + reach)
    crop_w, crop_h = wx1 - wx0, wy1 - wy0
    new_w, new_h = max(1, round(crop_w * scale)), max(1, round(crop_h * scale))
    scaled = resize_plane(image[wy0:wy1, wx0:wx1], (new_w, new_h), interpolation)
    scaled_alpha = (
        np.full((new_h, new_w), 255, np.uint8)
        if alpha is None
        else resize_plane(alpha[wy0:wy1, wx0:wx1], (new_w, new_h), interpolation)
    )

    # Where the scaled crop's top-left corner lands so that the box centre sits on the canvas centre.
    left = round(canvas_w / 2.0 - (cx - wx0) * new_w / crop_w)
    top = round(canvas_h / 2.0 - (cy - wy0) * new_h / crop_h)
    dst_x0, dst_y0 = max(0, left), max(0, top)
    dst_x1, dst_y1 = min(canvas_w, left + new_w), min(canvas_h, top + new_h)
    src = (slice(dst_y0 - top, dst_y1 - top), slice(dst_x0 - left, dst_x1 - left))
    out = np.zeros((canvas_h, canvas_w, 3), np.uint8)
    out_alpha = np.zeros((canvas_h, canvas_w), np.uint8)
    out[dst_y0:dst_y1, dst_x0:dst_x1] = scaled[src]
    out_alpha[dst_y0:dst_y1, dst_x0:dst_x1] = scaled_alpha[src]
    if color is None:
        return out, out_alpha

    # A colour canvas: the product "over" the colour, in integer sRGB (the JPEG encoder's own flattening).
    out = flatten_alpha(out, out_alpha, color)
    return out, None if alpha is None else np.full((canvas_h, canvas_w), 255, np.uint8)


class CenterParams(StageParams):
    size: Dimension | tuple[Dimension, Dimension] = Field(
        description="canvas in pixels: an int for a square, or [width, height]"
    )
    fill: float = Field(
        0.85, gt=0.0, le=1.0, description="fraction of the canvas the product's box fills along its limiting side"
    )
    margin: int = Field(0, ge=0, le=16384, description="pixels kept free between the product's box and every edge")
    threshold: int = Field(
        128, ge=1, le=255, description="alpha >= this counts as product for the box (faint halo/shadow does not)"
    )
    background: str = Field(
        "#ffffff",
        description="'transparent' (keep the mask as alpha, for compose.background) or a colour '#RRGGBB' / '#RGB' "
        "the product is composited onto",
    )
    max_upscale: float = Field(
        2.0, ge=1.0, le=64.0, description="largest enlargement; smaller products then fill less (1 = never enlarge)"
    )
    min_size: Dimension | None = Field(
        None,
        description="null: the canvas is always size; else a product held back by max_upscale shrinks the canvas "
        "(aspect kept) to keep its fill, down to this shorter side",
    )
    interpolation: Interpolation = Field(
        "auto", description="auto (area to shrink, Lanczos to enlarge) | area | linear | cubic | lanczos | nearest"
    )
    # The gate below never changes a pixel, so it is left out of the output hash (exclude=True): tightening it
    # redoes no finished output on --resume (a failed item is retried anyway).
    min_fill: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        exclude=True,
        description="null: no check; else an item whose product fills less than this (e.g. a small photo held back "
        "by max_upscale) is handled as on_miss says. The fill reached is always recorded in the ledger's metrics",
    )
    on_miss: Literal["fail", "flag", "ignore"] = Field(
        "flag",
        exclude=True,
        description="what an item below min_fill becomes: 'flag' (written, with the flag fill_below_min in the "
        "ledger), 'fail' (a failed item with the reason) or 'ignore'",
    )

    @field_validator("background")
    @classmethod
    def _valid_color(cls, value: str) -> str:
        parse_color_or_transparent(value)
        return value.strip().lower()

    @model_validator(mode="after")
    def _margin_fits(self) -> CenterParams:
        side = self.size if isinstance(self.size, int) else min(self.size)
        if 2 * self.margin >= side:
            raise ValueError(f"got margin={self.margin} for a canvas side of {side}; expected 2 * margin < side")
        if self.min_size is not None and not 2 * self.margin < self.min_size <= side:
            raise ValueError(
                f"got min_size={self.min_size} for a canvas side of {side}; expected 2 * margin < min_size <= side"
            )
        return self


class Center(Stage):
    """Centre the product (its mask's bounding box) on a canvas at a fill fraction; see :func:`center_product`.

    An item without alpha is centred as a whole (no alpha means fully opaque); an item whose mask has no pixel at
    or above ``threshold`` fails alone (there is no product to centre).
    """

    name: ClassVar[str] = "geometry.center"
    Params: ClassVar[type[StageParams]] = CenterParams
    summary: ClassVar[str] = "Crop to the product's mask and centre it on a canvas, filling a fraction (e.g. 85%)."
    example: ClassVar[dict[str, Any]] = {"size": 512, "fill": 0.85, "background": "transparent"}
    params: CenterParams

    @classmethod
    def alpha_produced(cls, params: StageParams) -> bool:
        """``background: transparent`` always sets alpha (the product's mask, or the photo's area without one)."""
        return getattr(params, "background", "") == "transparent"

    def process(self, item: Item) -> Item:
        p = self.params
        try:
            x0, y0, x1, y1 = product_bbox(item.alpha, item.image.shape, p.threshold)
            layout = center_fit(
                (x1 - x0, y1 - y0),
                size=p.size,
                fill=p.fill,
                margin=p.margin,
                max_upscale=p.max_upscale,
                min_size=p.min_size,
            )
            image, alpha = center_product(
                item.image,
                item.alpha,
                size=p.size,
                fill=p.fill,
                margin=p.margin,
                threshold=p.threshold,
                background=p.background,
                max_upscale=p.max_upscale,
                min_size=p.min_size,
                interpolation=p.interpolation,
            )
        except ValueError as exc:
            raise StageError(f"item {item.sku!r}: {exc}") from exc
        why = {"max_upscale": f"enlargement capped at {p.max_upscale:g}x", "margin": "the margin"}.get(
            layout.limited_by, ""
        )
        metrics = {"fill": round(layout.fill, 4), "scale": round(layout.scale, 4), "limited_by": layout.limited_by}
        if p.min_fill is not None and layout.fill < p.min_fill and p.on_miss != "ignore":
            box = f"{x1 - x0} x {y1 - y0} px"
            if p.on_miss == "fail":
                raise StageError(
                    f"item {item.sku!r}: the product fills {layout.fill:.0%} of the canvas, below min_fill "
                    f"{p.min_fill:.0%} ({why or 'limit'}; the product is {box} in the source): supply a larger photo, "
                    "raise max_upscale, or set on_miss: flag"
                )
            return item.replace(image=image, alpha=alpha).noted("fill_below_min", **metrics)
        return item.replace(image=image, alpha=alpha).noted(**metrics)
