"""imgx_compose: put a masked product on a new background (colour, gradient or image) with a soft drop shadow.

Each operation is a plain function on ``(H, W, 3)`` uint8 RGB arrays and ``(H, W)`` uint8 masks (:func:`composite`,
:func:`drop_shadow`, :func:`gradient`, :func:`cover`) plus a thin :class:`imgx.Stage`, ``compose.background``, that
holds its typed parameters. The stage registers through the ``imgx`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx

from ._common import linear_to_srgb, srgb_to_linear
from .backdrop import cover, load_backdrop
from .background import Background, BackgroundParams, compose_background, shadow_pixels
from .composite import composite
from .gradient import gradient, gradient_positions
from .shadow import drop_shadow

__all__ = [
    "STAGES",
    "Background",
    "BackgroundParams",
    "compose_background",
    "composite",
    "cover",
    "drop_shadow",
    "gradient",
    "gradient_positions",
    "imgx_stages",
    "linear_to_srgb",
    "load_backdrop",
    "shadow_pixels",
    "srgb_to_linear",
]

STAGES: tuple[type[imgx.Stage], ...] = (Background,)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The compose stages."""
    return list(STAGES)
