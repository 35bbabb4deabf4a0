"""``restore.exposure``: Zero-DCE light-enhancement curves for underexposed shots; the ``zero_dce`` model it runs.

The network estimates per-pixel curves from the photo itself and applies them (:mod:`imgx_restore.network_zerodce`),
so dark regions are lifted more than bright ones and nothing clips. Options a catalog team needs around it:

- ``only_if_darker_than``: well-exposed shots are left alone (Zero-DCE brightens any photo: scikit-image's coffee,
  mean 0.39, comes out at 0.57); the test is the mean Rec. 601 luma on 0..1, over the opaque product when the
  item has an alpha;
- ``strength``: a blend between the photo (0) and the enhanced result (1).

Pre- and post-processing are neuro-low-light's: RGB ``/ 255`` at full resolution (it does not downsample to estimate
curves), output clipped to 0..1; the uint8 conversion rounds where the original truncates (half a level brighter on
average). Large images run in overlapping tiles (``tile``, ``overlap``; the network sees 7 pixels around each pixel),
so memory stays bounded; an image within ``tile`` runs whole, as the original does. A grayscale photo stays
grayscale. Sizes and alpha are unchanged.

The weights: ``neuro_low_light/weights/best_model.pth`` of neuro-low-light 0.1.0, registered as ``zero_dce`` in
:mod:`imgx_restore.models` (licence and source there) and loaded by :mod:`imgx_restore.weights`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, model_validator

from imgx import Item, StageParams
from imgx.arrays import check_rgb, to_float, to_uint8
from imgx.runtime import ModelStage, run_tiled

from .ops import is_gray, keep_gray, mean_luma

if TYPE_CHECKING:
    pass

__all__ = ["ExposureLearned", "ExposureLearnedParams", "enhance_arrays", "needs_light"]

DEFAULT_TILE = 512  # bounds activation memory per tile: 32..64 x 512 x 512 float32 = 32..64 MB per layer
DEFAULT_OVERLAP = 32  # the receptive field reaches 7 pixels from a tile's edge; the blend ramp spans the overlap
DEFAULT_DARKER_THAN = 0.4


class ExposureLearnedParams(StageParams):
    """Parameters of ``restore.exposure``."""

    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 = the photo unchanged, 1 = fully enhanced")
    only_if_darker_than: float | None = Field(
        DEFAULT_DARKER_THAN,
        gt=0.0,
        le=1.0,
        description="enhance only images whose mean luma (0..1, over the opaque product when there is an alpha) is "
        "below this; null = every image",
    )
    tile: int = Field(
        DEFAULT_TILE,
        ge=32,
        description="images larger than this (pixels per side) run in overlapping tiles of this size (bounded memory)",
    )
    overlap: int = Field(DEFAULT_OVERLAP, ge=0, description="overlap of neighbouring tiles in pixels (blended)")

    @model_validator(mode="after")
    def _check_overlap(self) -> ExposureLearnedParams:
        if self.overlap >= self.tile:
            raise ValueError(f"got overlap {self.overlap} for tile {self.tile}; expected overlap < tile")
        return self


def needs_light(image: np.ndarray, alpha: np.ndarray | None, darker_than: float | None) -> bool:
    """Whether an ``(H, W, 3)`` uint8 RGB image (``(H, W)`` uint8 alpha or None) is dark enough to enhance: its mean
    luma (:func:`~imgx_restore.ops.mean_luma`) is below ``darker_than``; always when ``darker_than`` is None."""
    return darker_than is None or mean_luma(image, alpha) < darker_than


def enhance_arrays(
    images: Sequence[np.ndarray],
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    *,
    strength: float = 1.0,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> list[np.ndarray]:
    """Enhance ``(H, W, 3)`` uint8 RGB arrays; the work of the stage without the items and the darkness test.

    :param infer: runs :class:`~imgx_restore.network_zerodce.ZeroDCE` on ``(h, w, 3)`` float32 arrays in 0..1, returning
        arrays of the same shapes (``ModelStage.infer_images``).
    :param strength: 0..1 blend of the photo and the enhanced result, in float before rounding; 0 returns the inputs.
    :return: ``(H, W, 3)`` uint8 RGB arrays, each the size of its input.
    :raises ValueError: an image that is not ``(H, W, 3)`` uint8, or a strength outside 0..1.
    """

    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"got strength {strength!r}; expected 0..1")
    for image in images:
        check_rgb(image, "the image of restore.exposure")
    if strength <= 0.0 or not images:
        return list(images)
    photos = [to_float(image) for image in images]
    outputs = run_tiled(photos, infer, tile=tile, overlap=overlap)
    results = []
    for image, photo, out in zip(images, photos, outputs, strict=True):
        if strength < 1.0:
            out = photo + np.float32(strength) * (out - photo)
        results.append(to_uint8(keep_gray(out) if is_gray(image) else out))
    return results


class ExposureLearned(ModelStage):
    """Zero-DCE exposure correction of dark shots; see :mod:`imgx_restore.exposure`."""

    name: ClassVar[str] = "restore.exposure"
    aliases: ClassVar[tuple[str, ...]] = ("color.exposure_learned",)  # its name before 0.2; deprecated
    Params: ClassVar[type[StageParams]] = ExposureLearnedParams
    summary: ClassVar[str] = "Brighten underexposed shots with Zero-DCE curves (skips well-exposed ones); alpha kept."
    example: ClassVar[dict] = {"strength": 0.8, "only_if_darker_than": None}
    version: ClassVar[str] = "1"
    model: ClassVar[str] = "zero_dce"
    multiple: ClassVar[int] = 1
    params: ExposureLearnedParams

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        for item in batch:
            check_rgb(item.image, f"the image of item {item.sku!r} (restore.exposure)")
        threshold = self.params.only_if_darker_than
        dark = [i for i, item in enumerate(batch) if needs_light(item.image, item.alpha, threshold)]
        images = enhance_arrays(
            [batch[i].image for i in dark],
            self.infer_images,
            strength=self.params.strength,
            tile=self.params.tile,
            overlap=self.params.overlap,
        )
        results = list(batch)
        for i, image in zip(dark, images, strict=True):
            results[i] = batch[i].replace(image=image)
        return results
