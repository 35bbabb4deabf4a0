"""``compile``: the module through TorchInductor.

On the CPU every input runs at its own size (padded to the network's stride only, as on eager and ONNX Runtime), from
packages compiled ahead of time (AOTInductor: ``torch.export`` then ``aoti_compile_and_package``, with Inductor's
``freezing``, which folds the weights into the graph and prepacks them for oneDNN) and kept in the engine cache
(``<cache_dir>/inductor/<key>.pt2``, the key covering the weights, shape, precision, CPU flags and library versions):

- the first shape a backend meets gets a package of its own, exact for that shape and the fastest (the style network
  at 1024 x 768, BF16, one thread, 2-core AMX Xeon: 317 ms per image, against ``torch.compile``'s 342 ms and eager's
  872 ms);
- any later shape runs one package exported with dynamic batch, height and width (407 ms at that size), built once
  and checked against eager at two sizes before it is published: a network whose dynamic graph compiles wrong (U2-Netp
  returned NaN) is marked unusable in the cache and gets a package per shape instead, with a warning.

So a catalog of mixed sizes builds two packages per model and precision, not one per shape, and no image is padded to
a shape bucket: for a network with instance norm (the style network) that padding changed the output (mean absolute
difference 0.03-0.06 for photos 25-45 % smaller than their bucket). A worker that finds a package loads it in a
fraction of a second, where ``torch.compile`` in each worker paid ~5 s even with Inductor's own caches warm. Of
several workers that need the same package, one builds it (a file lock) and the others load it. ``imgx build``
makes both packages before a run; once the dynamic-shape one is cached, ``auto`` picks this backend at BF16/FP16 on the
CPU (:meth:`CompileBackend.ready`). A module
``torch.export`` cannot trace falls back to ``torch.compile`` in the process, saying so once. On CUDA the module runs
through ``torch.compile`` (``max-autotune`` would spend minutes per shape tuning kernels), one static graph per
shape bucket.
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
    from collections.abc import Callable

    import torch

__all__ = ["CompileBackend", "PackageCounter"]

RECOMPILE_LIMIT = 64  # shape buckets x batch sizes a stage may meet
#: the check of a dynamic-shape package against eager: every value finite and the mean absolute difference at most
#: this share of the reference's mean magnitude (BF16 against eager BF16 differs by ~1e-3 of it on the style network;
#: the miscompiled U2-Netp was off by the whole range)
DYNAMIC_TOLERANCE = 0.02
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
    """A loaded AOTInductor package: one compiled graph, for one input shape or any."""

    def __init__(self, path: Path) -> None:
        import torch

        # the loader itself, not torch._inductor.aoti_load_package: that one first probes which vector instructions
        # this CPU runs by compiling and running ten test programs (~3 s per process) only to warn when they differ
        # from the build's, which the cache key (ISA_FLAGS) already rules out
        self.loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.loader.boxed_run([x])[0]


class CompileBackend(EagerBackend):
    """TorchInductor under ``torch.inference_mode``: the eager backend's module, compiled ahead of time into cached
    packages on the CPU (each input at its own size), by ``torch.compile`` per shape bucket on CUDA."""

    name: ClassVar[str] = "compile"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    dynamic_shapes: ClassVar[bool] = False  # a new shape may cost a build (see any_shape)
    mode: ClassVar[str] = "default"
    # a build per model and precision: behind ONNX Runtime and eager on the CPU (see runtime/factory.py), second on
    # CUDA
    auto_ranks: ClassVar[dict[tuple[str, str], int]] = {
        ("cuda", "fp32"): 20,
        ("cuda", "fp16"): 20,
        ("cuda", "bf16"): 20,
        ("cpu", "fp32"): 30,
        ("cpu", "fp16"): 20,
        ("cpu", "bf16"): 20,
    }
    # with its dynamic-shape package cached (nothing to build for any size), first at reduced precision on the CPU:
    # the style network at BF16, one thread, AMX Xeon: 320 ms per 1024 x 1024 image against eager's 785 ms; at FP32
    # it ran on par with ONNX Runtime (796 vs 920 ms at 1024 x 1024, 682 vs 612 at 768 x 1024), which stays first
    ready_ranks: ClassVar[dict[tuple[str, str], int]] = {("cpu", "fp16"): 5, ("cpu", "bf16"): 5}

    def __init__(self, module: torch.nn.Module, options: BackendOptions) -> None:
        super().__init__(module, options)
        self._packages: dict[tuple[int, ...], Any] = {}  # shape -> its package (None: run through torch.compile)
        self._dynamic: Any = None  # the loaded dynamic-shape package, once a shape needed it
        self._jitted = False  # the runner is torch.compile's: CUDA, or a module torch.export cannot trace

    @classmethod
    def any_shape(cls, options: BackendOptions) -> bool:
        return not options.device.startswith("cuda")  # the CPU's packages: see the module doc

    @classmethod
    def ready(cls, options: BackendOptions, channels: int) -> bool:
        """On the CPU, whether the module's dynamic-shape package (any size, no build) is in the engine cache."""
        if options.device.startswith("cuda") or not options.model_key:
            return False
        return _package_file(options, options.model_key, None, channels).is_file()

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

    def package_path(self, shape: tuple[int, ...] | None, channels: int = 0) -> Path:
        """Where the package for a ``(B, C, H, W)`` input of ``shape`` is cached; ``shape=None``: the dynamic-shape
        package for inputs of ``channels`` channels."""
        from ._common import module_key

        return _package_file(self.options, self.options.model_key or module_key(self.module), shape, channels)

    def _package(self, shape: tuple[int, ...]) -> Any:
        """The package that runs ``shape``: its own from the cache; else the dynamic-shape package from the cache;
        else, for the first shape this backend meets, its own built now; else the dynamic-shape package built now
        (or, where that one is unusable, the shape's own). ``None`` when the module cannot be exported: the backend
        then runs it through ``torch.compile``."""
        exact = self.package_path(shape)
        found = _load(exact)
        if found is not None:
            return found
        first = not self._packages
        dynamic = self._dynamic_package(shape, build=not first)
        if dynamic is not None:
            return dynamic
        return self._built(exact, lambda folder: self._build(folder, shape))

    def _dynamic_package(self, shape: tuple[int, ...], *, build: bool) -> Any:
        """The dynamic-shape package: loaded, or from the cache, or (``build``) built, checked and cached now;
        ``None`` when there is none (not built yet and ``build`` false, or unusable for this module)."""
        if self._dynamic is not None:
            return self._dynamic
        path = self.package_path(None, shape[1])
        unusable = path.with_suffix(".unusable")
        self._dynamic = _load(path)
        if self._dynamic is None and build:
            # the mark is read under the build's lock: a worker that waited for another's build then sees its verdict
            self._dynamic = self._built(
                path, lambda folder: None if unusable.is_file() else self._build_dynamic(folder, shape, unusable)
            )
        return self._dynamic

    def _built(self, path: Path, build: Callable[[str], str | None]) -> Any:
        """``build(folder)`` (a temporary folder beside ``path``; it returns the package file it wrote, or ``None``
        when it wrote none) published at ``path`` by a rename and loaded, under a lock so that of several workers
        one builds and the others load its package. ``None`` when nothing could be built (see :meth:`_package`)."""
        from ..io.atomic import file_lock, publish

        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path):
            found = _load(path)  # another worker built it while this one waited
            if found is not None:
                return found
            folder = tempfile.mkdtemp(prefix=f".{path.stem[:16]}.", dir=path.parent)
            try:
                built = build(folder)
                if built is None:
                    return None
                publish(built, path)
            except Exception as exc:
                warnings.warn(
                    f"compile: {type(self.module).__name__} could not be compiled ahead of time "
                    f"({type(exc).__name__}: {_first_line(exc)}); running it through torch.compile in this process",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return None
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        PackageCounter.count += 1
        return _Package(path)

    def _compile(self, folder: str, sample: torch.Tensor, dynamic: bool) -> str:
        """Export the module on ``sample`` (batch, height and width dynamic if ``dynamic``), compile it with
        AOTInductor (freezing on) into ``folder``; return the package's path."""
        import torch
        from torch.export import Dim

        _import_cpp_extension()
        wrapped = _cast_module(self._runner, self.options.precision)
        shapes = {"x": {0: Dim("batch", min=1, max=4096), 2: Dim.AUTO, 3: Dim.AUTO}} if dynamic else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                program = torch.export.export(wrapped, (sample,), dynamic_shapes=shapes)
            # with gradients off, AOTInductor's freezing miscompiled Real-ESRGAN (torch 2.13: max error 4.7 on
            # 0..1 outputs, tested by test_models_smoke.py); with them on, the same program compiled right
            with torch.inference_mode(False), torch.enable_grad(), torch._inductor.config.patch(freezing=True):
                return torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(folder, "model.pt2"))

    def _build(self, folder: str, shape: tuple[int, ...]) -> str:
        import torch

        return self._compile(folder, torch.zeros(shape, dtype=torch.float32), dynamic=False)

    def _build_dynamic(self, folder: str, shape: tuple[int, ...], unusable: Path) -> str | None:
        """The dynamic-shape package, exported on a batch of two inputs of ``shape``'s size (a batch of one would
        fix the batch at one) and checked against eager at ``shape``'s size and at the first shape's; where it cannot
        be exported or fails the check, no package is kept, ``unusable`` says why and ``None`` is returned."""
        import torch

        from ..io.atomic import atomic_write
        from ._common import torch_dtype
        from .parity import compare

        _, channels, height, width = shape
        first = next(iter(self._packages))
        problems: list[str] = []
        built = None
        try:
            built = self._compile(folder, torch.zeros((2, channels, height, width)), dynamic=True)
            package = _Package(Path(built))
        except Exception as exc:  # a graph torch.export cannot make dynamic: each shape is exported on its own
            problems.append(f"{type(exc).__name__}: {_first_line(exc)}")
        generator = torch.Generator().manual_seed(0)
        for h, w in {(height, width), (first[2], first[3])} if not problems else ():
            x = torch.rand((1, channels, h, w), generator=generator)
            with torch.inference_mode():
                try:
                    got = package(x)
                except Exception as exc:
                    problems.append(f"{h} x {w}: {type(exc).__name__}: {_first_line(exc)}")
                    continue
                reference = self._runner(x.to(torch_dtype(self.options.precision))).float()
            found = compare(reference, got)
            limit = DYNAMIC_TOLERANCE * float(reference.abs().mean()) + 1e-6
            if found["nonfinite"] or not found["mean_abs"] <= limit:
                problems.append(
                    f"{h} x {w}: {found['nonfinite']} NaN/Inf, mean difference {found['mean_abs']:.3g} from eager"
                )
        if not problems:
            return built
        reason = "; ".join(problems)
        atomic_write(unusable, f"{reason}\n".encode())
        warnings.warn(
            f"compile: {type(self.module).__name__} with dynamic shapes is unusable ({reason}); each input shape "
            "gets a package of its own",
            RuntimeWarning,
            stacklevel=5,
        )
        return None

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """On the CPU, the shape's package (see :meth:`_package`); else (CUDA, or a module that could not be
        exported) the eager backend's run of the module through ``torch.compile``."""
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
        self._dynamic = None
        self._jitted = False
        super().close()


def _package_file(options: BackendOptions, model_key: str, shape: tuple[int, ...] | None, channels: int = 0) -> Path:
    """Where the package of the module ``model_key`` for ``options`` and a ``(B, C, H, W)`` input of ``shape`` is
    cached; ``shape=None``: the dynamic-shape package for inputs of ``channels`` channels."""
    from ..machine import cpu_flags
    from ._common import cache_dir_of
    from .keys import cache_key

    flags = ",".join(flag for flag in ISA_FLAGS if flag in cpu_flags())
    key = cache_key(
        "inductor-aot",
        model_key,
        "x".join(map(str, shape)) if shape is not None else f"dynamic-c{channels}",
        options.precision,
        options.device,
        f"isa={flags}",
        "freezing",
    )
    return cache_dir_of(options.cache_dir) / "inductor" / f"{key}.pt2"


def _load(path: Path) -> _Package | None:
    """The package at ``path``, or ``None`` when there is none or this torch cannot load it (it is built again)."""
    if not path.is_file():
        return None
    try:
        return _Package(path)
    except Exception as exc:
        warnings.warn(f"compile: rebuilding {path.name}: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=4)
        return None


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters (torch.export's run to dozens of lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""
