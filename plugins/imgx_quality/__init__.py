"""imgx_quality: measured quality of outputs (``quality.metrics``, ``quality.gate``).

``quality.metrics`` reads two nodes (``needs: [output, reference]``; the reference may be ``source``, the catalog
image) and notes SSIM, PSNR, product CIEDE2000, sharpness and, when asked, the no-reference BRISQUE score
(:mod:`.brisque`) on the output; ``quality.gate`` fails or flags items against bounds on those metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
from imgx.models import ModelSpec

from .brisque import BRISQUE_LIVE, BRISQUE_MODEL, Brisque, brisque_features
from .gate import Bound, GateParams, QualityGate, broken_bounds, gate
from .measure import ALL_METRICS, METRICS, MetricsParams, QualityMetrics, measure, sharpness

__all__ = [
    "ALL_METRICS",
    "BRISQUE_LIVE",
    "BRISQUE_MODEL",
    "METRICS",
    "STAGES",
    "Bound",
    "Brisque",
    "GateParams",
    "MetricsParams",
    "QualityGate",
    "QualityMetrics",
    "brisque_features",
    "broken_bounds",
    "gate",
    "imgx_models",
    "imgx_stages",
    "measure",
    "sharpness",
]

STAGES: tuple[type[imgx.Stage], ...] = (QualityMetrics, QualityGate)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The quality stages."""
    return list(STAGES)


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """BRISQUE's SVR and feature scaling (``brisque-live``, no PyTorch module), for ``metrics: [brisque]``."""
    return [BRISQUE_LIVE]
