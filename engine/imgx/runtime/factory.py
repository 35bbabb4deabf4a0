"""The way in: :func:`create_backend` by name, and what ``auto`` picks for a device and precision.

``auto`` takes the first backend of its order that can run here, else eager FP32 (always available), and says why in
one line. The order is not fixed here: each registered backend states its rank per device kind and precision
(``Backend.auto_ranks``), so a plugin backend can join it. The built-in ranks give: on CUDA, TensorRT, then
``torch.compile``, then eager. On the CPU the order comes from
``imgx bench`` of the style network on the 2-core CI machine (``benchmarks/results/bench-multistyle26-vm-*.json``):
on a quiet machine ``torch.compile`` was 1.8-2.1x eager at FP32 and ONNX Runtime 1.5-2.0x, so compile was 5-18 %
ahead of ONNX Runtime in steady state. ``auto`` still puts ONNX Runtime first at FP32, because the two are not equal
in what a run gets: ONNX Runtime takes any image size (dynamic axes) after an export of under 2 s, while compile's
first run of a model on a machine builds two packages (one for the first shape, one with dynamic shapes for the
rest; 16-50 s each on 2 cores), which a short run never earns back; later runs load them in under a second.
``execution.backend: compile`` is there for long runs. At BF16/FP16 on the CPU eager (any size, no build) comes first
for the same reason, then compile (3.8-5.0x eager FP32 at BF16 on that CPU, whose flags then listed AMX and AVX-512
BF16; the same VM showed only ``avx512_bf16`` on 2026-12-05). ``imgx build`` makes compile's packages before a run,
and a backend with nothing left to build for the module (:meth:`~imgx.runtime.Backend.ready`) takes its
``ready_ranks`` rank instead: compile goes first at BF16/FP16 on the CPU once its dynamic-shape package is cached,
where eager's only advantage is gone. The precision is settled per model before the backend is chosen
(``execution.precision: auto``: :meth:`imgx.models.ModelSpec.precision_for`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..errors import BackendError
from .base import Backend, BackendOptions, device_kind

if TYPE_CHECKING:
    import torch

    from ..models.spec import ModelSpec
    from ..registry import Registry

__all__ = [
    "BackendChoice",
    "auto_order",
    "backend_for",
    "choose_backend",
    "create_backend",
    "model_precision",
    "resolve_backend",
]


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """What runs a model: the backend name, the options it runs with (a fallback may change device or precision)
    and one line saying why."""

    name: str
    options: BackendOptions
    reason: str

    @property
    def fell_back(self) -> bool:
        return self.reason.startswith("auto: fell back")


def auto_order(
    registry: Registry, device_kind: str, precision: str, options: BackendOptions | None = None, channels: int = 0
) -> tuple[str, ...]:
    """The backends ``auto`` tries on ``device_kind`` (``"cpu"``/``"cuda"``) at ``precision``, in order: every
    registered backend that ranks itself there, lowest rank first (ties by name). With ``options`` and ``channels``
    (the module's input channels), a backend that is :meth:`~imgx.runtime.Backend.ready` for them takes its
    ``ready_ranks`` rank."""
    return tuple(name for _, name, _ in _ranked(registry, device_kind, precision, options, channels))


def _ranked(
    registry: Registry, device_kind: str, precision: str, options: BackendOptions | None, channels: int
) -> list[tuple[int, str, bool]]:
    """``(rank, name, ready)`` of each backend ``auto`` may try, sorted (see :func:`auto_order`)."""
    ranked = []
    for name, entry in registry.backends.items():
        rank = entry.obj.auto_rank(device_kind, precision)
        ready_rank = entry.obj.ready_ranks.get((device_kind, precision))
        ready = bool(options and channels and ready_rank is not None and entry.obj.ready(options, channels))
        if ready:
            rank = ready_rank
        if rank is not None:
            ranked.append((rank, name, ready))
    return sorted(ranked)


def choose_backend(name: str, options: BackendOptions, registry: Registry, channels: int = 0) -> BackendChoice:
    """Resolve ``name`` (``"auto"`` or a registered backend) for ``options``.

    A named backend that cannot run here raises :class:`BackendError` with its reason; ``auto`` falls back to eager
    FP32 (on the CPU if the device cannot be used) and says what it skipped. ``channels``: the module's input
    channels, with which ``auto`` puts first a backend that has its builds for the module on disk already
    (:func:`auto_order`).
    """
    if name != "auto":
        problem = registry.get_backend(name).unavailable(options)
        if problem:
            raise BackendError(
                f"got backend {name!r} at {options.precision} on {options.device}, which cannot run here: {problem}. "
                "Use execution.backend: auto to fall back, or another backend (imgx bench shows which run here)"
            )
        return BackendChoice(name, options, f"{name} (requested)")
    kind = device_kind(options.device)
    skipped = []
    for rank, candidate, ready in _ranked(registry, kind, options.precision, options, channels):
        problem = registry.get_backend(candidate).unavailable(options)
        if problem is None:
            note = f"; skipped {'; '.join(skipped)}" if skipped else ""
            why = (
                "its builds for this model are in the engine cache, so it starts with nothing to build"
                if ready
                else f"the first of auto's order for {options.precision} on {kind} that runs here"
            )
            if channels and not ready:
                note += _once_built(registry, kind, options, rank)
            return BackendChoice(candidate, options, f"auto: {candidate}, {why}{note}")
        skipped.append(f"{candidate} ({problem})")
    fallback = dataclasses.replace(options, precision="fp32")
    if registry.get_backend("eager").unavailable(fallback):
        fallback = dataclasses.replace(fallback, device="cpu")
    why = "; ".join(skipped) or f"no backend runs {options.precision} on {options.device}"
    return BackendChoice("eager", fallback, f"auto: fell back to eager fp32 on {fallback.device}: {why}")


def _once_built(registry: Registry, kind: str, options: BackendOptions, rank: int) -> str:
    """``"; compile would go first once built (imgx build)"`` for the backends that run here and would rank ahead of
    ``rank`` once their builds for the module were cached; ``""`` when none would."""
    ahead = [
        name
        for name, entry in registry.backends.items()
        if entry.obj.ready_ranks.get((kind, options.precision), rank) < rank and entry.obj.unavailable(options) is None
    ]
    return f"; {', '.join(sorted(ahead))} would go first once built (imgx build)" if ahead else ""


def model_precision(
    name: str,
    spec: ModelSpec,
    requested: str,
    device: str,
    registry: Registry,
    cpu_flags: frozenset[str] | None = None,
) -> tuple[str, str]:
    """The precision ``spec`` runs at when the recipe asks for ``requested`` on backend ``name`` and ``device``, and
    why if it differs (for ``auto``, always the reason; :meth:`imgx.models.ModelSpec.precision_for`).

    ``auto`` picks what the backend runs: where it would pick BF16 but the recipe names a backend that runs FP32 only
    (``onnxruntime``), the model runs FP32 on that backend rather than the stage failing to start; a precision asked
    for by name is kept, so a backend that cannot run it still says so. A model stage then checks auto's BF16 on
    the module it runs (:func:`imgx.runtime.bf16_check.bf16_check`) before it trusts the CPU's flags.
    ``cpu_flags``: another CPU's flag set, as for ``precision_for``.
    """
    precision, why = spec.precision_for(requested, device=device, cpu_flags=cpu_flags)
    if requested != "auto" or precision == "fp32":
        return precision, why
    if name != "auto":
        problem = registry.get_backend(name).unavailable(BackendOptions(device=device, precision=precision))
        if problem is not None:
            return "fp32", f"auto: fp32: the recipe's backend {name} cannot run {precision} here ({problem})"
    return precision, why


def resolve_backend(name: str, options: BackendOptions, registry: Registry, channels: int = 0) -> str:
    """The backend name ``name`` resolves to (what ``auto`` picks here); :func:`choose_backend` gives the reason."""
    return choose_backend(name, options, registry, channels).name


def create_backend(
    name: str, module: torch.nn.Module, options: BackendOptions, registry: Registry, channels: int = 0
) -> Backend:
    """The backend ``name`` (or what ``auto`` picks, see :func:`choose_backend` for ``channels``) wrapping ``module``,
    not yet loaded: call ``load()``.

    The returned backend's ``choice`` attribute is the :class:`BackendChoice` (with the reason) it was made from.
    """
    return backend_for(choose_backend(name, options, registry, channels), module, registry)


def backend_for(choice: BackendChoice, module: torch.nn.Module | None, registry: Registry) -> Backend:
    """The backend ``choice`` names, made with its options around ``module`` (``None`` only where the backend
    :meth:`~imgx.runtime.Backend.runs_without_module`), not yet loaded; its ``choice`` attribute is ``choice``."""
    backend: Any = registry.get_backend(choice.name)(module, choice.options)
    backend.choice = choice
    return backend
