"""``compile``: the module through ``torch.compile`` (TorchInductor), one static graph per input shape.

Shapes are bucketed upstream, so ``dynamic=False`` compiles a handful of specialised graphs; the recompile limit is
raised to cover them. Mode ``default``: ``max-autotune`` spends minutes per shape tuning kernels. Inductor keeps its
own on-disk caches (FX graphs and kernels, ``TORCHINDUCTOR_CACHE_DIR``, default ``/tmp/torchinductor_$USER``), so a
second process with the same shapes compiles faster; the compile time is what :meth:`warmup` returns.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import ClassVar

from .base import BackendOptions
from .eager import EagerBackend

__all__ = ["CompileBackend"]

RECOMPILE_LIMIT = 64  # shape buckets x batch sizes a stage may meet


def _import_cpp_extension() -> None:
    """Import ``torch.utils.cpp_extension`` (Inductor's C++ builder needs it, and it imports setuptools).

    On Python < 3.12, once anything in the process has called ``importlib.util.find_spec("pip")`` (the registry's
    ``pip:`` source checks for pip that way), setuptools' distutils shim is switched off and importing setuptools then
    fails with an ``AssertionError`` about ``distutils/core.py``. setuptools is then imported on the standard
    library's distutils (``SETUPTOOLS_USE_DISTUTILS=stdlib`` for that one import), which is all Inductor needs.
    """
    try:
        import torch.utils.cpp_extension
    except AssertionError:
        previous = os.environ.get("SETUPTOOLS_USE_DISTUTILS")
        os.environ["SETUPTOOLS_USE_DISTUTILS"] = "stdlib"
        try:
            import torch.utils.cpp_extension  # noqa: F401
        finally:
            if previous is None:
                os.environ.pop("SETUPTOOLS_USE_DISTUTILS", None)
            else:
                os.environ["SETUPTOOLS_USE_DISTUTILS"] = previous


class CompileBackend(EagerBackend):
    """``torch.compile(module, mode="default", dynamic=False)`` under ``torch.inference_mode``: the eager backend's
    module, compiled."""

    name: ClassVar[str] = "compile"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    dynamic_shapes: ClassVar[bool] = False
    mode: ClassVar[str] = "default"
    # builds per shape bucket: behind ONNX Runtime and eager on the CPU (see runtime/factory.py), second on CUDA
    auto_ranks: ClassVar[dict[tuple[str, str], int]] = {
        ("cuda", "fp32"): 20,
        ("cuda", "fp16"): 20,
        ("cuda", "bf16"): 20,
        ("cpu", "fp32"): 30,
        ("cpu", "fp16"): 20,
        ("cpu", "bf16"): 20,
    }

    @property
    def channels_last(self) -> bool:
        return False  # Inductor picks its own layouts

    @classmethod
    def unavailable(cls, options: BackendOptions) -> str | None:
        problem = super().unavailable(options)
        if problem:
            return problem
        if options.device.startswith("cuda"):
            if importlib.util.find_spec("triton") is None:
                return "torch.compile on CUDA needs triton; pip install triton (it ships with CUDA builds of torch)"
        elif not (os.environ.get("CXX") or any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))):
            return "torch.compile on the CPU needs a C++ compiler; install g++ (apt-get install g++) or set CXX"
        return None

    def load(self) -> None:
        import torch

        if not self.options.device.startswith("cuda"):
            _import_cpp_extension()
        dynamo = torch._dynamo.config
        for knob in ("recompile_limit", "cache_size_limit"):
            if hasattr(dynamo, knob):
                setattr(dynamo, knob, max(getattr(dynamo, knob), RECOMPILE_LIMIT))
        super().load()
        self._runner = torch.compile(self._runner, mode=self.mode, dynamic=False)
