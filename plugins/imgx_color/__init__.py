"""imgx_color: first-party colour stages (white balance, contrast, gamma, saturation, denoise, sharpen, enhance).

Each operation is a plain function on ``(H, W, 3)`` uint8 RGB arrays plus a thin :class:`imgx.Stage` that holds its
typed parameters. The stages register through the ``imgx`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx

from .contrast import Contrast, ContrastParams, auto_contrast
from .denoise import Denoise, DenoiseParams, denoise
from .enhance import Enhance, EnhanceParams, enhance
from .gamma import Gamma, GammaParams, adjust_gamma
from .saturation import Saturation, SaturationParams, adjust_saturation
from .sharpen import Sharpen, SharpenParams, unsharp_mask
from .white_balance import WhiteBalance, WhiteBalanceParams, white_balance

__all__ = [
    "STAGES",
    "Contrast",
    "ContrastParams",
    "Denoise",
    "DenoiseParams",
    "Enhance",
    "EnhanceParams",
    "Gamma",
    "GammaParams",
    "Saturation",
    "SaturationParams",
    "Sharpen",
    "SharpenParams",
    "WhiteBalance",
    "WhiteBalanceParams",
    "adjust_gamma",
    "adjust_saturation",
    "auto_contrast",
    "denoise",
    "enhance",
    "imgx_stages",
    "unsharp_mask",
    "white_balance",
]

STAGES: tuple[type[imgx.Stage], ...] = (Enhance, WhiteBalance, Contrast, Gamma, Saturation, Denoise, Sharpen)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The colour stages, ``color.enhance`` first."""
    return list(STAGES)
