"""imgx_compliance: marketplace image rules (rule packs, the ``check.marketplace`` stage).

Each rule is a small function with a stable id (``size.min``, ``product.fill``, ...) that measures one thing and
compares it to a bound (:mod:`.rules`); packs group rules with their bounds, built in or in a user's YAML
(:mod:`.packs`); ``check.marketplace`` runs packs on a run's items and fails or flags them (:mod:`.check`).
OCR (``text``) is not built yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx

from .check import CheckMarketplace, CheckParams, check_marketplace
from .packs import BUILTIN_PACKS, Pack, PackFile, builtin_pack, check_item, load_pack, resolve_pack
from .rules import RULES, Facts, Finding, RuleSettings, border_width, facts_of, product_fill, rule_ids, sharpness

__all__ = [
    "BUILTIN_PACKS",
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
    "imgx_stages",
    "load_pack",
    "product_fill",
    "resolve_pack",
    "rule_ids",
    "sharpness",
]

STAGES: tuple[type[imgx.Stage], ...] = (CheckMarketplace,)


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The compliance stages."""
    return list(STAGES)
