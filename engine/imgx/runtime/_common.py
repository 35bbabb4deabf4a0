"""Helpers the backends share: precisions as torch dtypes, device checks, the ONNX export cache."""

from __future__ import annotations

import copy
import functools
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendError
from ..io.atomic import atomic_path
from .keys import engines_dir

if TYPE_CHECKING:
    import torch

__all__ = [
    "PRECISIONS",
    "ExportCounter",
    "cache_dir_of",
    "cpu_threads",
    "cuda_problem",
    "export_onnx",
    "module_copy",
    "module_key",
    "onnx_path",
    "torch_dtype",
]

PRECISIONS = ("fp32", "fp16", "bf16")
ONNX_OPSET = 17
_export_lock = threading.Lock()


def torch_dtype(precision: str) -> torch.dtype:
    """``"fp32"`` / ``"fp16"`` / ``"bf16"`` as a torch dtype."""
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    try:
        return table[precision]
    except KeyError:
        raise BackendError(f"got precision {precision!r}; expected one of {', '.join(PRECISIONS)}") from None


def cuda_problem(device: str) -> str | None:
    """``None`` when ``device`` can be used, else one line saying why not (a CUDA device without a CUDA torch)."""
    if not device.startswith("cuda"):
        return None if device == "cpu" else f"got device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'"
    import torch

    if not torch.cuda.is_available():
        return "needs a CUDA GPU; torch.cuda.is_available() is False on this machine"
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"got device {device!r}; this machine has {torch.cuda.device_count()} CUDA device(s)"
    return None


def module_copy(module: torch.nn.Module, device: str, precision: str) -> torch.nn.Module:
    """A copy of the reference module in eval mode on ``device`` at ``precision`` (the reference stays as it is)."""
    return copy.deepcopy(module).eval().to(device=device, dtype=torch_dtype(precision))


def cache_dir_of(cache_dir: Path | None) -> Path:
    """The backend's cache folder (``BackendOptions.cache_dir`` or ``$IMGX_HOME/engines``), created."""
    folder = Path(cache_dir) if cache_dir is not None else engines_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ExportCounter:
    """How many ONNX exports this process did (tests prove an unchanged key loads from disk)."""

    count = 0


def export_onnx(module: torch.nn.Module, path: Path, channels: int, *, sample_side: int = 64) -> Path:
    """Export ``module`` (float32, CPU) to ONNX at ``path`` unless that file exists; returns ``path``.

    The graph takes ``x``, a ``(B, C, H, W)`` float32 tensor with dynamic batch, height and width, and returns ``y``.
    It is written to a temporary file in the same folder and renamed, so a reader never sees half a graph and two
    workers exporting at once both end with a whole file.

    Exporter: the TorchScript-based one (``dynamo=False``). The torch.export-based exporter that torch 2.9+ uses by
    default needs ``onnxscript``, which imgx does not depend on; the TorchScript one exports reflection padding,
    instance norm and nearest upsampling with dynamic height and width as standard ONNX ops (opset 17).
    """
    import torch

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _export_lock:
        if path.is_file():
            return path
        sample = torch.rand(1, channels, sample_side, sample_side, generator=torch.Generator().manual_seed(0))
        try:
            with atomic_path(path) as tmp, warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    (sample,),
                    str(tmp),
                    dynamo=False,
                    input_names=["x"],
                    output_names=["y"],
                    dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}, "y": {0: "batch", 2: "oh", 3: "ow"}},
                    opset_version=ONNX_OPSET,
                    do_constant_folding=True,
                )
        except Exception as exc:
            raise BackendError(
                f"got an export failure for {type(module).__name__} -> {path.name}: {type(exc).__name__}: {exc}; "
                "expected a module that torch.onnx.export can trace (use backend 'eager' or 'compile' instead)"
            ) from exc
        ExportCounter.count += 1
    return path


def module_key(module: torch.nn.Module) -> str:
    """sha256 hex of a module's class, parameter and buffer names, shapes, dtypes and bytes: the model key used when
    :class:`BackendOptions` gives none, so two different modules never share a cached graph."""
    import hashlib

    import torch

    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(flat.shape)}:{flat.dtype}".encode())
        digest.update(flat.view(-1).view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def onnx_path(module: torch.nn.Module | None, options_model_key: str, cache_dir: Path | None, channels: int) -> Path:
    """Where the FP32 ONNX export of ``module`` with dynamic ``(B, C, H, W)`` input is cached:
    ``<cache_dir>/onnx/<cache key>.onnx``, the key covering the weights, ``C`` and the torch/onnx versions. ``module``
    is read only without ``options_model_key`` (its :func:`module_key` is then the model key)."""
    from .keys import cache_key

    if not options_model_key and module is None:
        raise BackendError("got neither a model key nor a module; expected one to key the ONNX export by")
    model = options_model_key or module_key(module)  # type: ignore[arg-type]
    key = cache_key("onnx-export", model, f"dynamic(B,{channels},H,W)", "fp32", "cpu")
    return cache_dir_of(cache_dir) / "onnx" / f"{key}.onnx"


def cpu_threads() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@functools.cache
def onnx_run_options() -> Any:
    """``onnxruntime.RunOptions`` for a CPU session that gives its arena back after each run (one object, read-only,
    shared by every session of the process).

    The CPU arena otherwise keeps its high-water mark for the session's life, grown in powers of two: Real-ESRGAN on
    a 256 px tile held 1.9 GB resident, 1.2 GB with the arena shrunk after each run; a 3 MB network at 1024 px 542 ->
    321 MiB, U2-Netp at 320 px 418 -> 318 MiB, at the same speed within noise (2-vCPU AMD EPYC, 2 threads).
    """
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options
