"""``gan.upscale``: enlarge small supplier photos 2x, 3x or 4x with Real-ESRGAN x4plus (``realesrgan_x4plus``).

What a catalog user gets: every image whose long side is below ``only_below`` (all of them when unset) comes out
exactly ``scale`` times its size, sharper than a resize; the others pass through untouched, so "upscale, then fit to
the catalog size" works on a mixed catalog. The network always enlarges 4x; ``scale`` 2 and 3 resample its 4x result
down (Lanczos, or ``area`` averaging). The alpha matte is resized with the image.

How: each image is mirror-padded by ``pad`` px (Real-ESRGAN's own ``pre_pad``, so borders upscale like the interior)
and runs in overlapping tiles of ``tile`` input pixels blended back with linear feathering
(:func:`imgx.runtime.run_tiled`): the network's memory is bounded by the tile for any image size, and every tile has
one shape (one engine on backends that build per shape). The network runs in two parts: its trunk on the whole tile,
then (on a CPU) its 4x upsampler on strips of :data:`UPSAMPLER_ROWS` feature rows with the rows their convolutions
read (:func:`imgx.arrays.by_row_strips`), the same pixels as one call. What grows with the image is the blended
float32 output (16 bytes per output pixel), which ``max_output_megapixels`` bounds: a larger item fails alone, before
any inference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from imgx import Item, StageError, StageParams
from imgx.arrays import by_row_strips, resize_plane, to_float, to_uint8
from imgx.runtime import ModelStage, run_tiled, tile_boxes

from .models import UPSAMPLER_REACH

if TYPE_CHECKING:
    import torch

__all__ = ["NET_SCALE", "UPSAMPLER_ROWS", "Upscale", "UpscaleParams", "upscale_arrays"]

NET_SCALE = 4  # Real-ESRGAN x4plus enlarges 4x
#: Tiles per network call on a CPU. A CPU gains nothing from batching tiles (each convolution already uses every core),
#: and each tile's output is the same in a batch or alone; a batch of 4 tiles of 256 px peaked at 7.7 GB resident in
#: one worker of restore-lowres when the upsampler still ran on whole tiles. A GPU keeps batches: that is where they
#: pay.
CPU_TILES_PER_CALL = 1
#: Feature rows per call of the upsampler on a CPU. Its last three convolutions run at 4x the tile on 64 channels:
#: 256 MiB per feature map for a whole 256 px tile (ONNX Runtime peaked 1.1 GB above the process's size for one tile),
#: 32 MiB for 32 rows (0.28 GB: 2-vCPU AMD EPYC, one tile of astronaut, identical output, 8 % less time).
UPSAMPLER_ROWS = 32
GPU_TILES_PER_CALL = 16


class UpscaleParams(StageParams):
    """Parameters of ``gan.upscale``."""

    scale: Literal[2, 3, 4] = Field(4, description="output size / input size: 4 is the network's own; 2, 3 resample it")
    only_below: int | None = Field(
        None,
        ge=1,
        description="upscale only images whose long side is below this (px); others pass through; null = all",
    )
    tile: int = Field(256, ge=16, le=2048, description="tile side in input px (bounds memory; larger = fewer seams)")
    overlap: int = Field(16, ge=0, le=256, description="minimum overlap of neighbouring tiles in input px, blended")
    pad: int = Field(
        10, ge=0, le=64, description="px of mirrored context around the image so its edges upscale like its interior"
    )
    downscale: Literal["lanczos", "area"] = Field(
        "lanczos", description="how the 4x result is resampled to scale 2 or 3: 'lanczos' (sharper) or 'area' (box)"
    )
    max_output_megapixels: float = Field(
        64.0, gt=0, description="an image whose output would be larger fails alone (set only_below to skip big ones)"
    )

    @model_validator(mode="after")
    def _check_overlap(self) -> UpscaleParams:
        if self.overlap >= self.tile:
            raise ValueError(f"got overlap={self.overlap} for tile={self.tile}; expected overlap < tile")
        return self

    def wants(self, h: int, w: int) -> bool:
        """Whether an ``h x w`` image is upscaled (its long side is below ``only_below``, or that is unset)."""
        return self.only_below is None or max(h, w) < self.only_below


def upscale_arrays(
    images: Sequence[np.ndarray],
    params: UpscaleParams,
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    *,
    tiles_per_call: int = GPU_TILES_PER_CALL,
) -> list[np.ndarray]:
    """Upscale ``(H, W, 3)`` uint8 RGB arrays by ``params.scale``: the stage's work without items or ``only_below``.

    Each image is mirror-padded by ``params.pad`` px on every side first and the padding cropped from the result
    (Real-ESRGAN's own ``pre_pad``): without it the network's zero-padded convs mark the borders (a flat 1 x 1 image
    comes out as a textured 4 x 4 patch).

    :param infer: runs the 4x network on ``(h, w, 3)`` float32 0..1 tiles, returning ``(4h, 4w, 3)`` float32 arrays
        (:meth:`Upscale.infer_tiles`); all tiles of all images go through it in chunks of ``tiles_per_call``.
    :param tiles_per_call: tiles per ``infer`` call (what bounds the network's memory; the results do not depend on it).
    :return: ``(scale * H, scale * W, 3)`` uint8 RGB arrays.
    """
    if not images:
        return []
    p = params.pad
    padded = [np.pad(to_float(image), ((p, p), (p, p), (0, 0)), mode="reflect") for image in images]
    outputs = run_tiled(padded, infer, tile=params.tile, overlap=params.overlap, scale=NET_SCALE, chunk=tiles_per_call)
    results = []
    for image, out in zip(images, outputs, strict=True):
        h, w = image.shape[:2]
        out = out[NET_SCALE * p : NET_SCALE * (p + h), NET_SCALE * p : NET_SCALE * (p + w)]
        results.append(resize_plane(to_uint8(out), (params.scale * w, params.scale * h), params.downscale))
    return results


class Upscale(ModelStage):
    """Real-ESRGAN x4plus super-resolution, tiled; see :mod:`imgx_gan.upscale`."""

    name: ClassVar[str] = "gan.upscale"
    Params: ClassVar[type[StageParams]] = UpscaleParams
    summary: ClassVar[str] = "Enlarge small images 2x/3x/4x with Real-ESRGAN x4plus (tiled); alpha resized along."
    example: ClassVar[dict] = {"scale": 2, "only_below": 80}
    version: ClassVar[str] = "1"
    model: ClassVar[str] = "realesrgan_x4plus"
    multiple: ClassVar[int] = 1
    part_channels: ClassVar[dict[str, int]] = {"upsampler": 64}  # the trunk's features
    params: UpscaleParams

    def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
        """The main backend runs the trunk (features at input resolution); the upsampler is a part of its own."""
        from .network_rrdbnet import RRDBPart

        return RRDBPart(base, "features")  # type: ignore[arg-type]

    def model_key_extra(self) -> str:
        return "features"  # not the whole network's cached graph

    def parity_module(self, base: torch.nn.Module) -> torch.nn.Module:
        return base  # the 4x image, which realesrgan_x4plus's tolerance is declared for, not the trunk's features

    def build_parts(self, base: torch.nn.Module) -> dict[str, torch.nn.Module]:
        from .network_rrdbnet import RRDBPart

        return {"upsampler": RRDBPart(base, "upsample")}  # type: ignore[arg-type]

    def infer_tiles(self, tiles: list[np.ndarray]) -> list[np.ndarray]:
        """Real-ESRGAN on ``(h, w, 3)`` float32 0..1 tiles: ``(4h, 4w, 3)`` float32 each. The trunk runs through
        :meth:`infer_images`; the upsampler on strips of :data:`UPSAMPLER_ROWS` feature rows where the backend takes any
        shape on a CPU, else on each tile whole (a GPU, or a backend that builds per shape)."""
        strips = self.backend.options.device == "cpu" and type(self.parts["upsampler"]).dynamic_shapes
        return [
            by_row_strips(
                self._upsample,
                features,
                reach=UPSAMPLER_REACH,
                rows=UPSAMPLER_ROWS if strips else features.shape[0],
                scale=NET_SCALE,
            )
            for features in self.infer_images(tiles)
        ]

    def _upsample(self, features: np.ndarray) -> np.ndarray:
        """``(h, w, 64)`` float32 features -> ``(4h, 4w, 3)`` float32 through the upsampler."""
        out = self.run_part("upsampler", features.transpose(2, 0, 1)[None])
        return out[0].transpose(1, 2, 0)

    @classmethod
    def input_size(cls, params: StageParams, h: int, w: int) -> tuple[int, int]:
        """The network sees tiles of at most ``tile`` x ``tile`` input pixels of the padded image."""
        assert isinstance(params, UpscaleParams)
        return min(h + 2 * params.pad, params.tile), min(w + 2 * params.pad, params.tile)

    @classmethod
    def work(cls, params: StageParams, h: int, w: int) -> float:
        """Network pixels: the padded image's tiles (their overlaps counted twice); 0 for an image passed through."""
        assert isinstance(params, UpscaleParams)
        if not params.wants(h, w):
            return 0.0
        boxes = tile_boxes(h + 2 * params.pad, w + 2 * params.pad, params.tile, params.overlap)
        return sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) / 1e6

    def _check(self, item: Item) -> None:
        h, w = item.image.shape[:2]
        megapixels = self.params.scale**2 * h * w / 1e6
        if megapixels > self.params.max_output_megapixels:
            raise StageError(
                f"got a {w} x {h} image for item {item.sku!r} whose {self.params.scale}x output would be "
                f"{megapixels:.1f} MP; expected at most max_output_megapixels={self.params.max_output_megapixels:g} "
                "(raise it, or set only_below to pass large images through)"
            )

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        chosen = [i for i, item in enumerate(batch) if self.params.wants(*item.image.shape[:2])]
        for i in chosen:
            self._check(batch[i])  # before any inference: a too-large item fails the batch cheaply, then alone
        per_call = CPU_TILES_PER_CALL if self.context.device == "cpu" else GPU_TILES_PER_CALL
        images = upscale_arrays(
            [batch[i].image for i in chosen], self.params, self.infer_tiles, tiles_per_call=per_call
        )
        results = list(batch)
        for i, image in zip(chosen, images, strict=True):
            item = batch[i]
            alpha = (
                None if item.alpha is None else resize_plane(item.alpha, (image.shape[1], image.shape[0]), "lanczos")
            )
            results[i] = item.replace(image=image, alpha=alpha)
        return results
