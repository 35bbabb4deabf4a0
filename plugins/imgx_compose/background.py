"""``compose.background``: the masked product on a colour, a gradient or a backdrop image, with an optional shadow."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from imgx import Item, Stage, StageContext, StageError, StageParams, recipe_path
from imgx.arrays import check_alpha, check_rgb
from imgx.color import parse_color

from ._common import solid
from .backdrop import cover, load_backdrop
from .composite import BlendSpace, composite
from .gradient import GradientKind, gradient
from .shadow import drop_shadow

__all__ = ["Background", "BackgroundParams", "compose_background", "shadow_pixels"]

OutputAlpha = Literal["opaque", "keep", "none"]
MissingAlpha = Literal["error", "opaque"]


class BackgroundParams(StageParams):
    """Parameters of :func:`compose_background`. The background is ``image`` if given, else ``gradient`` if given,
    else the solid ``color``."""

    color: str = Field(
        "#ffffff",
        description="solid background '#RRGGBB' or '#RGB' (also the matte under a backdrop image's own transparency)",
    )
    gradient: list[str] | None = Field(
        None, description="gradient colour stops, two or more '#RRGGBB', first to last; replaces color"
    )
    gradient_positions: list[float] | None = Field(
        None, description="where each stop sits on 0..1, non-decreasing, one per colour; default: evenly spaced"
    )
    gradient_kind: GradientKind = Field(
        "linear", description="linear (along gradient_angle) | radial (centre to the farthest corner)"
    )
    gradient_angle: float = Field(
        180.0,
        description="linear gradient direction in degrees, as CSS: 0 bottom->top, 90 left->right, 180 top->bottom",
    )
    image: str | None = Field(
        None,
        description="backdrop image file (absolute, or relative to the recipe's folder), scaled to cover "
        "the frame and centre-cropped; replaces color and gradient",
    )
    shadow: bool = Field(False, description="add a soft drop shadow derived from the mask under the product")
    shadow_opacity: float = Field(0.35, ge=0.0, le=1.0, description="shadow strength 0..1 under a solid mask")
    shadow_offset: tuple[float, float] = Field(
        (0.0, 1.0), description="[x, y] shift of the shadow in shadow_unit; positive is right / down"
    )
    shadow_blur: float = Field(
        2.0, ge=0.0, le=100.0, description="shadow blur radius in shadow_unit (Gaussian sigma = radius / 2, as CSS)"
    )
    shadow_unit: Literal["percent", "px"] = Field(
        "percent", description="unit of shadow_offset and shadow_blur: percent of the image's longer side, or pixels"
    )
    shadow_color: str = Field("#000000", description="shadow colour '#RRGGBB' or '#RGB'")
    space: BlendSpace = Field(
        "srgb", description="where pixels mix: srgb (as browsers and cut-out viewers do) | linear (linear light)"
    )
    output_alpha: OutputAlpha = Field(
        "opaque", description="alpha of the result: opaque (255 everywhere) | keep (the product mask) | none (dropped)"
    )
    missing_alpha: MissingAlpha = Field(
        "error",
        description="an item without alpha: error (run segment.product first) | opaque (whole image is the "
        "product: returned unchanged)",
    )

    @field_validator("color", "shadow_color")
    @classmethod
    def _valid_color(cls, value: str) -> str:
        parse_color(value)
        return value.strip().lower()

    @field_validator("gradient")
    @classmethod
    def _valid_stops(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError(f"got {len(value)} gradient colour(s); expected two or more, e.g. ['#ffffff', '#e8e8e8']")
        for color in value:
            parse_color(color)
        return [color.strip().lower() for color in value]

    @field_validator("image")
    @classmethod
    def _readable_image(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = recipe_path(value, info)
        if not path.is_file():
            raise ValueError(f"got {value!r} for image; expected an existing image file (looked for {path})")
        return str(path)

    @model_validator(mode="after")
    def _consistent(self) -> BackgroundParams:
        if self.gradient_positions is not None:
            if self.gradient is None:
                raise ValueError("got gradient_positions without gradient; expected gradient colours to place")
            positions = self.gradient_positions
            if (
                len(positions) != len(self.gradient)
                or any(not 0 <= p <= 1 for p in positions)
                or any(b < a for a, b in itertools.pairwise(positions))
            ):
                raise ValueError(
                    f"got {positions} for gradient_positions; expected {len(self.gradient)} non-decreasing numbers "
                    "in 0..1, one per gradient colour"
                )
        if self.gradient is not None and self.image is not None:
            raise ValueError("got both gradient and image; expected one background: a gradient or an image")
        return self


def shadow_pixels(value: float, size: tuple[int, int], unit: str) -> float:
    """A shadow length in pixels: ``value`` percent of the longer side of ``size = (width, height)``, or pixels."""
    return value * max(size) / 100.0 if unit == "percent" else float(value)


def compose_background(
    image: np.ndarray,
    alpha: np.ndarray,
    params: BackgroundParams | None = None,
    *,
    backdrop: np.ndarray | None = None,
) -> np.ndarray:
    """The product (``image`` where ``alpha`` is) over a new background, with an optional drop shadow.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param alpha: ``(H, W)`` uint8 product mask (255 = product), not modified; all zero is an error (nothing to show).
    :param params: the settings; ``None`` means the defaults of :class:`BackgroundParams` (white, no shadow).
    :param backdrop: ``(h, w, 3)`` uint8 RGB already read from ``params.image`` (a stage reads it once); ``None``
        reads the file when ``params.image`` is set.
    :return: ``(H, W, 3)`` uint8 RGB.
    """
    p = params if params is not None else BackgroundParams()
    check_rgb(image)
    check_alpha(alpha, image.shape)
    if not alpha.any():
        raise ValueError(
            "got an all-zero alpha (no product pixel); expected a product mask: segment.product found nothing, "
            "try a lower threshold there"
        )
    height, width = image.shape[:2]
    matte = parse_color(p.color)
    if p.image is not None:
        background = cover(backdrop if backdrop is not None else load_backdrop(p.image, matte), width, height)
    elif p.gradient is not None:
        background = gradient(
            height, width, p.gradient, positions=p.gradient_positions, kind=p.gradient_kind, angle=p.gradient_angle
        )
    else:
        background = solid(height, width, np.array(matte, np.uint8))
    shadow = None
    if p.shadow and p.shadow_opacity > 0:
        size = (width, height)
        offset = (
            shadow_pixels(p.shadow_offset[0], size, p.shadow_unit),
            shadow_pixels(p.shadow_offset[1], size, p.shadow_unit),
        )
        blur = shadow_pixels(p.shadow_blur, size, p.shadow_unit)
        shadow = drop_shadow(alpha, offset=offset, blur=blur, opacity=p.shadow_opacity)
    return composite(image, alpha, background, shadow=shadow, shadow_color=parse_color(p.shadow_color), space=p.space)


class Background(Stage):
    """Replace the background behind the product mask; see :func:`compose_background`.

    Needs the item's alpha (``segment.product`` sets it). An item without alpha fails alone with a message saying so
    (``missing_alpha: error``, the default: composing an unmasked photo is a recipe mistake, and a silent passthrough
    would ship photos with their old background), or is returned unchanged (``missing_alpha: opaque``: no alpha
    means fully opaque, so nothing of the background shows). An all-zero mask fails the item: the result would be a
    blank background.
    """

    name: ClassVar[str] = "compose.background"
    Params: ClassVar[type[StageParams]] = BackgroundParams
    summary: ClassVar[str] = "Put the masked product on a colour, gradient or image, with an optional soft shadow."
    example: ClassVar[dict[str, Any]] = {
        "color": "#ffffff",
        "shadow": True,
        "shadow_offset": [0.0, 1.0],
        "shadow_blur": 2.0,
    }
    needs_alpha: ClassVar[bool] = True  # unless missing_alpha: opaque
    params: BackgroundParams

    @classmethod
    def alpha_needed(cls, params: StageParams) -> bool:
        return getattr(params, "missing_alpha", "error") != "opaque"

    def __init__(self, params: StageParams | None = None, context: StageContext | None = None) -> None:
        super().__init__(params, context)
        p = self.params
        try:
            self._backdrop = None if p.image is None else load_backdrop(p.image, parse_color(p.color))
        except ValueError as exc:  # the file went away or is not an image: the stage cannot start
            raise StageError(str(exc)) from exc
        self._covers: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def _covered(self, width: int, height: int) -> np.ndarray | None:
        """The backdrop scaled to ``width x height``; the last few sizes are kept (catalogs repeat sizes)."""
        if self._backdrop is None:
            return None
        key = (width, height)
        if key in self._covers:
            self._covers.move_to_end(key)
        else:
            self._covers[key] = cover(self._backdrop, width, height)
            if len(self._covers) > 8:
                self._covers.popitem(last=False)
        return self._covers[key]

    def process(self, item: Item) -> Item:
        p = self.params
        if item.alpha is None:
            if p.missing_alpha == "opaque":
                alpha = None if p.output_alpha == "none" else np.full(item.image.shape[:2], 255, np.uint8)
                return item.replace(alpha=alpha)
            raise StageError(
                f"got no alpha for item {item.sku!r}; expected a mask: run segment.product first "
                "(or set missing_alpha: opaque to pass such items through unchanged)"
            )
        try:
            rgb = compose_background(item.image, item.alpha, p, backdrop=self._covered(*item.size))
        except ValueError as exc:
            raise StageError(f"item {item.sku!r}: {exc}") from exc
        if p.output_alpha == "keep":
            alpha = item.alpha
        elif p.output_alpha == "opaque":
            alpha = np.full(rgb.shape[:2], 255, np.uint8)
        else:
            alpha = None
        return item.replace(image=rgb, alpha=alpha)
