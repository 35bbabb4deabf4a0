"""The catalog "enhance" composite: white balance, contrast, gamma, saturation/vibrance, denoise, sharpen, in that
fixed order, through the same functions as the single stages."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageParams
from imgx.arrays import check_rgb

from .contrast import auto_contrast
from .denoise import DenoiseMethod, denoise
from .gamma import adjust_gamma
from .saturation import adjust_saturation
from .sharpen import unsharp_mask
from .white_balance import WhiteBalanceMethod
from .white_balance import white_balance as apply_white_balance

__all__ = ["Enhance", "EnhanceParams", "enhance"]


class EnhanceParams(StageParams):
    """Parameters of :func:`enhance`. The defaults are a gentle catalog enhance: neutral whites, mild local contrast,
    a little vibrance and crispness, no denoise."""

    white_balance: WhiteBalanceMethod = Field(
        "auto", description="auto (bright near-neutral pixels) | gray_world | white_patch (percentile) | learned | none"
    )
    white_patch_percentile: float = Field(
        99.0, ge=50.0, le=100.0, description="white_patch: channel percentile taken as white"
    )
    wb_max_gain: float = Field(1.5, ge=1.0, le=8.0, description="largest per-channel white-balance gain")
    auto_contrast: bool = Field(True, description="CLAHE on Lab lightness")
    clip_limit: float = Field(1.5, ge=0.1, le=40.0, description="CLAHE contrast limit; higher is stronger")
    tile_grid: int = Field(8, ge=1, le=64, description="CLAHE grid: tile_grid x tile_grid tiles")
    gamma: float = Field(1.0, ge=0.1, le=10.0, description="> 1 brightens midtones, < 1 darkens, 1 = unchanged")
    saturation: float = Field(1.0, ge=0.0, le=4.0, description="global saturation factor: 0 = grey, 1 = unchanged")
    vibrance: float = Field(0.15, ge=-1.0, le=1.0, description="extra saturation for dull pixels; 0 = off")
    denoise: float = Field(0.0, ge=0.0, le=50.0, description="denoise strength (about the noise std dev); 0 = off")
    denoise_method: DenoiseMethod = Field("nlmeans", description="nlmeans (better, slower) | bilateral (faster)")
    sharpen: float = Field(0.4, ge=0.0, le=5.0, description="unsharp-mask amount; 0 = off")
    sharpen_radius: float = Field(1.0, ge=0.1, le=50.0, description="unsharp-mask Gaussian sigma in pixels")
    sharpen_threshold: int = Field(2, ge=0, le=255, description="leave detail <= this many grey levels unsharpened")


def enhance(image: np.ndarray, params: EnhanceParams | None = None) -> np.ndarray:
    """White balance -> contrast (CLAHE) -> gamma -> saturation/vibrance -> denoise -> sharpen; a step whose
    parameter is neutral is skipped.

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param params: the settings; ``None`` means the defaults of :class:`EnhanceParams`.
    :return: ``(H, W, 3)`` uint8 RGB (the input itself when every step is neutral).
    """
    check_rgb(image, allow_empty=True)
    p = params if params is not None else EnhanceParams()
    out = apply_white_balance(image, p.white_balance, percentile=p.white_patch_percentile, max_gain=p.wb_max_gain)
    if p.auto_contrast:
        out = auto_contrast(out, clip_limit=p.clip_limit, tile_grid=p.tile_grid)
    out = adjust_gamma(out, p.gamma)
    out = adjust_saturation(out, p.saturation, p.vibrance)
    out = denoise(out, p.denoise, p.denoise_method)
    return unsharp_mask(out, p.sharpen, p.sharpen_radius, p.sharpen_threshold)


class Enhance(Stage):
    """The catalog enhance composite; see :func:`enhance`. Alpha is carried through."""

    name: ClassVar[str] = "color.enhance"
    Params: ClassVar[type[StageParams]] = EnhanceParams
    summary: ClassVar[str] = "Catalog enhance: white balance, contrast, gamma, saturation, denoise, sharpen."
    params: EnhanceParams

    def process(self, item: Item) -> Item:
        return item.replace(image=enhance(item.image, self.params))
