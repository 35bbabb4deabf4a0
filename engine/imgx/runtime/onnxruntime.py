"""``onnxruntime``: the module exported to ONNX once (cached on disk by its key) and run by ONNX Runtime.

The export is FP32 with dynamic batch, height and width, so one file serves every shape bucket. CPU execution
provider on the CPU (intra-op threads = the cores this process may use, all graph optimisations on); the CUDA
execution provider on a CUDA device when ``onnxruntime-gpu`` provides it. FP16/BF16 would need a converted graph,
which imgx does not build: those precisions are reported unavailable rather than run at FP32 under their name.
Once the export is on disk the backend runs without the module (:meth:`~imgx.runtime.Backend.runs_without_module`)
and takes NumPy arrays (:meth:`~imgx.runtime.Backend.infer_array`): a worker running only such models never imports
PyTorch (about 1.2 s of start-up and 200-270 MiB resident per worker).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import BackendError
from ._common import onnx_path, onnx_run_options
from .base import Backend, BackendOptions

if TYPE_CHECKING:
    import torch

__all__ = ["OnnxRuntimeBackend"]


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` over the cached ONNX export of the module."""

    name: ClassVar[str] = "onnxruntime"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    dynamic_shapes: ClassVar[bool] = True
    auto_ranks: ClassVar[dict[tuple[str, str], int]] = {("cpu", "fp32"): 10}

    def __init__(self, module: torch.nn.Module | None, options: BackendOptions) -> None:
        super().__init__(module, options)
        self.session: Any = None
        self.onnx_file: Path | None = None
        self.exported = False  # whether this instance exported the graph (False: loaded from the cache)

    @classmethod
    def unavailable(cls, options: BackendOptions) -> str | None:
        import importlib.util

        from ._common import cuda_problem

        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed; pip install onnxruntime (or onnxruntime-gpu for CUDA)"
        if options.precision not in cls.precisions:
            return (
                f"onnxruntime runs the exported FP32 graph only; got precision {options.precision!r} "
                "(imgx builds no FP16/BF16 graphs; use tensorrt, compile or eager)"
            )
        problem = cuda_problem(options.device)
        if problem:
            return problem
        if options.device.startswith("cuda"):
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                return "onnxruntime has no CUDA execution provider here; pip install onnxruntime-gpu"
        return None

    def load(self) -> None:
        """Nothing to do until the first input: the export needs the channel count, which the input gives."""

    def _session(self, channels: int) -> Any:
        if self.session is not None:
            return self.session
        import onnxruntime

        from ..heap import trim_heap
        from ._common import ExportCounter, cpu_threads, export_onnx

        path = onnx_path(self.module, self.options.model_key, self.options.cache_dir, channels)
        before = ExportCounter.count
        if self.module is not None:
            export_onnx(self.module, path, channels)
        elif not path.is_file():  # export_onnx imports torch, which a session made from the file does not need
            raise BackendError(
                f"got no module and no ONNX export at {path} (removed after the stage started?); expected the export "
                "that runs_without_module found: run again to export it"
            )
        self.exported = ExportCounter.count > before
        self.onnx_file = path
        so = onnxruntime.SessionOptions()
        so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.options.threads or cpu_threads()
        so.log_severity_level = 3
        providers: list[Any] = ["CPUExecutionProvider"]
        if self.options.device.startswith("cuda"):
            import torch

            index = torch.device(self.options.device).index or 0
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        self.session = onnxruntime.InferenceSession(str(path), so, providers=providers)
        trim_heap()  # the model's parse buffers, freed but kept by the heap: 170 -> 86 MiB for Real-ESRGAN's trunk
        return self.session

    def prepare(self, channels: int) -> None:
        self._session(channels)

    def builds_on_disk(self) -> bool:
        return True  # the ONNX export

    def holds_weights(self) -> bool:
        return self.session is not None  # one session takes any size (dynamic axes)

    @classmethod
    def runs_without_module(cls, options: BackendOptions, channels: int) -> bool:
        """On the CPU, with a model key, once the export for ``channels`` channels is on disk: the session is made from
        the file."""
        return (
            options.device == "cpu"
            and bool(options.model_key and channels)
            and onnx_path(None, options.model_key, options.cache_dir, channels).is_file()
        )

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        out = self._run(x.detach().to(device="cpu", dtype=torch.float32).numpy(), shrink=True)
        return torch.from_numpy(out).to(x.device)

    def infer_array(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, shrink=True)

    def infer_series(self, inputs: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Each input's output; the CPU arena is kept between the series' calls and shrunk after its last one.

        Shrinking after every call gives the arena's pages back to the system and faults them in again on the next
        call: U2-Netp at 320 x 320 on one thread took 575 ms a call shrunk each time against 530 ms kept (43,000
        page faults a call against 5,400; 2-vCPU AMD EPYC, AVX2). Calls of one shape need the same arena, so keeping
        it through the series does not raise the peak; shrinking after the last call still leaves the memory free for
        the stages that run next. The next input is prepared before each call, so the last one is known."""
        pending = iter(inputs)
        x = next(pending, None)
        while x is not None:
            following = next(pending, None)
            yield self._run(x, shrink=following is None)
            x = following

    def _run(self, x: np.ndarray, *, shrink: bool) -> np.ndarray:
        session = self._session(int(x.shape[1]))
        (out,) = session.run(
            ["y"], {"x": np.ascontiguousarray(x, dtype=np.float32)}, onnx_run_options() if shrink else None
        )
        return out

    def close(self) -> None:
        self.session = None
