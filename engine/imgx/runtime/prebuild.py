"""``imgx build``: build before a run what a recipe's model stages would build during it.

A backend that builds per model (``compile``'s packages on the CPU, ONNX exports, TensorRT engines) pays for it in
the first run that needs it, with the workers waiting. ``imgx build RECIPE`` starts each model stage of the recipe as
a worker would (same module, cache key, precision check and engine cache), with the backend the recipe names or, for
``auto``, ``--backend`` (``compile`` by default), and runs it on the input shapes the catalog's image headers give:
the most common shape first, then a second (the next most common, or the first with another height) so that a
backend with a dynamic-shape build (``compile``) makes it. A network that always runs at one size (U2-Netp at 320 x
320) gets its one shape only. For an ``auto`` recipe two kinds of stage are left alone, since ``auto`` would not run
them on the built backend even with its builds cached: one at a precision the backend has no ready rank for (U2-Netp
at FP32, where ONNX Runtime stays first), and one that runs its network in parts (Real-ESRGAN's trunk and
upsampler). With a named backend a stage's other parts are built where the backend builds them at start (ONNX
Runtime's sessions), else on their first use in the run. Once ``compile``'s dynamic-shape package is cached,
``auto`` picks ``compile`` at BF16/FP16 on the CPU (:meth:`imgx.runtime.Backend.ready`), where it would otherwise
run eager PyTorch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..errors import ImgxError
from ..stage import StageContext
from .base import device_kind
from .factory import choose_backend
from .model_stage import ModelStage
from .shape_report import plan_model_nodes

if TYPE_CHECKING:
    from ..item import ItemRef
    from ..plan import Plan
    from ..registry import Registry

__all__ = ["Built", "build_ahead"]


@dataclasses.dataclass(frozen=True)
class Built:
    """What :func:`build_ahead` did for one model node.

    :param shapes: the ``(B, C, H, W)`` inputs run, in order; ``seconds``: the time each took (build or load, and one
        run), the stage's start (weights, precision check) excluded; ``start_seconds``: that start.
    :param ready: whether ``auto`` now finds the backend's builds for this module cached (:meth:`Backend.ready`)
        and ranks it first for its precision on this device.
    :param skipped: why nothing was built for the node (``""`` when it was).
    """

    node: str
    model: str
    backend: str
    precision: str
    device: str
    shapes: tuple[tuple[int, int, int, int], ...] = ()
    seconds: tuple[float, ...] = ()
    start_seconds: float = 0.0
    ready: bool = False
    skipped: str = ""


def build_ahead(
    plan: Plan,
    registry: Registry,
    refs: Iterable[ItemRef],
    *,
    device: str,
    backend: str,
    threads: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[Built]:
    """For each model stage of ``plan``: start it with ``backend`` (the recipe's, or this one where the recipe says
    ``auto``) and run it on the catalog's two input shapes (see the module doc); return what was built."""
    settings = plan.settings
    name = settings.backend if settings.backend != "auto" else backend
    shaped = dataclasses.replace(plan, settings=dataclasses.replace(settings, backend=name))
    reports = {m.node: m for m in plan_model_nodes(shaped, registry, refs, device=device)}
    context = StageContext(
        device=device,
        batch_size=settings.batch_size,
        worker_id="build",
        backend=name,
        precision=settings.precision,
        threads=threads,
        registry=registry,
    )
    done = []
    for node in plan.nodes:
        if node.id not in reports:
            continue
        stage_class: type[ModelStage] = node.stage  # type: ignore[assignment]
        if settings.backend == "auto" and stage_class.runs_in_parts():
            why = "runs its network in parts, for which auto keeps its usual order: nothing to build ahead"
            done.append(Built(node.id, stage_class.model, "auto", settings.precision, device, skipped=why))
            log(f"{node.id}: {why}")
            continue
        log(f"{node.id}: starting {stage_class.name} on {name}")
        start = time.perf_counter()
        try:
            stage = stage_class(node.params, context)
        except Exception as exc:
            raise ImgxError(f"stage {node.uses} (node {node.id!r}) failed to start: {exc}") from exc
        started = time.perf_counter() - start
        try:
            spec = stage.spec
            options = stage.backend.options
            kind = device_kind(options.device)
            if settings.backend == "auto" and (kind, options.precision) not in type(stage.backend).ready_ranks:
                why = (
                    f"auto runs it at {options.precision} on {kind}, where {stage.choice.name} does not go first "
                    "even when built: nothing to build ahead"
                )
                done.append(
                    Built(
                        node.id,
                        spec.name,
                        stage.choice.name,
                        options.precision,
                        options.device,
                        start_seconds=started,
                        skipped=why,
                    )
                )
                log(f"{node.id}: {why}")
                continue
            channels = stage.in_channels or spec.in_channels or 3
            shapes = [(1, channels, h, w) for h, w in _two_shapes(stage_class, stage, reports[node.id].buckets)]
            seconds = []
            for shape in shapes:
                log(f"{node.id}: {stage.choice.name} {stage.backend.options.precision} at {shape[2]} x {shape[3]}")
                seconds.append(stage.backend.warmup(shape))
            # what auto would pick now for the module, with the builds just made
            ready = choose_backend("auto", options, registry, stage.ready_channels(spec)).name == stage.choice.name
            done.append(
                Built(
                    node=node.id,
                    model=spec.name,
                    backend=stage.choice.name,
                    precision=options.precision,
                    device=options.device,
                    shapes=tuple(shapes),
                    seconds=tuple(seconds),
                    start_seconds=started,
                    ready=ready,
                )
            )
        finally:
            stage.close()
    return done


def _two_shapes(
    stage_class: type[ModelStage], stage: ModelStage, buckets: dict[tuple[int, int], int]
) -> list[tuple[int, int]]:
    """The catalog's most common input shape and a second one (the next most common, else the first with a
    different height), or the first alone where the stage runs every image at one size."""
    spec, params = stage.spec, stage.params
    if not buckets:  # no header could be read: the network's own bench size
        side = spec.bench_sides[0]
        first = stage_class.bucket_of(spec, params, side, side, buckets=stage.uses_buckets)
    else:
        first = next(iter(buckets))
    h, w = first
    if (
        stage_class.bucket_of(spec, params, 2 * h, w, buckets=stage.uses_buckets) == first
        and stage_class.bucket_of(spec, params, h // 2, w, buckets=stage.uses_buckets) == first
    ):
        return [first]  # one size for every image
    others = [shape for shape in buckets if shape != first]
    if others:
        return [first, others[0]]
    other = stage_class.bucket_of(spec, params, max(1, h * 3 // 4), w, buckets=stage.uses_buckets)
    return [first, other] if other != first else [first]
