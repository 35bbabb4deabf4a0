"""The built-in backends, registered through the ``imgx_backends`` hook like a third-party plugin's would be."""

from __future__ import annotations

from collections.abc import Sequence

from ..hookspecs import hookimpl
from .base import Backend
from .compile import CompileBackend
from .eager import EagerBackend
from .onnxruntime import OnnxRuntimeBackend
from .tensorrt import TensorRTBackend

__all__ = ["BUILTIN_BACKENDS", "imgx_backends"]

BUILTIN_BACKENDS: tuple[type[Backend], ...] = (EagerBackend, CompileBackend, OnnxRuntimeBackend, TensorRTBackend)


@hookimpl
def imgx_backends() -> Sequence[type[Backend]]:
    """``eager`` (the reference), ``compile``, ``onnxruntime`` and ``tensorrt``."""
    return list(BUILTIN_BACKENDS)
