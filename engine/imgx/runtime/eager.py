"""``eager``: the reference module run by PyTorch as it is, on the CPU or a CUDA GPU, at FP32, FP16 or BF16.

Eager FP32 is the reference every other backend is compared with, and the fallback that is always available.
Measured on the 2-core CI-class CPU (the style network at 512 px): channels-last memory format made CPU inference
~35 % slower, so it is used on CUDA only, where convolutions prefer it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import Backend, BackendOptions

if TYPE_CHECKING:
    import torch

__all__ = ["EagerBackend"]


class EagerBackend(Backend):
    """PyTorch eager execution under ``torch.inference_mode``."""

    name: ClassVar[str] = "eager"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")
    dynamic_shapes: ClassVar[bool] = True
    # the reference: last on CUDA and at fp32 on the CPU; first at fp16/bf16 on the CPU (any size, no build)
    auto_ranks: ClassVar[dict[tuple[str, str], int]] = {
        ("cuda", "fp32"): 30,
        ("cuda", "fp16"): 30,
        ("cuda", "bf16"): 30,
        ("cpu", "fp32"): 20,
        ("cpu", "fp16"): 10,
        ("cpu", "bf16"): 10,
    }

    def __init__(self, module: torch.nn.Module, options: BackendOptions) -> None:
        super().__init__(module, options)
        self._runner: torch.nn.Module | None = None

    @classmethod
    def unavailable(cls, options: BackendOptions) -> str | None:
        from ._common import cuda_problem

        return cls.precision_problem(options) or cuda_problem(options.device)

    @property
    def channels_last(self) -> bool:
        return self.options.device.startswith("cuda")

    def load(self) -> None:
        import torch

        from ._common import module_copy

        if self.options.threads and not self.options.device.startswith("cuda"):
            torch.set_num_threads(self.options.threads)
        runner = module_copy(self.module, self.options.device, self.options.precision)
        if self.channels_last:
            runner = runner.to(memory_format=torch.channels_last)
        self._runner = runner

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        from ._common import torch_dtype

        if self._runner is None:
            self.load()
        assert self._runner is not None
        batch = x.to(device=self.options.device, dtype=torch_dtype(self.options.precision))
        batch = batch.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        with torch.inference_mode():
            out = self._runner(batch)
        return out.to(device=x.device, dtype=torch.float32).contiguous()

    def close(self) -> None:
        self._runner = None
