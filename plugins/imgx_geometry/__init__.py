"""imgx_geometry: first-party geometry stages (fit onto a canvas, resize, centre the product).

Each operation is a plain function on ``(H, W, 3)`` uint8 RGB arrays (and an optional ``(H, W)`` uint8 alpha) plus a
thin :class:`imgx.Stage` that holds its typed parameters. The stages register through the ``imgx`` entry-point group
like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx

from .center import Center, CenterParams, center_product, product_bbox
from .fit import Fit, FitParams, fit_to_canvas
from .resize import Resize, ResizeParams, resize_image, target_size

__all__ = [
    "STAGES",
    "Center",
    "CenterParams",
    "Fit",
    "FitParams",
    "Resize",
    "ResizeParams",
    "center_product",
    "fit_to_canvas",
    "imgx_stages",
    "product_bbox",
    "resize_image",
    "target_size",
]

STAGES: tuple[type[imgx.Stage], ...] = (Fit, Resize, Center)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The geometry stages."""
    return list(STAGES)
