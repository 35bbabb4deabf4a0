"""Bounds on metrics measured upstream: fail the item alone, or flag it."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imgx import Item, Stage, StageError, StageParams

__all__ = ["Bound", "GateParams", "QualityGate", "broken_bounds", "gate"]


class Bound(BaseModel):
    """``min`` and/or ``max`` for one metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = Field(default=None, description="the metric must be >= this")
    max: float | None = Field(default=None, description="the metric must be <= this")

    @model_validator(mode="after")
    def _one_side(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("got a bound with neither min nor max; expected at least one")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"got min {self.min} > max {self.max}; expected min <= max")
        return self


class GateParams(StageParams):
    """Parameters of ``quality.gate``."""

    bounds: dict[str, Bound] = Field(
        min_length=1,
        description="metric name -> {min, max}; a name matches a metric key exactly (node.ssim) or by its last "
        "part (ssim matches every upstream node's ssim)",
    )
    action: Literal["fail", "flag"] = Field(
        default="flag", description="fail: the item fails alone; flag: a flag per broken bound, item kept"
    )
    missing: Literal["fail", "flag"] = Field(
        default="fail",
        description="a bound on a metric no upstream node measured: fail the item (default) or flag <name>_missing",
    )


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _keys(metrics: dict[str, Any], name: str) -> list[str]:
    return [k for k in metrics if k == name or k.endswith(f".{name}")]


def broken_bounds(
    metrics: dict[str, Any], bounds: dict[str, Bound], missing: Literal["fail", "flag"] = "fail"
) -> list[tuple[str, str]]:
    """``(flag, message)`` per broken bound, e.g. ``("ssim_below_min", "ssim 0.42 < min 0.5 (short by 0.08)")``.

    A bound on a metric no upstream node measured raises :class:`imgx.StageError` (``missing="fail"``) or is skipped
    (``missing="flag"``: :func:`gate` flags it ``<name>_missing``)."""
    broken: list[tuple[str, str]] = []
    for name, bound in bounds.items():
        keys = _keys(metrics, name)
        if not keys and missing == "flag":
            continue
        if not keys:
            raise StageError(
                f"got no metric {name!r} on this item for the bound on {name}; expected a quality.metrics node "
                f"upstream that measures it (measured: {sorted(metrics) or 'nothing'})"
            )
        for key in keys:
            value = metrics[key]
            if value is None or isinstance(value, str):
                continue  # not measurable here (no mask, identical images): nothing to bound
            short = key if key == name else name
            if bound.min is not None and value < bound.min:
                broken.append(
                    (
                        f"{short}_below_min",
                        f"{key} {_fmt(value)} < min {_fmt(bound.min)} (short by {_fmt(bound.min - value)})",
                    )
                )
            if bound.max is not None and value > bound.max:
                broken.append(
                    (
                        f"{short}_above_max",
                        f"{key} {_fmt(value)} > max {_fmt(bound.max)} (over by {_fmt(value - bound.max)})",
                    )
                )
    return broken


def gate(
    item: Item,
    bounds: dict[str, Bound],
    action: Literal["fail", "flag"] = "flag",
    missing: Literal["fail", "flag"] = "fail",
) -> Item:
    """The item unchanged (``flag``: plus a flag per broken bound), or :class:`imgx.StageError` (``fail``). With
    ``missing="flag"`` a bound on an unmeasured metric is flagged ``<name>_missing`` whatever the action."""
    broken = broken_bounds(item.metrics, bounds, missing)
    if broken and action == "fail":
        raise StageError(f"item {item.sku!r} breaks quality bounds: " + "; ".join(m for _, m in broken))
    unmeasured = [f"{name}_missing" for name in bounds if not _keys(item.metrics, name)]
    flags = [flag for flag, _ in broken] + unmeasured
    return item.noted(*flags) if flags else item


class QualityGate(Stage):
    """``quality.gate``: bounds on metrics measured upstream."""

    name: ClassVar[str] = "quality.gate"
    Params: ClassVar[type[StageParams]] = GateParams
    summary: ClassVar[str] = "fail or flag items whose upstream quality metrics break min/max bounds"
    example: ClassVar[dict[str, Any]] = {
        "bounds": {"ssim": {"min": 0.5}, "product_delta_e": {"max": 3.0}},
        "action": "flag",
        "missing": "flag",
    }

    def process(self, item: Item, *others: Item) -> Item:
        params: GateParams = self.params  # type: ignore[assignment]
        return gate(item, params.bounds, params.action, params.missing)
