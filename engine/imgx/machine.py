"""What machine a measurement ran on: CPU, cores, memory, GPU, library versions and the imgx commit.

``imgx bench`` and the scripts in ``benchmarks/`` store this block beside every result, so a number always names its
machine.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

__all__ = [
    "NATIVE_BF16_FLAGS",
    "NVIDIA_MARKERS",
    "TORCH_PACKAGES",
    "cpu_flags",
    "cpu_model",
    "cuda_possible",
    "git_output",
    "machine_info",
    "memory_gib",
    "native_bf16",
    "package_version",
]

# CPU flags (as /proc/cpuinfo names them) of instructions that make BF16 inference faster than FP32: AMX BF16 tiles
# (Sapphire Rapids on). AVX-512 BF16 alone (dot products of BF16 pairs, Cooper Lake, Zen 4) is not enough: on the
# 2-core VM with avx512_bf16 and no AMX (2026-12-05) the style stage at BF16 took 3.5 CPU s per 1024 px image against
# 2.0 at FP32 through ONNX Runtime, and Real-ESRGAN's eager BF16 ran 0.90x eager FP32
# (benchmarks/results/precision-vm-20261205.json); with AMX listed (2026-11-22) eager BF16 was 1.86x eager FP32.
NATIVE_BF16_FLAGS = ("amx_bf16",)


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel reports them (``/proc/cpuinfo``'s ``flags`` line), lower case; empty
    where that cannot be read (not Linux): nothing is then assumed about the CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("flags"):
                return frozenset(line.split(":", 1)[1].lower().split())
    except OSError:
        pass
    return frozenset()


def native_bf16(flags: frozenset[str] | set[str]) -> str | None:
    """The flag among ``flags`` that says BF16 inference runs faster than FP32 on this CPU (:data:`NATIVE_BF16_FLAGS`),
    or ``None``. A pure function of the flag set, so a decision made on it can be checked for any CPU."""
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


#: What a Linux machine that can run CUDA has: the NVIDIA driver's folder, a GPU's device node, or WSL's GPU node.
NVIDIA_MARKERS = ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/dxg")


def cuda_possible(markers: tuple[str, ...] = NVIDIA_MARKERS) -> bool:
    """Whether ``torch.cuda.is_available()`` could be true here, answered without importing torch (~1.2 s and 270 MiB
    in the process that asks): on Linux, only where the NVIDIA driver or a GPU device node is present (``markers``);
    elsewhere ``True``, so the caller asks torch."""
    if platform.system() != "Linux":
        return True
    return any(os.path.exists(marker) for marker in markers)


def memory_gib() -> float | None:
    """This machine's memory in GiB (``/proc/meminfo``), or ``None`` where that cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except OSError:
        pass
    return None


def package_version(dist: str) -> str | None:
    """The installed version of a distribution, or ``None``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_output(*args: str) -> str | None:
    """``git ARGS`` in imgx's checkout (stdout stripped), or ``None`` outside one."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read-only: never refresh the index
    try:
        result = subprocess.run(
            ["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


TORCH_PACKAGES = ("imgx", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy")


def machine_info(device: str | None = None, *, packages: tuple[str, ...] = TORCH_PACKAGES) -> dict[str, Any]:
    """The machine a measurement ran on: CPU model and cores, memory, load, Python, the versions of ``packages``
    (distribution names), the imgx commit; with a ``device`` (``"cpu"``, ``"cuda"``...) also torch's threads and the
    GPU (or ``None``). Without one, torch is not imported (engine benchmarks stay light)."""
    status = git_output("status", "--porcelain", "--untracked-files=no")
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16_flags": sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx")),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": memory_gib(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "versions": {name: package_version(name) for name in packages},
        "imgx_commit": git_output("rev-parse", "HEAD"),
        "imgx_tree_dirty": None if status is None else bool(status),
    }
    if device is not None:
        import torch

        gpu = None
        if device.startswith("cuda") and torch.cuda.is_available():
            index = torch.device(device).index or 0
            props = torch.cuda.get_device_properties(index)
            gpu = {
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 1024**3, 1),
                "cuda": torch.version.cuda,
            }
        info.update(torch_threads=torch.get_num_threads(), gpu=gpu)
    return info
