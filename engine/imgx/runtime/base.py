"""The backend contract: how a model stage runs a network, whatever runs it underneath.

A backend wraps one reference ``torch.nn.Module`` (eval mode, float32, CPU, one ``(B, C, H, W)`` float32 input and
one tensor output) and runs it on a device at a precision: ``eager`` (PyTorch, the reference), ``compile``
(``torch.compile``), ``onnxruntime`` (ONNX exported from the module, cached), ``tensorrt`` (an engine built from that
ONNX). Each lives in its own file and is registered through the ``imgx_backends`` hook.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["Backend", "BackendOptions", "device_kind"]


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """How to run a model.

    :param device: ``"cpu"`` or ``"cuda"`` (or ``"cuda:N"``).
    :param precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
    :param cache_dir: where exported graphs, engines and timing caches are kept (``$IMGX_HOME/engines``).
    :param model_key: identifies the module's weights (the sha256 of its state dict or weight files); part of every
        cache key, with the shape profile, precision, device and library versions.
    :param threads: intra-op threads for CPU backends; ``None`` leaves the library default.
    :param max_batch: the largest batch the caller will send; backends that build per shape (TensorRT optimisation
        profiles) cover batches 1..``max_batch``, and a larger batch builds again.
    """

    device: str = "cpu"
    precision: str = "fp32"
    cache_dir: Path | None = None
    model_key: str = ""
    threads: int | None = None
    max_batch: int = 8


def device_kind(device: str) -> str:
    """``"cuda"`` for ``"cuda"``/``"cuda:N"``, else ``"cpu"``: the device kind of ``auto_ranks`` and ``ready_ranks``."""
    return "cuda" if device.startswith("cuda") else "cpu"


class Backend(abc.ABC):
    """Runs one module. Lifecycle: ``load()`` once, ``warmup(shape)`` per shape bucket, ``infer(x)`` many times,
    ``close()`` once.

    Class attributes: ``name`` (what ``execution.backend`` and ``imgx bench --backends`` select), ``precisions``
    (those it can run at all; :meth:`unavailable` says whether it can run here) and ``dynamic_shapes`` (True when any
    input size runs at no extra cost, as in eager PyTorch or an ONNX graph with dynamic axes: model stages then run
    each image at its own size, padded to the network's stride only; False when a new shape may cost a build, as in
    ``torch.compile`` and TensorRT: images are then padded to shape buckets so a run builds a handful, unless
    :meth:`any_shape` says the backend keeps its builds few itself).
    ``auto_ranks`` places the backend in ``auto``'s order: ``{(device kind, precision): rank}``, device kind ``"cpu"``
    or ``"cuda"``; ``auto`` tries the backends registered for a (device, precision) from the lowest rank up and takes
    the first that runs here; a pair that is not listed is never picked by ``auto``. A plugin backend sets its own.
    ``ready_ranks``: the rank ``auto`` gives the backend instead where :meth:`ready` says that it has nothing left to
    build for the model (``compile`` on the CPU once its packages are in the engine cache).
    """

    registers_as: ClassVar[str] = "backend"
    name: ClassVar[str] = ""
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    dynamic_shapes: ClassVar[bool] = False
    auto_ranks: ClassVar[dict[tuple[str, str], int]] = {}
    ready_ranks: ClassVar[dict[tuple[str, str], int]] = {}

    @classmethod
    def registration_problem(cls) -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, Backend) and cls.name):
            return f"got {cls!r} from imgx_backends; expected a Backend with a name"
        return None

    @classmethod
    def registry_keys(cls) -> tuple[str, ...]:
        return (cls.name,)

    @classmethod
    def auto_rank(cls, device_kind: str, precision: str) -> int | None:
        """Where ``auto`` tries this backend on ``device_kind`` (``"cpu"``/``"cuda"``) at ``precision``: lower first;
        ``None``: never."""
        return cls.auto_ranks.get((device_kind, precision))

    @classmethod
    def ready(cls, options: BackendOptions, channels: int) -> bool:
        """Whether inputs of ``channels`` channels of any size would run with ``options`` (whose ``model_key`` names
        the module) with nothing to build first: what the backend builds is on disk from an earlier run or from
        ``imgx build``. Asked only where :attr:`ready_ranks` lists the device kind and precision. Default ``False``."""
        return False

    @classmethod
    def any_shape(cls, options: BackendOptions) -> bool:
        """Whether model stages give this backend, run with ``options``, each image at its own size (padded to the
        network's stride only) rather than padded to a shape bucket. Default :attr:`dynamic_shapes`; a backend that
        builds per shape but keeps its builds few by other means says so (``compile`` on the CPU)."""
        return cls.dynamic_shapes

    @classmethod
    def runs_without_module(cls, options: BackendOptions, channels: int) -> bool:
        """Whether a backend made with ``options`` (whose ``model_key`` names the module) would run inputs of
        ``channels`` channels of any size from what it built on disk alone, never reading the module: a model stage
        then creates it with ``module=None`` and never builds the module, so a worker needs no PyTorch for it
        (ONNX Runtime with its export cached). Default ``False``."""
        return False

    def __init__(self, module: torch.nn.Module | None, options: BackendOptions) -> None:
        """``module``: the network to run; ``None`` only where :meth:`runs_without_module` said so."""
        self.module = module
        self.options = options

    @classmethod
    @abc.abstractmethod
    def unavailable(cls, options: BackendOptions) -> str | None:
        """``None`` if this backend can run with these options here, else one line saying why not and what to
        install (``"tensorrt is not installed; pip install 'imgx[tensorrt]'"``)."""

    @classmethod
    def precision_problem(cls, options: BackendOptions) -> str | None:
        """``None`` if ``options.precision`` is one of :attr:`precisions`, else the line :meth:`unavailable` says."""
        if options.precision in cls.precisions:
            return None
        return f"{cls.name} runs {', '.join(cls.precisions)}; got precision {options.precision!r}"

    @abc.abstractmethod
    def load(self) -> None:
        """Prepare to run (move to device, export or load a cached graph/engine). Called once."""

    def prepare(self, channels: int) -> None:  # noqa: B027 - optional hook
        """Build now what inputs of ``channels`` channels need, where that does not depend on their shape (a session
        that takes any size). Default: nothing (built on the first input)."""

    def holds_weights(self) -> bool:
        """Whether the backend now runs from a copy of the weights of its own (a built session or engine that takes
        every input it will get), so it never reads :attr:`module` again and the module's tensors may be freed.
        Default ``False``."""
        return False

    def builds_on_disk(self) -> bool:
        """Whether what :meth:`warmup` builds is kept on disk for the next backend, worker or run to load (an ONNX
        export, a compiled package, an engine); ``imgx bench`` then times a second start from it. Default ``False``.
        """
        return False

    def warmup(self, shape: tuple[int, int, int, int]) -> float:
        """Build or load what this input shape needs and run it once; return the seconds it took."""
        import time

        import torch

        start = time.perf_counter()
        self.infer(torch.zeros(shape, dtype=torch.float32))
        return time.perf_counter() - start

    @abc.abstractmethod
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Run a ``(B, C, H, W)`` float32 tensor (on the CPU or on the backend's device); return the float32 output on
        the same device as ``x``."""

    def infer_array(self, x: np.ndarray) -> np.ndarray:
        """:meth:`infer` of a ``(B, C, H, W)`` float32 array on the CPU, returning the float32 output as an array on the
        CPU. Default: through a tensor; a backend that runs arrays itself overrides it (ONNX Runtime: no PyTorch)."""
        import numpy as np
        import torch

        return np.ascontiguousarray(self.infer(torch.from_numpy(x)).float().cpu().numpy())

    def infer_series(self, inputs: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """:meth:`infer_array` of each input of a series of calls of one shape, in order, as each is asked for.

        Default: one :meth:`infer_array` per input. A backend whose scratch memory between calls is worth keeping
        within a series and giving back after it overrides this (ONNX Runtime keeps its arena until the series' last
        call)."""
        for x in inputs:
            yield self.infer_array(x)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device memory, sessions and engines."""
