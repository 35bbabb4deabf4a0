"""``ModelStage``: the base class of stages that run a registered network through a backend.

The base picks the backend from the run's ``execution.backend`` / ``device`` / ``precision`` (``auto`` resolved per
model by :meth:`imgx.models.ModelSpec.precision_for`), loads the reference module by its registry name and binds the
stage's conditioning (``build_module``) where the backend needs the module (not where it runs from its builds on disk:
:meth:`imgx.runtime.Backend.runs_without_module`), and offers
:meth:`ModelStage.infer_images`, which groups a batch by shape bucket, pads, stacks, runs and crops back. A subclass
only converts colours, alpha and sizes around it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import StageError
from ..stage import Stage, StageContext, StageParams
from .base import Backend, BackendOptions
from .buckets import bucket_shape, crop, pad_to, round_up
from .factory import backend_for
from .keys import engines_dir

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..models.spec import ModelSpec
    from ..registry import Registry
    from .factory import BackendChoice

__all__ = ["CPU_CALL_PIXELS", "ModelStage"]

CPU_CALL_PIXELS = 256 * 256  # on the CPU, inputs of this many pixels or more run one per backend call


def run_device(context: StageContext) -> str:
    """The torch device a model stage runs on: the context's CUDA device when torch sees one, else the CPU."""
    if context.device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return context.device
    return "cpu"


