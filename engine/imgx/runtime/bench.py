"""``imgx bench``: backends of one registered model compared per size, batch and precision, in one run.

Every configuration (backend x precision x size x batch) gets the same input: real photos (scikit-image's coffee,
astronaut, chelsea, rocket...) resized and centre-cropped to ``size`` x ``size``, as a ``(B, C, size, size)`` float32
tensor. Each backend is loaded and built first (its build/compile seconds are recorded), warmed up, and checked
against eager FP32 on that input (max/mean absolute difference, NaN/Inf count). Then the timed runs are interleaved:
each repeat runs every configuration once, so drift in the machine's speed hits all of them alike. After them, a new
backend of each configuration that keeps its build on disk is loaded and run once from it (``cached_start_seconds``:
what the next worker or run pays). A row reports the
median and p90 latency of a batch, images/s, the speed-up against eager FP32 at the same size and batch measured in
this run, and the peak memory one inference added. A backend that cannot run here gets a row with the reason and no
number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import os
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ImgxError
from ..machine import machine_info

if TYPE_CHECKING:
    import torch

    from ..registry import Registry

__all__ = [
    "BENCH_PHOTOS",
    "TABLE_COLUMNS",
    "BenchOptions",
    "default_out",
    "reasons",
    "run_bench",
    "table_rows",
    "write_chart",
]

SCHEMA = 1
BENCH_PHOTOS = ("coffee", "astronaut", "chelsea", "rocket", "retina", "hubble_deep_field", "immunohistochemistry")
REFERENCE = ("eager", "fp32")


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What ``imgx bench`` measures.

    :param model: registry name of the model.
    :param backends: backend names, in report order (eager FP32 is always measured: it is the reference).
    :param sizes: input sides in pixels (square inputs); empty: the model's ``bench_sides``.
    :param batches: batch sizes.
    :param precisions: ``fp32`` / ``fp16`` / ``bf16``.
    :param repeats: timed runs per configuration (interleaved across configurations).
    :param warmup: untimed runs per configuration after its build.
    :param device: ``auto`` (CUDA when torch sees it), ``cpu`` or ``cuda``.
    :param cache_dir: where exported graphs and engines are cached (default ``$IMGX_HOME/engines``).
    """

    model: str
    backends: tuple[str, ...] = ("eager", "compile", "onnxruntime", "tensorrt")
    sizes: tuple[int, ...] = ()
    batches: tuple[int, ...] = (1,)
    precisions: tuple[str, ...] = ("fp32",)
    repeats: int = 5
    warmup: int = 2
    device: str = "auto"
    cache_dir: Path | None = None


@dataclasses.dataclass
class _Config:
    backend: str
    precision: str
    size: int
    batch: int
    status: str = "ok"  # ok | unavailable | failed
    reason: str = ""
    build_seconds: float | None = None
    cached_start_seconds: float | None = None
    peak_memory_mb: float | None = None
    added_memory_mb: float | None = None
    parity: dict[str, Any] | None = None
    runs: list[float] = dataclasses.field(default_factory=list)
    runner: Any = None


# ---------------------------------------------------------------------------------------------------------------------
# Machine


def _sig(seconds: float) -> float:
    """Seconds to 6 significant digits: fixed decimals would cost sub-millisecond timings their precision."""
    return float(f"{seconds:.6g}")


def default_out(model: str, folder: Path = Path("benchmarks/results")) -> Path:
    """``benchmarks/results/bench-<model>-<host>-<YYYYMMDD>.json``."""
    host = socket.gethostname().split(".")[0] or "host"
    return folder / f"bench-{model}-{host}-{dt.date.today():%Y%m%d}.json"


# ---------------------------------------------------------------------------------------------------------------------
# Inputs, memory, timing


#: The value of input channels past RGB in benchmarks: 0.1 is a noise level of about 25/255 for a denoiser.
CONDITION_FILL = 0.1


