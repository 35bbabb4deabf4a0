"""``segment.onnx``: the product mask from a segmentation network the catalog team brings, as an ONNX file.

Teams with their own licence for BiRefNet, ISNet, RMBG or a U2-Net of their own point this stage at the network's
ONNX file (``model_file:``, a path relative to the recipe) or at a registered model (``model:``, a plugin's
:class:`imgx.models.ModelSpec` whose ``onnx`` file has an ``https://``/``s3://`` source and a pinned sha256; nothing is
fetched from a hub unless the registry is told where). ONNX Runtime runs it on the CPU with the worker's threads.

The conventions these families differ in are parameters, with a ``preset`` per family that sets them the way rembg's
sessions run them (every value can still be given alone and wins over the preset):

- ``input_size``: the square side the photo is resized to (Pillow bicubic), 320 for U2-Net, 1024 for the others;
- ``mean`` / ``std``: per-channel normalisation after the photo is divided by its own maximum (rembg's habit);
- ``output``: which graph output holds the mask (0: the first), its first channel taken;
- ``sigmoid``: whether that output is a logit (BiRefNet) rather than a probability.

The prediction then goes through ``segment.product``'s post-processing, unchanged: min-max normalisation, bicubic
upsampling, islands, holes, guided refinement and threshold (:func:`imgx_segment.product.mask_from_prediction`), so a
U2-Netp file run here gives ``segment.product``'s masks (tested with rembg's ``u2netp.onnx``). One default differs:
``matting`` is ``none`` here, where ``segment.product`` mattes its U2-Netp mask's edge band (closed-form, on a crop of
at most 192 px): a network that draws its own fine edge at 1024 px (BiRefNet, RMBG) would have that edge re-estimated
at a lower resolution, which is measured for U2-Netp only; ``matting: closed_form`` asks for it. Only the ``u2net``
preset is checked against a real file here; the others follow rembg's sessions and are the starting point for the
family's own file.

``tta`` and ``min_mask_confidence`` work as in ``segment.product``, through the same functions
(:func:`imgx_segment.tta.predict` and :func:`imgx_segment.tta.masks_with_confidence`) at the family's input side:
``flip`` averages the pass on the mirrored photo, ``flip_scales`` also runs both at
:func:`imgx_segment.tta.second_side` (a network exported with a fixed input size cannot: a clear error says so), and
every item gets the ``confidence`` metric (``<node>.confidence`` in the ledger, flag ``low_confidence`` below
``min_mask_confidence``). Both parameters are ``added_later``: outputs made before keep their hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from imgx import Item, Stage, StageError, StageParams, recipe_path
from imgx.runtime import onnx_run_options

from .matting import Matting
from .preprocess import network_input
from .product import LOW_CONFIDENCE, SegmentProductParams, mask_from_prediction
from .tta import masks_with_confidence, predict

__all__ = ["PRESETS", "SegmentOnnx", "SegmentOnnxParams", "onnx_input"]

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_HALF = ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
PRESETS: dict[str, dict[str, Any]] = {
    "u2net": {"input_size": 320, "mean": _IMAGENET[0], "std": _IMAGENET[1], "output": 0, "sigmoid": False},
    "isnet": {"input_size": 1024, "mean": _HALF[0], "std": _HALF[1], "output": 0, "sigmoid": False},
    "birefnet": {"input_size": 1024, "mean": _IMAGENET[0], "std": _IMAGENET[1], "output": 0, "sigmoid": True},
    "rmbg": {"input_size": 1024, "mean": _HALF[0], "std": _HALF[1], "output": 0, "sigmoid": False},
}
"""What each family's network expects, as rembg's sessions feed it (``u2net`` checked on rembg's ``u2netp.onnx``)."""


class SegmentOnnxParams(SegmentProductParams):
    """Parameters of ``segment.onnx``: the network, its conventions, and ``segment.product``'s post-processing."""

    model_file: str | None = Field(None, description="the network's ONNX file (relative to the recipe)")
    model: str | None = Field(None, description="or a registered model whose 'onnx' file to run (imgx models list)")
    sha256: str | None = Field(None, description="model_file: refuse a file whose sha256 differs (pin it)")
    preset: Literal["u2net", "isnet", "birefnet", "rmbg"] | None = Field(
        None, description="the family's conventions (input_size, mean, std, output, sigmoid); each may be overridden"
    )
    input_size: int | None = Field(None, ge=16, le=4096, description="square input side in pixels")
    mean: tuple[float, float, float] | None = Field(None, description="per-channel mean after dividing by the max")
    std: tuple[float, float, float] | None = Field(None, description="per-channel std after dividing by the max")
    output: int | None = Field(None, ge=0, description="index of the graph output that holds the mask")
    sigmoid: bool | None = Field(None, description="the output is a logit: apply a sigmoid first")
    matting: Matting = Field(
        "none",
        description="alpha matting of the mask's edge band: none (default here: the network's own edge), closed_form "
        "(segment.product's default) or knn (needs the pymatting package)",
    )

    @field_validator("model_file", mode="after")
    @classmethod
    def _resolve(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else str(recipe_path(value, info))

    @field_validator("sha256", mode="after")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower())):
            raise ValueError(f"got sha256 {value!r}; expected 64 hexadecimal digits")
        return None if value is None else value.lower()

    @model_validator(mode="after")
    def _complete(self) -> SegmentOnnxParams:
        if (self.model_file is None) == (self.model is None):
            raise ValueError("give exactly one of model_file (an ONNX file) and model (a registered model)")
        missing = [name for name in ("input_size", "mean", "std", "output", "sigmoid") if self.setting(name) is None]
        if missing:
            raise ValueError(f"no preset and no {', '.join(missing)}; set preset: u2net|isnet|birefnet|rmbg or each")
        if any(s == 0 for s in self.setting("std")):
            raise ValueError("std may not contain 0")
        return self

    @model_validator(mode="after")
    def _product_only(self) -> SegmentOnnxParams:
        """``segment.onnx`` runs ``tta`` and ``min_mask_confidence`` too: this replaces (same name) the check of
        :class:`SegmentProductParams` that refuses them in a subclass."""
        return self

    def setting(self, name: str) -> Any:
        """A convention: the value given, else the preset's."""
        value = getattr(self, name)
        if value is None and self.preset is not None:
            return PRESETS[self.preset][name]
        return value


