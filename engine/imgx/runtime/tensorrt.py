"""``tensorrt``: engines built with the TensorRT 10 Python API from the cached ONNX export, one per shape bucket.

Each bucket ``(C, H, W)`` gets an engine whose optimisation profile covers batches 1..``max_batch`` at that size,
built at FP32, FP16 (``BuilderFlag.FP16``) or BF16 (``BuilderFlag.BF16``); inputs and outputs stay FP32 tensors. The
serialized engine is cached under ``<cache_dir>/tensorrt/<key>.engine`` (the key covers the weights, the profile,
the precision, the GPU and the library versions) and the builder's timing cache persists in the same folder, so a
second build of a similar network skips most tactic timing. Inference runs on torch CUDA tensors: their
``data_ptr()`` are bound with ``set_tensor_address`` and ``execute_async_v3`` runs on torch's current stream.

TensorRT and CUDA are optional (``pip install 'imgx[tensorrt]'``); without them :meth:`unavailable` says so in one
line and ``auto`` picks another backend.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import BackendError
from ..io.atomic import atomic_write
from .base import Backend, BackendOptions

if TYPE_CHECKING:
    import torch

__all__ = ["TensorRTBackend"]

WORKSPACE_BYTES = 4 << 30


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, data)  # readable as the umask allows: the engine cache may be shared (mkstemp gave 0600)


class TensorRTBackend(Backend):
    """TensorRT engines per shape bucket, run with ``execute_async_v3`` on torch's CUDA stream."""

    name: ClassVar[str] = "tensorrt"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    auto_ranks: ClassVar[dict[tuple[str, str], int]] = {
        ("cuda", "fp32"): 10,
        ("cuda", "fp16"): 10,
        ("cuda", "bf16"): 10,
    }

    def __init__(self, module: torch.nn.Module, options: BackendOptions) -> None:
        super().__init__(module, options)
        self._trt: Any = None
        self._runtime: Any = None
        self._logger: Any = None
        self._engines: dict[tuple[int, int, int], tuple[Any, Any, int]] = {}  # (C, H, W) -> engine, context, max B
        self.built: list[Path] = []  # engines this instance built (the others were loaded from the cache)

    @classmethod
    def unavailable(cls, options: BackendOptions) -> str | None:
        from ._common import cuda_problem

        if importlib.util.find_spec("tensorrt") is None:
            return "tensorrt is not installed; pip install 'imgx[tensorrt]'"
        problem = cls.precision_problem(options)
        if problem:
            return problem
        if not options.device.startswith("cuda"):
            return f"tensorrt needs a CUDA GPU; got device {options.device!r}"
        return cuda_problem(options.device)

    def load(self) -> None:
        import tensorrt as trt

        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)

    def _folder(self) -> Path:
        from ._common import cache_dir_of

        folder = cache_dir_of(self.options.cache_dir) / "tensorrt"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _timing_cache_path(self) -> Path:
        from .keys import cache_key

        return self._folder() / f"timing-{cache_key('tensorrt-timing', '', '', '', self.options.device)[:24]}.cache"

    def _engine(self, channels: int, height: int, width: int, batch: int) -> tuple[Any, Any]:
        found = self._engines.get((channels, height, width))
        if found is not None and found[2] >= batch:
            return found[0], found[1]
        from ._common import module_key
        from .keys import cache_key

        max_batch = max(batch, self.options.max_batch)
        profile = f"1-{max_batch}x{channels}x{height}x{width}"
        model_key = self.options.model_key or module_key(self.module)
        key = cache_key(self.name, model_key, profile, self.options.precision, self.options.device)
        path = self._folder() / f"{key}.engine"
        data = path.read_bytes() if path.is_file() else self._build(path, channels, height, width, batch, max_batch)
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise BackendError(f"got an engine TensorRT cannot load ({path}); expected one it built: delete the file")
        context = engine.create_execution_context()
        self._engines[(channels, height, width)] = (engine, context, max_batch)
        return engine, context

    def _build(self, path: Path, channels: int, height: int, width: int, batch: int, max_batch: int) -> bytes:
        from ._common import export_onnx, onnx_path

        trt = self._trt
        onnx_file = export_onnx(
            self.module, onnx_path(self.module, self.options.model_key, self.options.cache_dir, channels), channels
        )
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # explicit batch: the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(onnx_file)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"got ONNX parser errors for {onnx_file.name}: {errors}; expected a parsable graph")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.options.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.options.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        timing_path = self._timing_cache_path()
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        profile = builder.create_optimization_profile()
        name = network.get_input(0).name
        profile.set_shape(
            name, (1, channels, height, width), (batch, channels, height, width), (max_batch, channels, height, width)
        )
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(
                f"got no engine from TensorRT for {self.options.precision} {profile_text(channels, height, width)}; "
                "expected a build (see the TensorRT log above; try precision fp32)"
            )
        data = bytes(serialized)
        _write_atomic(path, data)
        _write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
        self.built.append(path)
        return data

    def warmup(self, shape: tuple[int, int, int, int]) -> float:
        """Build or load the engine for this shape, then run it once; the seconds both took."""
        import time

        import torch

        start = time.perf_counter()
        self.infer(torch.zeros(shape, dtype=torch.float32, device=self.options.device))
        torch.cuda.synchronize(self.options.device)
        return time.perf_counter() - start

    def builds_on_disk(self) -> bool:
        return True  # the serialized engines and the timing cache

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if self._runtime is None:
            self.load()
        trt = self._trt
        b, c, h, w = (int(v) for v in x.shape)
        engine, context = self._engine(c, h, w, b)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        batch = x.to(device=self.options.device, dtype=torch.float32).contiguous()
        context.set_input_shape(inputs[0], tuple(batch.shape))
        context.set_tensor_address(inputs[0], batch.data_ptr())
        out = torch.empty(tuple(context.get_tensor_shape(outputs[0])), device=batch.device, dtype=torch.float32)
        context.set_tensor_address(outputs[0], out.data_ptr())
        stream = torch.cuda.current_stream(batch.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"got a failed TensorRT execution for shape {tuple(batch.shape)}; expected success")
        return out.to(x.device)

    def close(self) -> None:
        self._engines.clear()
        self._runtime = None


def profile_text(channels: int, height: int, width: int) -> str:
    return f"{channels}x{height}x{width}"
