"""Cache keys and cache folders of exported graphs and engines.

A key is the sha256 of everything that changes what a backend builds: the backend, the model's weights (and bound
conditioning), the input shape profile, the precision, the device and the versions of the libraries that build it.
An unchanged key loads from disk; a changed one rebuilds.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

from ..machine import cpu_model
from ..models import imgx_home

__all__ = ["cache_key", "device_name", "engines_dir", "library_versions"]

LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt")


def engines_dir() -> Path:
    """``$IMGX_HOME/engines`` (``IMGX_HOME`` defaults to ``~/.cache/imgx``): exported graphs, engines, timing caches."""
    return imgx_home() / "engines"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that export, compile or build (``"absent"`` when not installed)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@functools.lru_cache(maxsize=1)
def device_name(device: str) -> str:
    """What the device is, for cache keys and reports: the CPU model, or the CUDA GPU's name and capability."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        return f"{torch.cuda.get_device_name(index)} sm_{major}{minor}"
    return f"{cpu_model()} ({platform.machine()})"


def cache_key(backend: str, model_key: str, profile: str, precision: str, device: str, *extra: str) -> str:
    """sha256 hex of (backend, model key, input shape profile, precision, device name, library versions, extra).

    :param profile: the input shapes the artefact serves, e.g. ``"dynamic(B,3,H,W)"`` or ``"1-4x3x512x768"``.
    """
    payload = {
        "backend": backend,
        "model": model_key,
        "profile": profile,
        "precision": precision,
        "device": device_name(device),
        "libraries": library_versions(),
        "python": platform.python_version(),
        "extra": list(extra),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