def onnx_input(image: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(3, size, size)`` float32: ``segment.product``'s input preparation
    (:func:`imgx_segment.preprocess.network_input`) with the family's size, mean and std, channels first."""
    return np.ascontiguousarray(network_input(image, size, mean, std).transpose(2, 0, 1))


class SegmentOnnx(Stage):
    """Product mask from a team's own ONNX segmentation network into ``Item.alpha``; see :mod:`imgx_segment.custom`."""

    name: ClassVar[str] = "segment.onnx"
    Params: ClassVar[type[StageParams]] = SegmentOnnxParams
    summary: ClassVar[str] = "Mask the product with your own ONNX network (BiRefNet, ISNet, RMBG, U2-Net presets)."
    example: ClassVar[dict] = {"model": "u2netp", "preset": "u2net", "min_island": 0.05}
    version: ClassVar[str] = "1"
    batchable: ClassVar[bool] = True
    produces_alpha: ClassVar[bool] = True
    params: SegmentOnnxParams

    def __init__(self, params: StageParams | None = None, context: Any = None) -> None:
        super().__init__(params, context)
        self._session: Any = None

    @classmethod
    def models(cls, params: StageParams) -> tuple[str, ...]:
        model = getattr(params, "model", None)
        return (model,) if model else ()

    def _file(self) -> str:
        params = self.params
        if params.model is not None:
            from imgx.models import ensure_files, get_spec

            registry = self.context.require_registry(self.name)
            files = ensure_files(get_spec(params.model, registry), registry=registry)
            if "onnx" not in files:
                raise StageError(f"model {params.model!r} has no 'onnx' file (it has {', '.join(files)})")
            return str(files["onnx"])
        path = Path(str(params.model_file))
        if not path.is_file():
            raise StageError(f"segment.onnx: model_file {path} does not exist; fix the path (relative to the recipe)")
        if params.sha256 is not None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != params.sha256:
                raise StageError(f"segment.onnx: model_file {path} has sha256 {digest}, not the pinned {params.sha256}")
        return str(path)

    def _open(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            if self.context.threads:
                options.intra_op_num_threads = self.context.threads
                options.inter_op_num_threads = 1
            session = ort.InferenceSession(self._file(), options, providers=["CPUExecutionProvider"])
            graph_inputs = session.get_inputs()
            outputs = session.get_outputs()
            index = self.params.setting("output")
            if len(graph_inputs) != 1 or index >= len(outputs):
                raise StageError(
                    f"segment.onnx: the network has {len(graph_inputs)} inputs and {len(outputs)} outputs; expected "
                    f"one image input and an output number {index}"
                )
            self._session = session
        return self._session

    def _infer(self, views: list[np.ndarray]) -> list[np.ndarray]:
        """The network's mask output (its first channel, after the sigmoid where asked) of each ``(s, s, 3)`` float32
        view (:func:`imgx_segment.tta.views`), as ``(h, w)`` float32."""
        session = self._open()
        graph_input = session.get_inputs()[0]
        fixed = [d for d in graph_input.shape[-2:] if isinstance(d, int)]
        for side in sorted({view.shape[0] for view in views}):
            if fixed and any(d != side for d in fixed):
                raise StageError(
                    f"segment.onnx: the network's input is fixed at {' x '.join(map(str, graph_input.shape[-2:]))} "
                    f"but tta {self.params.tta!r} with input_size {self.params.setting('input_size')} runs it at "
                    f"{side} x {side}; use tta: flip (or none) and the input_size it was exported for, or export it "
                    "with dynamic height and width"
                )
        index = self.params.setting("output")
        out = []
        for n, view in enumerate(views, 1):  # one image a run: exported networks often have a fixed batch of 1
            chw = np.ascontiguousarray(view.transpose(2, 0, 1))[None]
            # the arena is kept between the batch's runs and given back after the last (as Backend.infer_series does)
            shrink = onnx_run_options() if n == len(views) else None
            pred = np.asarray(session.run(None, {graph_input.name: chw}, shrink)[index], np.float32)
            pred = pred.reshape(-1, *pred.shape[-2:])[0]
            if self.params.setting("sigmoid"):
                pred = 1.0 / (1.0 + np.exp(-pred))
            out.append(pred)
        return out

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        params = self.params
        mode = params.existing_alpha
        todo = [i for i, item in enumerate(batch) if item.alpha is None or mode != "keep"]
        results = list(batch)
        if not todo:
            return results
        images = [batch[i].image for i in todo]
        size, mean, std = params.setting("input_size"), params.setting("mean"), params.setting("std")
        predictions = predict(images, params.tta, self._infer, size, mean, std)
        masks = masks_with_confidence(
            images, predictions, lambda image, pred: mask_from_prediction(image, pred, params)
        )
        least = params.min_mask_confidence
        for i, (mask, confidence) in zip(todo, masks, strict=True):
            item = batch[i]
            if mode == "intersect" and item.alpha is not None:
                mask = np.minimum(mask, item.alpha)
            flags = (LOW_CONFIDENCE,) if least is not None and confidence < least else ()
            results[i] = item.replace(alpha=mask).noted(*flags, confidence=round(confidence, 4))
        return results

    def close(self) -> None:
        self._session = None
