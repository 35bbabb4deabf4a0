"""Resize to a target side (long, short, width or height, keeping the aspect ratio) or to an exact width x height."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from imgx import Item, Stage, StageParams
from imgx.arrays import Interpolation, check_alpha, check_rgb, resize_plane

from ._common import Dimension

__all__ = ["Resize", "ResizeParams", "resize_image", "target_size"]


def target_size(
    size: tuple[int, int],
    *,
    long_side: int | None = None,
    short_side: int | None = None,
    width: int | None = None,
    height: int | None = None,
    upscale: bool = True,
) -> tuple[int, int]:
    """The ``(width, height)`` that :func:`resize_image` produces for an image of ``size = (width, height)``.

    Give exactly one of: ``long_side``; ``short_side``; ``width``; ``height``; ``width`` and ``height`` together
    (an exact size, the aspect ratio is not kept). With ``upscale=False`` no side grows: an image already within the
    target keeps its size, and an exact size is capped per side.
    """
    src_w, src_h = size
    given = [long_side is not None, short_side is not None, width is not None or height is not None]
    if sum(given) != 1:
        raise ValueError(
            f"got long_side={long_side}, short_side={short_side}, width={width}, height={height}; "
            "expected exactly one of long_side, short_side, or width and/or height"
        )
    if width is not None and height is not None:
        return (width, height) if upscale else (min(width, src_w), min(height, src_h))
    if long_side is not None:
        scale = long_side / max(src_w, src_h)
    elif short_side is not None:
        scale = short_side / min(src_w, src_h)
    elif width is not None:
        scale = width / src_w
    else:
        scale = height / src_h  # type: ignore[operator]
    if not upscale:
        scale = min(scale, 1.0)
    if scale == 1.0:
        return src_w, src_h
    return max(1, round(src_w * scale)), max(1, round(src_h * scale))


def resize_image(
    image: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    long_side: int | None = None,
    short_side: int | None = None,
    width: int | None = None,
    height: int | None = None,
    upscale: bool = True,
    interpolation: Interpolation = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize image and alpha together to the size :func:`target_size` computes.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param alpha: ``None`` or ``(H, W)`` uint8 alpha, not modified; resized with the same interpolation.
    :param long_side: target of the longer side (aspect kept).
    :param short_side: target of the shorter side (aspect kept).
    :param width: target width (aspect kept unless ``height`` is given too).
    :param height: target height (aspect kept unless ``width`` is given too).
    :param upscale: whether sides may grow.
    :param interpolation: ``auto`` (area when shrinking, cubic when enlarging), ``area``, ``linear``, ``cubic``,
        ``lanczos`` or ``nearest``.
    :return: ``(image, alpha)``: ``(h, w, 3)`` uint8 RGB and ``None`` or ``(h, w)`` uint8 (the inputs themselves when
        the size does not change).
    """
    check_rgb(image)
    if alpha is not None:
        check_alpha(alpha, image.shape)
    size = target_size(
        (image.shape[1], image.shape[0]),
        long_side=long_side,
        short_side=short_side,
        width=width,
        height=height,
        upscale=upscale,
    )
    out_alpha = None if alpha is None else resize_plane(alpha, size, interpolation)
    return resize_plane(image, size, interpolation), out_alpha


class ResizeParams(StageParams):
    long_side: Dimension | None = Field(None, description="target of the longer side in pixels (aspect kept)")
    short_side: Dimension | None = Field(None, description="target of the shorter side in pixels (aspect kept)")
    width: Dimension | None = Field(None, description="target width (aspect kept unless height is given too)")
    height: Dimension | None = Field(None, description="target height (aspect kept unless width is given too)")
    upscale: bool = Field(True, description="allow sides to grow; false: small images keep their size")
    interpolation: Interpolation = Field(
        "auto", description="auto (area to shrink, cubic to enlarge) | area | linear | cubic | lanczos | nearest"
    )

    @model_validator(mode="after")
    def _exactly_one_way(self) -> ResizeParams:
        ways = [
            name
            for name, given in (
                ("long_side", self.long_side is not None),
                ("short_side", self.short_side is not None),
                ("width/height", self.width is not None or self.height is not None),
            )
            if given
        ]
        if len(ways) != 1:
            got = ", ".join(ways) if ways else "none"
            raise ValueError(
                f"got {got} for the target size; expected exactly one of long_side, short_side, "
                "or width and/or height (e.g. long_side: 1024)"
            )
        return self


class Resize(Stage):
    """Resize by long side, short side, width, height or exact size; see :func:`resize_image`. Alpha is resized too."""

    name: ClassVar[str] = "geometry.resize"
    Params: ClassVar[type[StageParams]] = ResizeParams
    summary: ClassVar[str] = "Resize to a long side, short side, width, height or exact width x height."
    example: ClassVar[dict[str, Any]] = {"long_side": 1024}
    params: ResizeParams

    def process(self, item: Item) -> Item:
        p = self.params
        image, alpha = resize_image(
            item.image,
            item.alpha,
            long_side=p.long_side,
            short_side=p.short_side,
            width=p.width,
            height=p.height,
            upscale=p.upscale,
            interpolation=p.interpolation,
        )
        return item.replace(image=image, alpha=alpha)
