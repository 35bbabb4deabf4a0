"""``check.marketplace``: the rules of one or more packs on the item a run is about to write.

Pixel rules (size, aspect, background, product, border, blur) measure the item as it leaves the last stage. File rules
(``file.max_bytes``, ``format``, ``color.space``) read what the decoder recorded about the *source* file
(``meta["format"]``, ``meta["source_mode"]``, ``meta["icc_profile"]``) and its size on disk when it is a local file:
the bytes and format of the output the run is about to encode are not known to a stage, and a source that is an
object-store URI has no byte size or frame count here (those rules then pass silently).

The ``text`` rule runs PP-OCRv4 text detection (:mod:`.text`, the registered model ``ppocr-v4-det``): each stage
instance holds one :class:`~imgx_compliance.text.TextDetector`, whose file is fetched through the run's model registry
and whose ONNX Runtime session is created on the first item the rule checks, then reused; a stage whose packs have no
``text`` rule never builds one (and never imports onnxruntime). :meth:`CheckMarketplace.models` names the model, so
``imgx validate``/``imgx plan`` and ``imgx models`` know about it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from imgx import Item, RecipeError, Stage, StageContext, StageError, StageParams, recipe_path

from .packs import Pack, check_item, needs_text, resolve_pack
from .text import PPOCR_V4_DET, TEXT_MODEL, TextDetector, model_file

__all__ = ["CheckMarketplace", "CheckParams", "check_marketplace"]


class CheckParams(StageParams):
    """Parameters of ``check.marketplace``."""

    rules: list[str] = Field(
        ...,
        min_length=1,
        description="rule packs: built-in names (amazon-main, google-merchant, zalando, shopify) or YAML pack files "
        "(relative to the recipe's folder)",
    )
    action: Literal["fail", "flag"] = Field(
        "flag", description="fail: the item fails with each broken rule named; flag: flagged in the ledger, written"
    )

    @field_validator("rules", mode="after")
    @classmethod
    def _resolve(cls, value: list[str], info: ValidationInfo) -> list[str]:
        resolved = []
        for entry in value:
            path = str(recipe_path(entry, info)) if entry.endswith((".yaml", ".yml")) else entry
            try:
                resolve_pack(path)  # fail at validation, before any image is read
            except RecipeError as exc:
                raise ValueError(str(exc)) from exc
            resolved.append(path)
        return resolved


def check_marketplace(
    item: Item,
    packs: list[Pack],
    action: Literal["fail", "flag"] = "flag",
    text_detector: TextDetector | None = None,
) -> Item:
    """``item`` checked against ``packs``: flagged (one flag per broken rule id; metrics ``<rule>``, ``<rule>.bound``
    and ``<rule>.message`` hold the measured value, the bound and the sentence), or,
    with ``action="fail"`` and any error-level rule broken, a :class:`imgx.StageError` naming each rule, value and
    bound. Warnings only ever flag. The image ``(H, W, 3)`` uint8 RGB and its alpha pass through unchanged.
    ``text_detector`` runs for the ``text`` rule (None: one detector shared by this process)."""
    findings = check_item(item, packs, text_detector)
    errors = [f for f in findings if f.level == "error"]
    if action == "fail" and errors:
        listed = "; ".join(f"{f.rule}: got {f.value}, expected {f.bound}" for f in errors)
        raise StageError(f"item {item.sku!r} breaks marketplace rules: {listed}")
    flags = [f.rule if f.level == "error" else f"warning:{f.rule}" for f in findings]
    metrics: dict[str, Any] = {}
    for f in findings:  # the ledger keeps what an audit reports: the value, the bound it missed and why
        metrics.update({f.rule: f.value, f"{f.rule}.bound": f.bound, f"{f.rule}.message": f.message})
    return item.noted(*flags, **metrics)


class CheckMarketplace(Stage):
    """Checks each item against marketplace rule packs (Amazon, Google Merchant, Zalando, Shopify, user packs)."""

    name: ClassVar[str] = "check.marketplace"
    Params: ClassVar[type[StageParams]] = CheckParams
    summary: ClassVar[str] = "check images against marketplace rule packs; fail or flag each broken rule by its id"
    example: ClassVar[dict[str, Any]] = {"rules": ["amazon-main", "shopify"], "action": "flag"}
    version: ClassVar[str] = "2"  # 2: the text rule (in amazon-main, google-merchant, zalando)

    def __init__(self, params: StageParams | None = None, context: StageContext | None = None) -> None:
        super().__init__(params, context)
        assert isinstance(self.params, CheckParams)
        self.packs = [resolve_pack(entry) for entry in self.params.rules]
        # built now, loaded on the first item the text rule checks (the file fetched, the session created)
        self.text_detector = TextDetector(self._text_model, self.context.threads) if needs_text(self.packs) else None

    @classmethod
    def models(cls, params: StageParams) -> tuple[str, ...]:
        """The text detector ``ppocr-v4-det`` when a pack has the ``text`` rule, else none."""
        assert isinstance(params, CheckParams)
        return (TEXT_MODEL,) if needs_text([resolve_pack(entry) for entry in params.rules]) else ()

    def _text_model(self) -> str:
        if self.context.registry is None:  # built outside a run: the installed plugins' registry fetches it
            return str(model_file())
        from imgx.models import ensure_files

        return str(ensure_files(PPOCR_V4_DET, registry=self.context.registry)["onnx"])

    def process(self, item: Item, *others: Item) -> Item:
        assert isinstance(self.params, CheckParams)
        return check_marketplace(item, self.packs, self.params.action, self.text_detector)

    def close(self) -> None:
        if self.text_detector is not None:
            self.text_detector.close()
