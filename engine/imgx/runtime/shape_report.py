"""What ``imgx plan`` shows for model stages: the backend ``auto`` picks and the shape buckets of the catalog.

Image sizes come from file headers only (Pillow opens a file lazily; EXIF orientations 5-8 swap width and height, as
decoding will); no pixel is decoded.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ImgxError
from .base import BackendOptions
from .factory import choose_backend, model_precision
from .model_stage import ModelStage

if TYPE_CHECKING:
    from ..item import ItemRef
    from ..models import ModelSpec
    from ..plan import Plan
    from ..registry import Registry

__all__ = ["HEADER_LIMIT", "ModelNodePlan", "header_size", "plan_model_nodes"]

HEADER_LIMIT = 1000  # catalog items whose headers imgx plan reads


@dataclasses.dataclass(frozen=True)
class ModelNodePlan:
    """One model stage of a plan: its model, the backend it will run on (and why), and its shape buckets.

    :param buckets: ``(H, W)`` -> how many of the headers read run at that padded shape.
    :param bucketed: whether the backend builds per shape (shape buckets) or takes any size (padded to the stride).
    :param read: how many image headers were read; ``unread``: catalog items whose size could not be read there.
    """

    node: str
    model: str
    backend: str
    precision: str
    device: str
    reason: str
    buckets: dict[tuple[int, int], int]
    bucketed: bool
    read: int
    unread: int


def header_size(source: str) -> tuple[int, int] | None:
    """``(h, w)`` of a local image file as decoding will orient it, from its header; ``None`` if unreadable or not
    a local file."""
    from PIL import Image, UnidentifiedImageError

    from ..io.decode import header_orientation

    if "://" in source and not source.startswith("file://"):
        return None
    path = source.removeprefix("file://")
    try:
        with Image.open(path) as image:
            w, h = image.size
            orientation = header_orientation(image)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None  # decoding the item will fail it with the reason; a size is only an estimate's input
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def plan_model_nodes(
    plan: Plan, registry: Registry, refs: Iterable[ItemRef], *, device: str, limit: int = HEADER_LIMIT
) -> list[ModelNodePlan]:
    """For each model stage of ``plan``: the backend chosen for the recipe's ``execution`` on ``device`` and the
    buckets that the first ``limit`` catalog images fall into."""
    nodes = [node for node in plan.nodes if node.holds_model and issubclass(node.stage, ModelStage)]
    if not nodes:
        return []
    sizes, unread = [], 0
    for index, ref in enumerate(refs):
        if index >= limit:
            break
        size = header_size(ref.source) if not ref.error else None
        if size is None:
            unread += 1
        else:
            sizes.append(size)
    settings = plan.settings
    result = []
    for node in nodes:
        stage: type[ModelStage] = node.stage  # type: ignore[assignment]
        bucketed = True
        spec: ModelSpec | None = None
        try:
            spec = registry.get_model(stage.model)
            wanted, why = model_precision(settings.backend, spec, settings.precision, device, registry)
        except ImgxError as exc:
            wanted, why, model_problem = settings.precision, "", str(exc)
        options = BackendOptions(device=device, precision=wanted, model_key=_cache_key(stage, spec, node.params))
        try:
            channels = stage.ready_channels(spec) if spec is not None else 0
            choice = choose_backend(settings.backend, options, registry, channels)
            backend, reason = choice.name, choice.reason
            precision, where = choice.options.precision, choice.options.device
            bucketed = not registry.get_backend(backend).any_shape(choice.options)
        except ImgxError as exc:
            backend, reason, precision, where = "error", str(exc), wanted, device
        if why:
            reason = f"{why}; {reason}"
        buckets: collections.Counter[tuple[int, int]] = collections.Counter()
        try:
            if spec is not None:
                buckets.update(stage.bucket_of(spec, node.params, h, w, buckets=bucketed) for h, w in sizes)
            else:
                reason = f"{reason}; model: {model_problem}"
        except ImgxError as exc:
            reason = f"{reason}; model: {exc}"
        result.append(
            ModelNodePlan(
                node=node.id,
                model=stage.model,
                backend=backend,
                precision=precision,
                device=where,
                reason=reason,
                buckets=dict(buckets.most_common()),
                bucketed=bucketed,
                read=len(sizes),
                unread=unread,
            )
        )
    return result


def _cache_key(stage: type[ModelStage], spec: ModelSpec | None, params: object) -> str:
    """The stage's :meth:`~imgx.runtime.ModelStage.cache_key`, or ``""`` where it cannot be had without running the
    stage (the plan's ``auto`` then leaves cached builds out, where a worker would count them)."""
    if spec is None:
        return ""
    try:
        return stage.cache_key(spec, params)  # type: ignore[arg-type]
    except Exception:  # a plugin's model_key_extra that reads more than its params
        return ""