def bench_input(size: int, batch: int, channels: int = 3) -> torch.Tensor:
    """Real photos resized (Lanczos, short side ``size``) and centre-cropped: ``(batch, channels, size, size)``
    float32 in 0..1, a different photo per batch element. One channel is the photo's grey; channels past RGB (a
    conditioning plane such as a noise level) are filled with :data:`CONDITION_FILL`."""
    import numpy as np
    import torch
    from PIL import Image
    from skimage import data

    arrays = []
    for index in range(batch):
        photo = np.asarray(getattr(data, BENCH_PHOTOS[index % len(BENCH_PHOTOS)])())
        image = Image.fromarray(photo[..., :3] if photo.ndim == 3 else photo).convert("RGB")
        scale = size / min(image.size)
        image = image.resize(
            (max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.Resampling.LANCZOS
        )
        left, top = (image.width - size) // 2, (image.height - size) // 2
        array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
        if channels == 1:
            array = array.mean(axis=2, keepdims=True)
        elif channels > 3:
            array = np.concatenate([array, np.full((size, size, channels - 3), CONDITION_FILL, np.float32)], axis=2)
        arrays.append(array.transpose(2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_memory_mb(run: Callable[[], Any], device: str) -> tuple[float | None, float | None]:
    """``(peak, added)`` MiB of one call of ``run``. On CUDA: the torch allocator's peak, and that peak less what was
    allocated before. On the CPU: the process's resident-set high-water mark during the call (reset through
    ``/proc/self/clear_refs``), and that less the RSS before (0 when the call reused memory already resident)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return round(peak / 1024**2, 1), round((peak - before) / 1024**2, 1)
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")  # resets VmHWM to the current RSS
    except OSError:
        run()
        return None, None
    before = _rss_kib("VmRSS")
    run()
    peak = _rss_kib("VmHWM")
    if before is None or peak is None:
        return None, None
    return round(peak / 1024, 1), round(max(0, peak - before) / 1024, 1)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or repr(exc)
    return text if isinstance(exc, ImgxError) else f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------------------------------------------------------------
# The run


def _cached_start(cls: type, module: torch.nn.Module, options: Any, shape: tuple[int, ...]) -> float | None:
    """Seconds a new backend of ``cls`` takes to load and run its first input of ``shape`` once the build is on disk
    (an ONNX export, a compiled package, an engine): what the next worker or run pays, torch's import aside. ``None``
    when it fails (the configuration's own row already ran)."""
    again = cls(module, options)
    try:
        start = time.perf_counter()
        again.load()
        again.warmup(shape)
        return round(time.perf_counter() - start, 3)
    except Exception:
        return None
    finally:
        again.close()


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BackendError(f"got device {device!r}; expected auto, cpu, cuda or cuda:N")
    return device


def run_bench(options: BenchOptions, registry: Registry, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Measure every configuration and return the report (``machine``, ``parameters``, ``rows``); see the module doc.

    :raises PluginError: an unknown model or backend name (listing the known ones).
    :raises ModelError: the model's weights cannot be had.
    """
    import numpy as np

    from ..models import load_module, weights_key
    from .base import BackendOptions
    from .buckets import round_up
    from .parity import compare

    spec = registry.get_model(options.model)
    backend_classes = {name: registry.get_backend(name) for name in dict.fromkeys(("eager", *options.backends))}
    for precision in options.precisions:
        if precision not in ("fp32", "fp16", "bf16"):
            raise BackendError(f"got precision {precision!r}; expected fp32, fp16 or bf16")
    device = _resolve_device(options.device)
    sizes = tuple(round_up(s, max(1, spec.stride)) for s in (options.sizes or spec.bench_sides))
    batches = tuple(options.batches)
    if min(sizes) < 1 or min(batches) < 1 or options.repeats < 1 or options.warmup < 0:
        raise BackendError(
            f"got sizes {sizes}, batches {batches}, repeats {options.repeats}, warmup {options.warmup}; "
            "expected positive sizes, batches and repeats"
        )
    started = time.time()
    log(f"loading model {spec.name}")
    module = load_module(spec, registry=registry)
    model_key = weights_key(spec)
    inputs = {(s, b): bench_input(s, b, spec.in_channels) for s in sizes for b in batches}
    if device != "cpu":
        inputs = {key: x.to(device) for key, x in inputs.items()}

    pairs = [REFERENCE] + [(b, p) for b in options.backends for p in options.precisions if (b, p) != REFERENCE]
    configs = [_Config(b, p, s, n) for b, p in pairs for s in sizes for n in batches]
    references: dict[tuple[int, int], torch.Tensor] = {}
    for name, precision in pairs:
        backend_options = BackendOptions(
            device=device, precision=precision, cache_dir=options.cache_dir, model_key=model_key, max_batch=max(batches)
        )
        mine = [c for c in configs if (c.backend, c.precision) == (name, precision)]
        problem = backend_classes[name].unavailable(backend_options)
        if problem:
            log(f"{name} {precision}: unavailable: {problem}")
            for config in mine:
                config.status, config.reason = "unavailable", problem
            continue
        log(f"{name} {precision}: building")
        runner = backend_classes[name](module, backend_options)
        try:
            start = time.perf_counter()
            runner.load()
            load_seconds = time.perf_counter() - start
        except Exception as exc:
            for config in mine:
                config.status, config.reason = "failed", f"load: {_describe(exc)}"
            continue
        for config in mine:
            x = inputs[(config.size, config.batch)]
            try:
                config.build_seconds = round(load_seconds + runner.warmup(tuple(x.shape)), 3)
                load_seconds = 0.0
                for _ in range(options.warmup):
                    runner.infer(x)
                _sync(device)
                holder: dict[str, torch.Tensor] = {}

                def once(runner: Any = runner, x: torch.Tensor = x, holder: dict = holder) -> None:
                    holder["out"] = runner.infer(x)

                config.peak_memory_mb, config.added_memory_mb = _peak_memory_mb(once, device)
                out = holder["out"]
            except Exception as exc:
                config.status, config.reason = "failed", _describe(exc)
                log(f"{name} {precision} {config.size}px x{config.batch}: failed: {config.reason}")
                continue
            key = (config.size, config.batch)
            if (name, precision) == REFERENCE:
                references[key] = out.float().cpu()
            config.parity = compare(references[key], out) if key in references else None
            config.runner = runner
            log(f"{name} {precision} {config.size}px x{config.batch}: built in {config.build_seconds:.1f} s")

    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    runnable = [c for c in configs if c.status == "ok"]
    for repeat in range(options.repeats):
        log(f"timed repeat {repeat + 1}/{options.repeats}")
        for config in runnable:
            x = inputs[(config.size, config.batch)]
            _sync(device)
            start = time.perf_counter()
            config.runner.infer(x)
            _sync(device)
            config.runs.append(time.perf_counter() - start)
    for runner in {id(c.runner): c.runner for c in runnable}.values():
        runner.close()
    log("timing each configuration's start from its cached build")
    for config in runnable:
        if not config.runner.builds_on_disk():
            continue  # eager, or torch.compile on CUDA: nothing on disk, a second start would build again
        shape = tuple(inputs[(config.size, config.batch)].shape)
        config.cached_start_seconds = _cached_start(type(config.runner), module, config.runner.options, shape)

    medians = {(c.size, c.batch): statistics.median(c.runs) for c in runnable if (c.backend, c.precision) == REFERENCE}
    rows = []
    for c in configs:
        row: dict[str, Any] = {
            "backend": c.backend,
            "precision": c.precision,
            "size": c.size,
            "batch": c.batch,
            "status": c.status,
            "reference": (c.backend, c.precision) == REFERENCE,
        }
        if c.status != "ok":
            row["reason"] = c.reason
            rows.append(row)
            continue
        median = statistics.median(c.runs)
        reference = medians.get((c.size, c.batch))
        row.update(
            median_seconds=_sig(median),
            p90_seconds=_sig(float(np.percentile(c.runs, 90))),
            min_seconds=_sig(min(c.runs)),
            images_per_second=round(c.batch / median, 4),
            megapixels_per_second=round(c.batch * c.size * c.size / 1e6 / median, 4),
            speedup_vs_eager_fp32=round(reference / median, 3) if reference else None,
            build_seconds=c.build_seconds,
            cached_start_seconds=c.cached_start_seconds,
            peak_memory_mb=c.peak_memory_mb,
            added_memory_mb=c.added_memory_mb,
            parity=c.parity,
            runs_seconds=[_sig(t) for t in c.runs],
        )
        rows.append(row)
    return {
        "schema": SCHEMA,
        "kind": "imgx-bench",
        "model": {"name": spec.name, "weights_key": model_key, "licence": spec.licence, "summary": spec.summary},
        "parameters": {
            "backends": list(options.backends),
            "precisions": list(options.precisions),
            "sizes": list(sizes),
            "batches": list(batches),
            "repeats": options.repeats,
            "warmup": options.warmup,
            "device": device,
            "inputs": f"real photos (scikit-image {', '.join(BENCH_PHOTOS[: max(batches)])}) resized and "
            "centre-cropped to size x size, float32 0..1",
            "memory": "peak_memory_mb: during one inference, the torch CUDA allocator's peak on GPU, the process's RSS "
            "high-water mark on CPU (every backend of the run is loaded); added_memory_mb: that peak less the memory "
            "in use just before",
            "parity": "against eager fp32 on the same input: max/mean absolute difference (0..1), non-finite count",
        },
        "machine": {**machine_info(device), "load_average_before_timing": load_before},
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Chart


def write_chart(report: dict[str, Any], path: Path) -> str | None:
    """A PNG bar chart of images/s per configuration, one panel per (size, batch); returns ``None`` when written,
    else one line saying why not (matplotlib absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; pip install 'imgx[demo]' for the chart"
    rows = report["rows"]
    panels = sorted({(r["size"], r["batch"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (size, batch) in zip(axes[0], panels, strict=True):
        mine = [r for r in rows if (r["size"], r["batch"]) == (size, batch)]
        labels = [f"{r['backend']}\n{r['precision']}" for r in mine]
        values = [r.get("images_per_second") or 0.0 for r in mine]
        colors = ["#888888" if r["reference"] else "#3b7dd8" for r in mine]
        bars = ax.bar(range(len(mine)), values, color=colors)
        for bar, row in zip(bars, mine, strict=True):
            text = f"{row['speedup_vs_eager_fp32']:.2f}x" if row["status"] == "ok" else row["status"]
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90 if row["status"] != "ok" else 0,
            )
        ax.set_xticks(range(len(mine)), labels, fontsize=7, rotation=35, ha="right")
        ax.set_title(f"{size} x {size}, batch {batch}", fontsize=9)
        ax.set_ylabel("images/s")
    machine = report["machine"]
    where = machine["gpu"]["name"] if machine.get("gpu") else f"{machine['cpu_model']}, {machine['cpus_usable']} cores"
    fig.suptitle(f"imgx bench {report['model']['name']} on {where} (speed-up vs eager fp32)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


TABLE_COLUMNS = (
    "backend",
    "precision",
    "size",
    "batch",
    "images/s",
    "median/p90 ms",
    "vs eager fp32",
    "build s",
    "cached s",
    "peak MB",
    "max/mean abs diff",
    "NaN",
)


def table_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """The report's rows as the printed table's cells (:data:`TABLE_COLUMNS`); a row that did not run says
    ``unavailable`` or ``failed`` (its reason is in :func:`reasons`)."""
    out = []
    for r in report["rows"]:
        head = (r["backend"], r["precision"], str(r["size"]), str(r["batch"]))
        if r["status"] != "ok":
            out.append((*head, r["status"], "-", "-", "-", "-", "-", "-", "-"))
            continue
        parity = r["parity"] or {}
        out.append(
            (
                *head,
                f"{r['images_per_second']:.2f}",
                f"{r['median_seconds'] * 1000:.0f}/{r['p90_seconds'] * 1000:.0f}",
                f"{r['speedup_vs_eager_fp32']:.2f}x" if r["speedup_vs_eager_fp32"] else "",
                f"{r['build_seconds']:.1f}",
                "" if r.get("cached_start_seconds") is None else f"{r['cached_start_seconds']:.2f}",
                "" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}",
                f"{parity.get('max_abs', float('nan')):.1e}/{parity.get('mean_abs', float('nan')):.1e}",
                str(parity.get("nonfinite", "")),
            )
        )
    return out


def reasons(report: dict[str, Any]) -> list[str]:
    """One line per backend and precision that did not run: ``tensorrt fp16: unavailable: <why>``."""
    lines = {f"{r['backend']} {r['precision']}: {r['status']}: {r['reason']}" for r in report["rows"] if "reason" in r}
    return sorted(lines)
