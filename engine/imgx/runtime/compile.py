"""``compile``: the module through TorchInductor, one static graph per input shape.

Shapes are bucketed upstream, so each backend builds a handful of specialised graphs. Mode ``default``:
``max-autotune`` spends minutes per shape tuning kernels.

On the CPU each shape is compiled ahead of time (AOTInductor: ``torch.export`` then ``aoti_compile_and_package``, with
Inductor's ``freezing``, which folds the weights into the graph and prepacks them for oneDNN) into a package kept in
the engine cache (``<cache_dir>/inductor/<key>.pt2``, the key covering the weights, shape, precision, CPU flags and
library versions). A worker that finds the package loads it in a fraction of a second, where ``torch.compile`` in each
worker paid ~5 s even with Inductor's own caches warm (the compiler's import, Dynamo's trace, the first call's
compilation); freezing also runs the style network faster (1024 x 768 at BF16, one thread, 2-core AMX Xeon: 317 ms
per image against ``torch.compile``'s 342 ms, eager 872 ms). A module ``torch.export`` cannot trace falls back to
``torch.compile`` in the process, saying so once. On CUDA the module runs through ``torch.compile`` as before.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import BackendOptions
from .eager import EagerBackend

if TYPE_CHECKING:
    import torch

__all__ = ["CompileBackend", "PackageCounter"]

RECOMPILE_LIMIT = 64  # shape buckets x batch sizes a stage may meet
# the CPU features that decide which instructions Inductor's kernels may use: part of a package's cache key, since
# VMs that report the same CPU model name differ in them (one listed AMX on one day and only AVX-512 BF16 the next)
ISA_FLAGS = (
    "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "asimd", "sve",
)  # fmt: skip


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


class PackageCounter:
    """How many AOTInductor packages this process built (tests prove that a second backend loads from disk)."""

    count = 0


def _cast_module(module: torch.nn.Module, precision: str) -> torch.nn.Module:
    """``module`` taking a float32 input and returning float32, running at ``precision`` inside (the casts are part
    of the compiled graph, fused into its first and last kernels)."""
    import torch

    from ._common import torch_dtype

    class Cast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.to(torch_dtype(precision))).float()

    return Cast().eval()


class _Package:
    """A loaded AOTInductor package: one compiled graph for one input shape."""

    def __init__(self, path: Path) -> None:
        import torch

        # the loader itself, not torch._inductor.aoti_load_package: that one first probes which vector instructions
        # this CPU runs by compiling and running ten test programs (~3 s per process) only to warn when they differ
        # from the build's, which the cache key (ISA_FLAGS) already rules out
        self.loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.loader.boxed_run([x])[0]


class CompileBackend(EagerBackend):
    """TorchInductor under ``torch.inference_mode``: the eager backend's module, compiled per input shape (ahead of
    time into cached packages on the CPU, ``torch.compile`` on CUDA)."""

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

    def __init__(self, module: torch.nn.Module, options: BackendOptions) -> None:
        super().__init__(module, options)
        self._packages: dict[tuple[int, ...], Any] = {}
        self._jitted = False  # the runner is torch.compile's: CUDA, or a module torch.export cannot trace

    @property
    def channels_last(self) -> bool:
        return False  # Inductor picks its own layouts

    @property
    def ahead_of_time(self) -> bool:
        """Whether shapes are compiled into cached packages (the CPU) rather than by ``torch.compile``."""
        return not self.options.device.startswith("cuda")

    def builds_on_disk(self) -> bool:
        return self.ahead_of_time

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
        super().load()
        if not self.ahead_of_time:
            self._use_jit()

    def _use_jit(self) -> None:
        import torch

        if not self.options.device.startswith("cuda"):
            _import_cpp_extension()
        dynamo = torch._dynamo.config
        for knob in ("recompile_limit", "cache_size_limit"):
            if hasattr(dynamo, knob):
                setattr(dynamo, knob, max(getattr(dynamo, knob), RECOMPILE_LIMIT))
        self._runner = torch.compile(self._runner, mode=self.mode, dynamic=False)
        self._jitted = True

    def package_path(self, shape: tuple[int, ...]) -> Path:
        """Where the package for a ``(B, C, H, W)`` input of ``shape`` is cached."""
        from ..machine import cpu_flags
        from ._common import cache_dir_of, module_key
        from .keys import cache_key

        flags = ",".join(flag for flag in ISA_FLAGS if flag in cpu_flags())
        key = cache_key(
            "inductor-aot",
            self.options.model_key or module_key(self.module),
            "x".join(map(str, shape)),
            self.options.precision,
            self.options.device,
            f"isa={flags}",
            "freezing",
        )
        return cache_dir_of(self.options.cache_dir) / "inductor" / f"{key}.pt2"

    def _package(self, shape: tuple[int, ...]) -> Any:
        """The loaded package for ``shape``: from the cache, else built now and cached (``None`` when the module
        cannot be exported; the backend then runs it through ``torch.compile``)."""
        path = self.package_path(shape)
        if path.is_file():
            try:
                return _Package(path)
            except Exception as exc:  # a package this torch cannot load: built again below, over it
                warnings.warn(
                    f"compile: rebuilding {path.name}: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3
                )
        try:
            self._build(path, shape)
        except Exception as exc:
            warnings.warn(
                f"compile: {type(self.module).__name__} could not be compiled ahead of time "
                f"({type(exc).__name__}: {_first_line(exc)}); running it through torch.compile in this process",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        return _Package(path)

    def _build(self, path: Path, shape: tuple[int, ...]) -> None:
        """Export the module at ``shape``, compile it with AOTInductor (freezing on) and publish the package at
        ``path`` by a rename, so a reader never sees half a package and two workers building it at once both end with
        a whole one."""
        import torch

        from ..io.atomic import publish

        _import_cpp_extension()
        path.parent.mkdir(parents=True, exist_ok=True)
        wrapped = _cast_module(self._runner, self.options.precision)
        sample = torch.zeros(shape, dtype=torch.float32)
        folder = tempfile.mkdtemp(prefix=f".{path.stem[:16]}.", dir=path.parent)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with torch.no_grad():
                    program = torch.export.export(wrapped, (sample,))
                # with gradients off, AOTInductor's freezing miscompiled Real-ESRGAN (torch 2.13: max error 4.7 on
                # 0..1 outputs, tested by test_models_smoke.py); with them on, the same program compiled right
                with torch.inference_mode(False), torch.enable_grad(), torch._inductor.config.patch(freezing=True):
                    built = torch._inductor.aoti_compile_and_package(
                        program, package_path=os.path.join(folder, "model.pt2")
                    )
            publish(built, path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        PackageCounter.count += 1

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """On the CPU, the shape's package; else (CUDA, or a module that could not be exported) the eager backend's
        run of the module through ``torch.compile``."""
        import torch

        if self._runner is None:
            self.load()
        if not self._jitted:
            shape = tuple(x.shape)
            if shape not in self._packages:
                self._packages[shape] = self._package(shape)
            package = self._packages[shape]
            if package is not None:
                with torch.inference_mode():
                    return package(x.to(device="cpu", dtype=torch.float32).contiguous()).to(x.device).contiguous()
            self._use_jit()
        return super().infer(x)

    def close(self) -> None:
        self._packages.clear()
        self._jitted = False
        super().close()


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters (torch.export's run to dozens of lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""
