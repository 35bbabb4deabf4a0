"""Rule packs: a marketplace's rules with their bounds, built in or written by a user in YAML.

A user pack extends a built-in one, overrides some settings and drops or adds rules::

    name: my-shop
    extends: amazon-main
    rules:
      product.fill: {min: 0.80}
      blur: {min: 30}
    drop: [product.count]

Errors (an unknown pack or rule id, a malformed file) are :class:`imgx.RecipeError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imgx import Item, RecipeError

from .rules import RULES, Facts, Finding, RuleSettings, facts_of
from .text import TextDetector, default_detector

__all__ = [
    "BUILTIN_PACKS",
    "Pack",
    "PackFile",
    "builtin_pack",
    "check_item",
    "load_pack",
    "needs_text",
    "resolve_pack",
]

MB = 1_000_000

# Numbers from the marketplaces' pages (cited in the README); blur and product.count are imgx's own bounds. ``text``:
# Amazon's main image allows no text, logo or watermark, Google Merchant no watermark or promotional text, Zalando no
# text or watermark over the image; text printed on the product itself is allowed (the rule measures text over the
# background when the item carries a product mask). Shopify, the merchant's own store, sets no such rule.
BUILTIN_PACKS: dict[str, dict[str, dict[str, Any]]] = {
    "amazon-main": {
        "size.min": {"longest": 1000},
        "size.max": {"longest": 10000},
        "format": {"allowed": ["JPEG", "PNG", "TIFF", "GIF"], "animated": False},
        "color.space": {},
        "background.white": {"tolerance": 0, "min_share": 0.99},
        "product.fill": {"min": 0.85},
        "product.cropped": {},
        "product.count": {"max": 1},
        "border": {"max_px": 0},
        "blur": {"min": 20.0},
        "text": {"max_regions": 0},
    },
    "google-merchant": {
        "size.min": {"width": 100, "height": 100},
        "size.max": {"megapixels": 64},
        "file.max_bytes": {"max_bytes": 16 * MB},
        "border": {"max_px": 0},
        "text": {"max_regions": 0},
    },
    "zalando": {
        "aspect": {"ratio": 1 / 1.44, "tolerance": 0.02},
        "size.min": {"width": 762, "height": 1100},
        "format": {"allowed": ["JPEG"]},
        "file.max_bytes": {"max_bytes": 20 * MB},
        "background.white": {"tolerance": 3, "min_share": 0.98},
        "text": {"max_regions": 0},
    },
    "shopify": {
        "file.max_bytes": {"max_bytes": 20 * MB},
        "size.max": {"megapixels": 20},
        "aspect": {"ratio": 1.0, "tolerance": 0.01, "level": "warning"},
    },
}


class PackFile(BaseModel):
    """A user's pack file, as written in YAML."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, description="the pack's name, shown in messages")
    extends: str | None = Field(None, description="a built-in pack (amazon-main, google-merchant, zalando, shopify)")
    rules: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="rule id -> settings that override or add to the base pack's"
    )
    drop: list[str] = Field(default_factory=list, description="rule ids of the base pack to leave out")


@dataclasses.dataclass(frozen=True)
class Pack:
    """A resolved pack: its name and, per rule id, validated settings."""

    name: str
    rules: dict[str, RuleSettings]

    def check(self, facts: Facts) -> list[Finding]:
        """The rules ``facts`` break, each with the level its settings give."""
        found = []
        for rule_id, settings in self.rules.items():
            finding = RULES[rule_id][0](facts, settings)
            if finding is not None:
                found.append(dataclasses.replace(finding, level=settings.level))
        return found


def _unknown_rule(rule_id: str, where: str) -> RecipeError:
    return RecipeError(f"{where}: got rule id {rule_id!r}; expected one of {', '.join(RULES)}")


def _settings(rule_id: str, values: dict[str, Any], where: str) -> RuleSettings:
    if rule_id not in RULES:
        raise _unknown_rule(rule_id, where)
    try:
        return RULES[rule_id][1].model_validate(values)
    except ValidationError as exc:
        raise RecipeError(f"{where}: bad settings for rule {rule_id!r}: {exc}") from exc


def builtin_pack(name: str) -> Pack:
    """The built-in pack ``name``; :class:`imgx.RecipeError` listing the valid names for an unknown one."""
    if name not in BUILTIN_PACKS:
        raise RecipeError(
            f"got rule pack {name!r}; expected one of {', '.join(BUILTIN_PACKS)} or a YAML pack file (.yaml)"
        )
    return Pack(name, {rid: _settings(rid, v, f"pack {name}") for rid, v in BUILTIN_PACKS[name].items()})


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``path`` (keys and indexes), or of the deepest node found on the way."""
    line = None if node is None else node.start_mark.line + 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_pack(path: str | Path) -> Pack:
    """A user pack from a YAML file; :class:`imgx.RecipeError` naming ``file:line`` when it is malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"cannot read rule pack {path}: {exc}; expected a readable YAML file") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RecipeError(f"{path}:{line}: malformed YAML in rule pack: {exc}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path}:1: got {type(data).__name__} for a rule pack; expected a mapping with name:")
    try:
        spec = PackFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        line = _line_of(node, tuple(err["loc"])) or 1
        key = ".".join(str(k) for k in err["loc"])
        raise RecipeError(f"{path}:{line}: {key}: {err['msg']}") from exc
    base = builtin_pack(spec.extends) if spec.extends is not None else Pack(spec.name, {})
    rules = dict(base.rules)
    for rule_id in spec.drop:
        if rule_id not in RULES:
            raise _unknown_rule(rule_id, f"{path}:{_line_of(node, ('drop', spec.drop.index(rule_id)))}")
        rules.pop(rule_id, None)
    for rule_id, values in spec.rules.items():
        where = f"{path}:{_line_of(node, ('rules', rule_id))}"
        old = rules[rule_id].model_dump(exclude_unset=True) if rule_id in rules else {}
        rules[rule_id] = _settings(rule_id, {**old, **(values or {})}, where)
    return Pack(spec.name, rules)


def resolve_pack(entry: str | Path) -> Pack:
    """A built-in pack by name, or a user pack from a ``.yaml``/``.yml`` path."""
    if str(entry).endswith((".yaml", ".yml")):
        return load_pack(entry)
    return builtin_pack(str(entry))


def needs_text(packs: list[Pack]) -> bool:
    """Whether a pack of ``packs`` has the ``text`` rule (and so needs the text detector)."""
    return any("text" in pack.rules for pack in packs)


def check_item(item: Item, packs: list[Pack], text_detector: TextDetector | None = None) -> list[Finding]:
    """Every rule of ``packs`` that ``item`` breaks (a rule shared by two packs is reported once per bound).

    :param text_detector: runs for the ``text`` rule (once per item, only when a pack has the rule); None: this
        process's :func:`~imgx_compliance.text.default_detector`.
    """
    if needs_text(packs) and text_detector is None:
        text_detector = default_detector()
    facts = facts_of(item, text_detector if needs_text(packs) else None)
    found: list[Finding] = []
    for pack in packs:
        for finding in pack.check(facts):
            if finding not in found:
                found.append(finding)
    return found
