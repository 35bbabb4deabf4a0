"""imgx_quality: measured quality of outputs (``quality.metrics``, ``quality.gate``).

``quality.metrics`` reads two nodes (``needs: [output, reference]``) and notes SSIM, PSNR, product CIEDE2000 and
sharpness on the output; ``quality.gate`` fails or flags items against bounds on those metrics. No no-reference
model score is built yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx

from .gate import Bound, GateParams, QualityGate, broken_bounds, gate
from .measure import METRICS, MetricsParams, QualityMetrics, measure, sharpness

__all__ = [
    "METRICS",
    "STAGES",
    "Bound",
    "GateParams",
    "MetricsParams",
    "QualityGate",
    "QualityMetrics",
    "broken_bounds",
    "gate",
    "imgx_stages",
    "measure",
    "sharpness",
]

STAGES: tuple[type[imgx.Stage], ...] = (QualityMetrics, QualityGate)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The quality stages."""
    return list(STAGES)
