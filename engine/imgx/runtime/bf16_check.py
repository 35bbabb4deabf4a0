"""Whether this CPU's BF16 kernels really compute a model: measured once per machine, not assumed from its flags.

``execution.precision: auto`` picks BF16 for a model whose declared tolerance covers its measured BF16 difference,
on a CPU that lists AMX BF16. The flag says the instructions exist, not that they work where the run is: on a 2-core
Firecracker VM listing ``amx_bf16`` (2026-12-06) the style network at BF16 returned NaN for most 512 and 1024 px
photos and different pixels on each call for the same input (mean difference 0.005-0.045 where it was finite), while
the same kernels with AMX switched off (``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``) gave 1.2-1.6e-3 every time. So
before ``auto`` trusts BF16 for a model stage, :func:`bf16_check` runs the module the stage runs (the failure above
was in the stage's rewritten network, a convolution of a 3-pixel-wide strip, since rewritten; the registry's plain
network passed) at BF16 twice and at FP32 once on real photos
(two sizes), and passes only when every output is finite, both BF16 runs are identical and the mean difference from
FP32 is within the model's tolerance; then :func:`bf16_race` times it against the FP32 backend, since correct is not
yet faster. The verdicts are kept in ``$IMGX_HOME/engines/checks/`` under a key of the CPU,
its flags, the libraries, the oneDNN settings and the module's key, so the check costs about a second once per
machine and module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import TYPE_CHECKING

from ..io.atomic import atomic_write
from ..machine import cpu_flags
from .keys import device_name, engines_dir, library_versions

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import torch

    from .base import Backend

__all__ = ["CHECK_SIDES", "FASTER_BY", "RACE_SIDE", "Bf16Verdict", "bf16_check", "bf16_race", "judge"]

#: Square sides of the probe photos: the failures above showed at 256 px on some calls and at 512 px on all.
CHECK_SIDES = (256, 512)
#: BF16 must run this much faster than FP32, alone on one photo, for ``auto`` to pick it. Calibrated on the 2-core
#: AMX VM (2026-12-06): the style network's eager BF16 won such a race 1.13x (452 against 510 ms, ONNX Runtime FP32,
#: 1 thread, 1024 px) and still lost through the CLI with 2 workers (1.29x the peer against 1.64x), where both
#: workers share the cores' units and decode and encode run beside it.
FASTER_BY = 1.3
#: Side of the photo the two backends race on (:func:`bf16_race`): a catalog's usual size.
RACE_SIDE = 1024
#: Environment variables that change which kernels oneDNN runs (part of the verdict's key).
KERNEL_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE")


@dataclasses.dataclass(frozen=True)
class Bf16Verdict:
    """The check's outcome: ``ok`` and one line saying what was measured."""

    ok: bool
    reason: str


def judge(reference: list, first: list, second: list, tolerance: float) -> Bf16Verdict:
    """The verdict from FP32 ``reference`` outputs and two BF16 runs on the same inputs (arrays or tensors, one per
    probe): non-finite values, a run that differs from the other, or a mean difference over ``tolerance`` fail."""
    from .parity import compare

    worst = 0.0
    for ref, a, b in zip(reference, first, second, strict=True):
        for run in (a, b):
            found = compare(ref, run)
            if found["nonfinite"]:
                return Bf16Verdict(False, f"BF16 returned {found['nonfinite']} NaN/Inf values")
            worst = max(worst, float(found["mean_abs"]))
        repeat = compare(a, b)
        if repeat["max_abs"] > 0:
            return Bf16Verdict(False, f"BF16 gave different outputs for the same input (up to {repeat['max_abs']:.2g})")
    if worst > tolerance:
        return Bf16Verdict(False, f"BF16's mean difference {worst:.2g} exceeds the tolerance {tolerance:.2g}")
    return Bf16Verdict(True, f"BF16 checked on this CPU: mean difference {worst:.2g}, repeatable")


def _key(model_key: str) -> str:
    payload = {
        "cpu": device_name("cpu"),
        "flags": sorted(f for f in cpu_flags() if "bf16" in f or f.startswith(("amx", "avx512"))),
        "libraries": library_versions(),
        "env": {name: os.environ.get(name, "") for name in KERNEL_ENV},
        "module": model_key,
        "sides": CHECK_SIDES,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def bf16_check(
    module: torch.nn.Module,
    model_key: str,
    tolerance: float,
    channels: int = 3,
    sides: tuple[int, ...] = CHECK_SIDES,
) -> Bf16Verdict:
    """Whether ``module`` (``(B, channels, H, W)`` float32 in 0..1 -> float output) computes correctly at BF16 on
    this CPU (:func:`judge` against ``tolerance``), from the cache under ``model_key`` or measured now on real photos
    of ``sides`` px (:func:`imgx.runtime.bench.bench_input`)."""
    return _cached(
        engines_dir() / "checks" / f"bf16-{_key(model_key)}.json", lambda: _measure(module, tolerance, channels, sides)
    )


def bf16_race(key: str, bf16: Backend, fp32: Backend, channels: int = 3, side: int = RACE_SIDE) -> Bf16Verdict:
    """Whether ``bf16`` (a backend at BF16) runs a real ``side`` px photo (``RACE_SIDE`` by default) at least
    :data:`FASTER_BY` times as fast as ``fp32`` (the backend FP32 would use) here, as ``auto`` needs before it trades
    exactness for speed: on this 2-core AMX VM eager BF16 of the style network was 1.86x eager FP32, yet the CLI ran
    1.29x the peer with it against 1.64x with ONNX Runtime FP32. Each is loaded, run once, then timed three times,
    alternating (median); the verdict is cached under ``key`` (say the backends and threads in it)."""

    def race() -> Bf16Verdict:
        import statistics
        import time

        from .bench import bench_input

        x = bench_input(side, 1, channels)
        times: dict[str, list[float]] = {"bf16": [], "fp32": []}
        for backend in (bf16, fp32):
            backend.load()
            backend.infer(x)
        for _ in range(3):
            for name, backend in (("bf16", bf16), ("fp32", fp32)):
                start = time.perf_counter()
                backend.infer(x)
                times[name].append(time.perf_counter() - start)
        low, full = statistics.median(times["bf16"]), statistics.median(times["fp32"])
        said = (
            f"BF16 on {bf16.name} {low * 1000:.0f} ms against FP32 on {fp32.name} {full * 1000:.0f} ms per "
            f"{side} px photo here"
        )
        return Bf16Verdict(low * FASTER_BY <= full, said)

    return _cached(engines_dir() / "checks" / f"race-{_key(key)}.json", race)


def _cached(path: Path, measure: Callable[[], Bf16Verdict]) -> Bf16Verdict:
    """The verdict saved at ``path``, else ``measure()`` saved there (a cache that cannot be written costs a
    re-measure next time, never a run)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return Bf16Verdict(bool(saved["ok"]), str(saved["reason"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    verdict = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(dataclasses.asdict(verdict)).encode())
    except OSError:
        pass
    return verdict


def _measure(module: torch.nn.Module, tolerance: float, channels: int, sides: tuple[int, ...]) -> Bf16Verdict:
    import torch

    from ._common import module_copy, torch_dtype
    from .bench import bench_input

    module = module.eval()
    low = module_copy(module, "cpu", "bf16")
    reference, first, second = [], [], []
    with torch.inference_mode():
        for side in sides:
            x = bench_input(side, 1, channels)
            reference.append(module(x))
            first.append(low(x.to(torch_dtype("bf16"))).float())
            second.append(low(x.to(torch_dtype("bf16"))).float())
    return judge(reference, first, second, tolerance)