class ModelStage(Stage):
    """Base class of model stages.

    Class attributes (besides :class:`imgx.Stage`'s): ``model`` (registry name of the network), ``multiple`` (pad
    inputs to a multiple of this; 0 takes the model's ``stride``), ``in_channels`` (channels of the module that
    :meth:`build_module` returns, when it takes conditioning planes the registry's module does not, e.g. a noise
    level; 0 takes the model's). Model stages are ``batchable`` and placed on the
    ``gpu`` (they run on the CPU where there is none).

    Subclasses implement ``__call__`` (colour, alpha, resizing around :meth:`infer_images`) and may override
    :meth:`build_module`, :meth:`model_key_extra` and :meth:`input_size`.
    """

    model: ClassVar[str] = ""
    batchable: ClassVar[bool] = True
    holds_model: ClassVar[bool] = True
    device: ClassVar = "gpu"
    multiple: ClassVar[int] = 0
    in_channels: ClassVar[int] = 0
    #: Input channels of each :meth:`build_parts` module, where known: with them, backends that build one session
    #: for any input size build it at start and the stage's PyTorch weights are freed (see :meth:`_free_weights`).
    part_channels: ClassVar[dict[str, int]] = {}

    def __init__(self, params: StageParams | None = None, context: StageContext | None = None) -> None:
        super().__init__(params, context)
        from ..models import weights_key
        from .factory import choose_backend, model_precision

        registry = self.context.require_registry(self.name)
        self.spec = registry.get_model(self.model_name())
        model_key = _module_key(weights_key(self.spec), self.model_key_extra())
        cache_dir = Path(self.context.cache_dir) / "engines" if self.context.cache_dir else engines_dir()
        device = run_device(self.context)
        precision, why = model_precision(self.context.backend, self.spec, self.context.precision, device, registry)
        if precision == "bf16" and device == "cpu":
            precision, why = self._check_bf16(model_key, why, cache_dir, self.parity_module(self.base_module))
        self.precision_reason = why  # auto's choice (always said), or why a named precision was not kept
        if why and self.context.precision != "auto":
            warnings.warn(f"{self.name}: {why}", RuntimeWarning, stacklevel=2)
        options = BackendOptions(
            device=device,
            precision=precision,
            cache_dir=cache_dir,
            model_key=model_key,
            max_batch=max(1, self.context.batch_size),
            threads=self.context.threads,
        )
        self.choice: BackendChoice = choose_backend(
            self.context.backend, options, registry, self.ready_channels(self.spec)
        )
        if self.choice.fell_back and precision != "fp32":
            warnings.warn(f"{self.name}: {self.choice.reason}", RuntimeWarning, stacklevel=2)
        #: Whether the stage runs from the backends' builds on disk alone: its module is then never built (nor PyTorch
        #: imported for it) unless something reads :attr:`module`.
        self.without_module = self._runs_without_module(registry, model_key)
        module = None if self.without_module else self.module
        self.backend: Backend = backend_for(self.choice, module, registry)
        self.backend.load()
        self.parts: dict[str, Backend] = {}
        parts = dict.fromkeys(self.part_channels) if self.without_module else self.build_parts(self.base_module)
        for part, part_module in parts.items():  # same backend and options, a key of their own
            part_options = dataclasses.replace(self.choice.options, model_key=_part_key(model_key, part))
            choice = dataclasses.replace(self.choice, options=part_options)
            self.parts[part] = backend_for(choice, part_module.eval() if part_module is not None else None, registry)
            self.parts[part].load()
        self.shapes_seen: collections.Counter[tuple[int, ...]] = collections.Counter()
        self.weights_freed = self._free_weights()

    @functools.cached_property
    def base_module(self) -> torch.nn.Module:
        """The registry's reference module of :meth:`model_name`, loaded when first read."""
        from ..models import load_module

        return load_module(self.spec, registry=self.context.require_registry(self.name))

    @functools.cached_property
    def module(self) -> torch.nn.Module:
        """The module the backend runs (:meth:`build_module` of :attr:`base_module`), built when first read: a stage
        that runs :attr:`without_module` never builds it unless asked."""
        return self.build_module(self.base_module).eval()

    def _runs_without_module(self, registry: Registry, model_key: str) -> bool:
        """Whether the chosen backend runs the stage's module, and each of its parts (named by
        :attr:`part_channels`, which must then name them all), from its builds on disk alone
        (:meth:`imgx.runtime.Backend.runs_without_module`)."""
        kind = registry.get_backend(self.choice.name)
        options = self.choice.options
        channels = self.in_channels or self.spec.in_channels
        if not kind.runs_without_module(options, channels):
            return False
        if self.runs_in_parts() and not self.part_channels:
            return False  # the parts are known only by building them
        return all(
            kind.runs_without_module(dataclasses.replace(options, model_key=_part_key(model_key, part)), part_channels)
            for part, part_channels in self.part_channels.items()
        )

    def _free_weights(self) -> bool:
        """Where every backend of the stage can build its session for any input size now (ONNX Runtime), build them
        and free the PyTorch copy of the weights: the sessions hold their own, and the module would otherwise stay
        resident beside them for the worker's life (Real-ESRGAN: 67 MB). The modules keep their structure, each tensor
        replaced by an empty one, so running them raises (on the ``meta`` device a convolution of a CPU input returned a
        CPU tensor of no meaning). Returns whether it did."""
        channels = self.in_channels or self.spec.in_channels
        if not channels or set(self.parts) - set(self.part_channels):
            return False
        backends = [self.backend, *self.parts.values()]
        self.backend.prepare(channels)
        for name, part in self.parts.items():
            part.prepare(self.part_channels[name])
        if self.without_module:
            return True  # the sessions are made from the files: no PyTorch copy of the weights was ever loaded
        if not all(backend.holds_weights() for backend in backends):
            return False
        import torch

        from ..heap import trim_heap

        for backend in backends:  # in place: every module sharing these parameters sees it
            backend.module._apply(lambda t: torch.empty(0, dtype=t.dtype, device=t.device))
        trim_heap()  # the emptied tensors' memory: most of Real-ESRGAN's convolutions are below the mmap threshold
        return True

    def _check_bf16(self, model_key: str, why: str, cache_dir: Path, checked: torch.nn.Module) -> tuple[str, str]:
        """BF16 on the CPU: check ``checked`` (:meth:`parity_module`) at BF16 on this CPU
        (:func:`imgx.runtime.bf16_check.bf16_check`; within the model's tolerance, or only finite and repeatable for
        a model without one), on photos of the model's ``probe_sides``. ``auto``'s BF16 is kept only if it passes
        and the stage's own module runs faster at BF16 here; BF16 asked for by name is kept with a warning saying
        what failed."""
        import math

        from ._common import module_key
        from .bf16_check import CHECK_SIDES, bf16_check

        tolerance = self.spec.tolerance if self.spec.tolerance is not None else math.inf
        sides = self.spec.probe_sides or CHECK_SIDES
        # the modules as built (checked, and raced where that is another), not only their weights, and the sides
        modules = ":".join(module_key(m) for m in dict.fromkeys((checked, self.module)))
        key = f"{self.name}:{model_key}:{modules}:{sides}"
        verdict = bf16_check(checked, key, tolerance, self.in_channels or self.spec.in_channels, sides)
        if verdict.ok and self.context.precision == "auto":
            race = self._race_bf16(key, model_key, cache_dir)
            if not race.ok:
                return "fp32", f"auto: fp32: {self.name}'s BF16 is correct on this CPU but not faster: {race.reason}"
            return "bf16", f"{why}; {verdict.reason}; {race.reason}"
        if verdict.ok:
            return "bf16", why
        if self.context.precision == "auto":
            return "fp32", f"auto: fp32: {self.name} failed its BF16 check on this CPU: {verdict.reason}"
        warnings.warn(f"{self.name}: BF16 failed its check on this CPU: {verdict.reason}", RuntimeWarning, stacklevel=3)
        return "bf16", why

    def _race_bf16(self, key: str, model_key: str, cache_dir: Path) -> Any:
        """:func:`imgx.runtime.bf16_check.bf16_race` of the backends the recipe's ``execution.backend`` gives at BF16
        and at FP32 for this module, with this worker's threads."""
        from .bf16_check import RACE_SIDE, bf16_race
        from .factory import create_backend

        registry = self.context.require_registry(self.name)
        base = BackendOptions(
            device="cpu",
            cache_dir=cache_dir,
            model_key=model_key,  # the key the stage's own backend uses: an ONNX export made here is reused
            threads=self.context.threads,
        )
        backend, module, channels = self.context.backend, self.module, self.ready_channels(self.spec)
        low, full = (
            create_backend(backend, module, dataclasses.replace(base, precision=p), registry, channels)
            for p in ("bf16", "fp32")
        )
        try:
            race_key = f"{key}:{low.name}:{full.name}:threads={self.context.threads}"
            side = max(self.spec.probe_sides or (RACE_SIDE,))
            return bf16_race(race_key, low, full, self.in_channels or self.spec.in_channels, side)
        finally:
            low.close()
            full.close()

    # -- what subclasses override ------------------------------------------------------------------------------------

    def model_name(self) -> str:
        """The registry name of the network this instance runs. Default: the class's ``model``."""
        return self.model

    @classmethod
    def models(cls, params: StageParams) -> tuple[str, ...]:
        """The models the stage loads with ``params`` (``imgx validate`` checks they are registered). Default: the
        class's ``model``."""
        return (cls.model,) if cls.model else ()

    def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
        """The single-input module the backend runs, built from the registry's reference ``base`` (bind conditioning
        such as a style vector here). Default: ``base``. It may never be called (a backend that runs from its builds
        on disk needs no module), so it only builds: state the stage needs belongs in its ``__init__`` or in a
        property that reads :attr:`base_module`."""
        return base

    def build_parts(self, base: torch.nn.Module) -> dict[str, torch.nn.Module]:
        """Further modules, by name, that the stage runs itself (:meth:`run_part`), each by a backend of its own with
        the main one's backend, device and precision: a network run in pieces, such as an upsampling tail run on row
        strips of the trunk's features so its full-resolution feature maps are never all in memory. Default: none.
        """
        return {}

    @classmethod
    def runs_in_parts(cls) -> bool:
        """Whether the stage runs its network in parts (it overrides :meth:`build_parts`), known without building
        it (``imgx plan``, ``imgx build``)."""
        return cls.build_parts is not ModelStage.build_parts

    @classmethod
    def ready_channels(cls, spec: ModelSpec) -> int:
        """The input channels with which ``auto`` may put first a backend that has its builds for the stage's module
        cached (:meth:`imgx.runtime.Backend.ready`); 0, so that it keeps its usual order, for a stage that runs its
        network in parts, since the parts' builds are not what such a backend found."""
        return 0 if cls.runs_in_parts() else cls.in_channels or spec.in_channels

    @classmethod
    def cache_key(cls, spec: ModelSpec, params: StageParams) -> str:
        """The key under which backends cache what they build for the module an instance with ``params`` runs (the
        weights' key with :meth:`model_key_extra`), found without loading the weights (``imgx plan``).

        :raises Exception: whatever a plugin's :meth:`model_key_extra` raises when it reads more than its params.
        """
        from ..models import weights_key

        probe = cls.__new__(cls)
        Stage.__init__(probe, params)  # the params alone, which is what model_key_extra reads
        return _module_key(weights_key(spec), probe.model_key_extra())

    def parity_module(self, base: torch.nn.Module) -> torch.nn.Module:
        """The module whose BF16 output is held to the model's tolerance on this CPU, given the registry's reference
        ``base``: the stage's own module (default), or, for a stage that runs the network in parts, the whole network,
        whose output the tolerance was declared for."""
        return self.module

    def model_key_extra(self) -> str:
        """Text that, with the weights' hash, keys cached graphs and engines (the bound style weights).

        Default ``""``."""
        return ""

    @classmethod
    def input_size(cls, params: StageParams, h: int, w: int) -> tuple[int, int]:
        """The ``(h, w)`` an ``(h, w)`` image is resized to before padding (e.g. limited by ``max_side``)."""
        return h, w

    # -- what subclasses call ----------------------------------------------------------------------------------------

    @classmethod
    def padded_shape(cls, spec: ModelSpec, h: int, w: int, *, buckets: bool = True) -> tuple[int, int]:
        """The ``(H, W)`` an ``(h, w)`` network input is padded to: its shape bucket, or (``buckets=False``, for
        backends with dynamic shapes) the next multiple of the stride."""
        multiple = cls.multiple or max(1, spec.stride)
        if buckets:
            return bucket_shape(h, w, sides=spec.sides, multiple=multiple)
        return round_up(h, multiple), round_up(w, multiple)

    @classmethod
    def bucket_of(
        cls, spec: ModelSpec, params: StageParams, h: int, w: int, *, buckets: bool = True
    ) -> tuple[int, int]:
        """The padded ``(H, W)`` that an ``(h, w)`` catalog image runs at in this stage."""
        ih, iw = cls.input_size(params, h, w)
        return cls.padded_shape(spec, ih, iw, buckets=buckets)

    @classmethod
    def plan_buckets(
        cls,
        params: StageParams,
        sizes: Iterable[tuple[int, int]],
        registry: Registry,
        *,
        buckets: bool = True,
    ) -> collections.Counter[tuple[int, int]]:
        """How many of the ``(h, w)`` catalog image sizes run at each padded shape ``(H, W)`` (for ``imgx plan``)."""
        spec = registry.get_model(cls.model)
        return collections.Counter(cls.bucket_of(spec, params, h, w, buckets=buckets) for h, w in sizes)

    @property
    def uses_buckets(self) -> bool:
        """Whether this stage's inputs are padded to shape buckets (:meth:`imgx.runtime.Backend.any_shape`)."""
        return not type(self.backend).any_shape(self.backend.options)

    def call_batch(self, H: int, W: int) -> int:
        """How many ``(H, W)`` inputs go to the backend in one call: the context's ``batch_size``, except on the CPU,
        where a call holds at most :data:`CPU_CALL_PIXELS` pixels (at least one image).

        On a CPU a convolution network is memory-bound at catalog sizes: a batch multiplies every activation (128 MB
        per 32-channel layer of one 1024 px image) without using the cores any better, so each image costs more in a
        batch (``imgx bench`` of multistyle26 at 1024 px on the 2-core VM: ONNX Runtime 2.73 img/s at batch 1, 2.55 at
        batch 4; eager 1.74 and 1.31; compile 3.41 and 2.73). One per call also makes an image's pixels independent of
        its batch neighbours (eager's convolutions round a few pixels 1 level apart per batch size; the pinned recipe
        hashes did not move). Small images still share a call, where per-call overhead counts.
        """
        size = max(1, self.context.batch_size)
        if self.backend.options.device != "cpu":
            return size
        return max(1, min(size, CPU_CALL_PIXELS // max(1, H * W)))

    def infer_images(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the network on images of any sizes.

        :param images: ``(h, w, C)`` float32 arrays in the model's value range (0..1), ``C`` the module's input
            channels (``in_channels``, else the model's).
        :raises StageError: the network returned NaN or Inf (the batch's items then fail, each with the reason).
        :return: per image, the ``(h * r, w * r, C_out)`` float32 output, ``r`` the network's output/input size ratio.

        Images are grouped by padded shape, reflect-padded to it (bottom and right), stacked into batches of at most
        :meth:`call_batch` images (the context's ``batch_size``; on the CPU, one image of 256 x 256 or more) as
        ``(B, C, H, W)`` float32 tensors, run by the backend (the calls of one shape as one
        :meth:`~imgx.runtime.Backend.infer_series`), and cropped back. The padded shape is the image's shape
        bucket on backends that build per shape (``tensorrt``, ``compile`` on CUDA), and its own size rounded up to
        the stride on the others (:meth:`imgx.runtime.Backend.any_shape`: ``eager``, ``onnxruntime``, ``compile`` on
        the CPU): a network with instance norm sees the padding in its statistics, so no more is added than a build
        needs.
        """
        import numpy as np

        buckets = self.uses_buckets
        channels = self.in_channels or self.spec.in_channels
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != channels or image.dtype != np.float32:
                raise ValueError(
                    f"got image {image.dtype} {image.shape} for model {self.model!r}; expected (h, w, {channels}) "
                    "float32"
                )
            key = self.padded_shape(self.spec, image.shape[0], image.shape[1], buckets=buckets)
            groups.setdefault(key, []).append(index)
        results: list[Any] = [None] * len(images)
        for (H, W), indices in groups.items():
            size = self.call_batch(H, W)
            chunks = [indices[start : start + size] for start in range(0, len(indices), size)]
            series = self.backend.infer_series(self._stacked(images, chunk, H, W) for chunk in chunks)
            for chunk, raw in zip(chunks, series, strict=True):
                out = self._finite(raw, self.backend)
                out_h, out_w = out.shape[-2:]
                for row, i in enumerate(chunk):
                    h, w = images[i].shape[:2]
                    kept = crop(out[row], round(h * out_h / H), round(w * out_w / W))
                    results[i] = np.ascontiguousarray(kept.transpose(1, 2, 0))
        return results

    def _stacked(self, images: Sequence[np.ndarray], chunk: list[int], H: int, W: int) -> np.ndarray:
        """The ``(B, C, H, W)`` float32 batch of ``images[chunk]``, each reflect-padded to ``(H, W)``; counted in
        :attr:`shapes_seen`."""
        import numpy as np

        batch = np.stack([pad_to(images[i].transpose(2, 0, 1), H, W) for i in chunk])
        self.shapes_seen[tuple(batch.shape)] += 1
        return batch

    def run_part(self, part: str, x: np.ndarray) -> np.ndarray:
        """Run the :meth:`build_parts` module ``part`` on one ``(B, C, H, W)`` float32 array as it is (no buckets,
        padding or batching: a caller on a backend without :attr:`~imgx.runtime.Backend.dynamic_shapes` keeps to
        few shapes); return its output as a float32 array."""
        import numpy as np

        backend = self.parts[part]
        return self._finite(backend.infer_array(np.ascontiguousarray(x, dtype=np.float32)), backend)

    def _finite(self, out: np.ndarray, backend: Backend) -> np.ndarray:
        """``out``, or a :class:`imgx.StageError` for the items of this call when it holds NaN or Inf (a network
        whose kernels fail at a reduced precision on this machine): a NaN becomes black or white pixels when
        converted, so it must never reach an output file.

        A NaN or Inf anywhere makes the float32 sum NaN or Inf, so a finite sum proves the output finite (a sum, ~1 ms
        for a 1024 px image, where ``isfinite(out).all()`` took ~36 ms); only a non-finite sum, which finite values
        too large to add up could also give, is checked value by value."""
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is what the second check is for
            total = np.sum(out, dtype=np.float32)
        if np.isfinite(total) or np.isfinite(out).all():
            return out
        options = backend.options
        hint = " (run it at execution.precision: fp32)" if options.precision != "fp32" else ""
        raise StageError(
            f"{self.name}: model {self.spec.name} returned NaN/Inf on {backend.name} at {options.precision} on "
            f"{options.device}{hint}"
        )

    def close(self) -> None:
        for backend in [getattr(self, "backend", None), *getattr(self, "parts", {}).values()]:
            if backend is not None:
                backend.close()


def _module_key(weights: str, extra: str) -> str:
    """The cache key of a module: its weights' key, with :meth:`ModelStage.model_key_extra` where there is one."""
    return hashlib.sha256(f"{weights}:{extra}".encode()).hexdigest() if extra else weights


def _part_key(model_key: str, part: str) -> str:
    """The cache key of the :meth:`ModelStage.build_parts` module ``part`` of the module keyed ``model_key``."""
    return hashlib.sha256(f"{model_key}:part:{part}".encode()).hexdigest()
