"""imgx_compliance: marketplace image rules (rule packs, the ``check.marketplace`` stage).

Each rule is a small function with a stable id (``size.min``, ``product.fill``, ...) that measures one thing and
compares it to a bound (:mod:`.rules`); packs group rules with their bounds, built in or in a user's YAML
(:mod:`.packs`); ``check.marketplace`` runs packs on a run's items and fails or flags them (:mod:`.check`);
``imgx audit`` runs them over a whole catalog without writing anything next to its images (:mod:`.audit`, imported
only when the command is used).
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
import imgx.models

from .check import CheckMarketplace, CheckParams, check_marketplace
from .packs import BUILTIN_PACKS, Pack, PackFile, builtin_pack, check_item, load_pack, resolve_pack
from .rules import RULES, Facts, Finding, RuleSettings, border_width, facts_of, product_fill, rule_ids, sharpness
from .text import PPOCR_V4_DET

__all__ = [
    "BUILTIN_PACKS",
    "COMMANDS",
    "PPOCR_V4_DET",
    "RULES",
    "STAGES",
    "CheckMarketplace",
    "CheckParams",
    "Facts",
    "Finding",
    "Pack",
    "PackFile",
    "RuleSettings",
    "border_width",
    "builtin_pack",
    "check_item",
    "check_marketplace",
    "facts_of",
    "imgx_commands",
    "imgx_models",
    "imgx_stages",
    "load_pack",
    "product_fill",
    "resolve_pack",
    "rule_ids",
    "sharpness",
]

STAGES: tuple[type[imgx.Stage], ...] = (CheckMarketplace,)
COMMANDS: tuple[imgx.Command, ...] = (
    imgx.Command(
        "audit",
        "imgx_compliance.audit:audit_command",
        "Audit a catalog against marketplace rule packs: which images will be rejected, and why.",
    ),
)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The compliance stages."""
    return list(STAGES)


@imgx.hookimpl
def imgx_commands() -> Sequence[imgx.Command]:
    """``imgx audit``."""
    return list(COMMANDS)


@imgx.hookimpl
def imgx_models() -> Sequence[imgx.models.ModelSpec]:
    """The text detector of the ``text`` rule (PP-OCRv4 det, ONNX Runtime only)."""
    return [PPOCR_V4_DET]
