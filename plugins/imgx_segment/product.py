"""``segment.product``: the product mask of each photo, from U2-Netp, written to ``Item.alpha``.

What a catalog user gets: the image unchanged and its alpha set to the mask of the salient object (255 = product), so
``segment.cutout``, ``compose.background`` or ``geometry.center`` downstream read it from ``Item.alpha``. The mask is
rembg's U2-Netp mask (320 x 320 network input, min-max normalised output, bicubic upsampling: see
:mod:`imgx_segment.preprocess`) whose edge band is re-estimated from the photo's colours by closed-form matting
(the default since version 2; ``matting: none`` keeps rembg's mask as it is), optionally cleaned up
(:mod:`imgx_segment.refine`): small islands or everything but the largest object removed, holes filled, undecided
pixels decided by GrabCut, edges snapped to the image with a guided filter, a threshold for a hard mask.

No product: a flat image (every pixel the same colour) or one where the network's peak saliency stays under
``min_confidence`` gets an empty mask (all 0) rather than min-max-amplified noise; ``segment.cutout`` then fails that
item with a clear message. An input that already has alpha follows ``existing_alpha``: ``replace`` (default: the
network's mask), ``keep`` (the item passes through untouched, no inference), ``intersect`` (the per-pixel minimum of
both, e.g. to trim an existing rough matte).

``matting`` (:mod:`imgx_segment.matting`; ``knn`` needs the optional pymatting package): ``closed_form`` or ``knn``
re-estimate alpha from the photo's colours in a band of ``matting_band`` pixels around the mask's edge (on a crop
scaled to at most 192 px), after the island and hole clean-ups and before the guided filter and threshold.

Every image, whatever its size, runs at 320 x 320: a batch of mixed sizes is one network shape (``tta:
flip_scales`` adds a 384 x 384 shape).

``tta`` (test-time augmentation, :mod:`imgx_segment.tta`): ``flip`` averages the network's prediction with its pass on
the mirrored photo, ``flip_scales`` also runs both at 384 x 384; every view goes to the backend in the same batched
call. Each item gets a ``confidence`` metric (0..1, :func:`imgx_segment.tta.mask_confidence`: of the pixels the
network does not call background, the share it calls product with certainty), recorded in the ledger as
``<node>.confidence``; with ``min_mask_confidence`` set, an item below it is flagged ``low_confidence`` (its mask is
still written). The metric changes no pixel and no hash. ``imgx plan`` counts the 320 x 320 shape only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from imgx import Item, StageParams
from imgx.arrays import to_uint8
from imgx.runtime import ModelStage

from .matting import Matting, check_available
from .models import INPUT_SIDE
from .preprocess import normalise_prediction, upsample_mask
from .refine import refine
from .tta import Tta, mask_confidence, predict

__all__ = [
    "LOW_CONFIDENCE",
    "SegmentProduct",
    "SegmentProductParams",
    "mask_from_prediction",
    "segment_arrays",
    "segment_with_confidence",
]

LOW_CONFIDENCE = "low_confidence"  # the flag of an item whose mask confidence is below ``min_mask_confidence``


class SegmentProductParams(StageParams):
    """Parameters of ``segment.product``."""

    threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="null = soft alpha (0..255); a level in (0, 1) = hard mask (0 or 255)"
    )
    min_confidence: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="peak raw saliency below which no product is found (empty mask); 0 = always normalise as rembg",
    )
    min_island: float = Field(
        0.0, ge=0.0, le=1.0, description="remove objects smaller than this fraction of the largest one (0 = keep all)"
    )
    largest_only: bool = Field(False, description="keep only the largest object")
    fill_holes: bool = Field(False, description="fill background regions enclosed by the product")
    refine_radius: int = Field(
        0, ge=0, le=64, description="guided-filter radius in pixels that snaps mask edges to the image (0 = off)"
    )
    refine_eps: float = Field(
        1e-2, gt=0.0, le=1.0, description="guided-filter regularisation (0..1 colour scale): smaller follows edges more"
    )
    existing_alpha: Literal["replace", "keep", "intersect"] = Field(
        "replace",
        description="input that already has alpha: replace it, keep it (no inference), or intersect with the new mask",
    )
    tta: Tta = Field(
        "none",
        description="test-time augmentation: none, flip (mirrored pass averaged, 2x the network work) or flip_scales "
        "(flip at 320 and 384 px, ~5x)",
    )
    min_mask_confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="flag items whose mask confidence (metric 'confidence') is below this"
    )
    matting: Matting = Field(
        "closed_form",
        description="alpha matting of the mask's edge band from the photo's colours: closed_form (default), knn "
        "(needs the pymatting package) or none (rembg's plain mask)",
    )
    matting_band: int = Field(
        3, ge=1, le=64, description="matting: half-width in pixels of the uncertain band around the mask's edge"
    )
    grabcut: int = Field(
        0,
        ge=0,
        le=10,
        description="GrabCut iterations that decide the mask's undecided pixels from the photo's colours, seeded "
        "with the network's sure product and background (0 = off)",
    )

    added_later: ClassVar[frozenset[str]] = frozenset(
        {"tta", "min_mask_confidence", "matting", "matting_band", "grabcut"}
    )  # older outputs keep their hash

    @model_validator(mode="after")
    def _matting_installed(self) -> SegmentProductParams:
        # a recipe asking for knn matting without pymatting fails when it is read, not on its first item
        try:
            check_available(self.matting)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _product_only(self) -> SegmentProductParams:
        # segment.onnx shares these parameters but runs its own network loop, without TTA or the confidence flag
        if type(self) is not SegmentProductParams and (self.tta != "none" or self.min_mask_confidence is not None):
            raise ValueError("tta and min_mask_confidence are segment.product's; segment.onnx does not run them")
        return self


def mask_from_prediction(image: np.ndarray, prediction: np.ndarray, params: SegmentProductParams) -> np.ndarray:
    """The alpha of one image from the network's output.

    :param image: ``(H, W, 3)`` uint8 RGB, the photo.
    :param prediction: ``(320, 320)`` or ``(320, 320, 1)`` float32, U2-Netp's first output (0..1).
    :return: ``(H, W)`` uint8 alpha, 255 = product; all 0 when no product is found.
    """
    h, w = image.shape[:2]
    prediction = np.asarray(prediction, np.float32).reshape(prediction.shape[0], prediction.shape[1])
    if image.min() == image.max() or float(prediction.max()) < params.min_confidence:
        return np.zeros((h, w), np.uint8)
    mask = upsample_mask(normalise_prediction(prediction), h, w)
    mask = refine(
        mask,
        image,
        min_island=params.min_island,
        largest_only=params.largest_only,
        holes=params.fill_holes,
        guided_radius=params.refine_radius,
        guided_eps=params.refine_eps,
        level=params.threshold,
        matting=params.matting,
        matting_band=params.matting_band,
        grabcut_iterations=params.grabcut,
        owned=True,  # the upsampled mask is this call's own
    )
    return to_uint8(mask)


def segment_with_confidence(
    images: Sequence[np.ndarray],
    params: SegmentProductParams,
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
) -> list[tuple[np.ndarray, float]]:
    """Mask and confidence of each ``(H, W, 3)`` uint8 RGB array; the work of the stage without the item bookkeeping.

    :param infer: runs U2-Netp on ``(side, side, 3)`` float32 network inputs, returning ``(side, side, 1)`` float32
        (``ModelStage.infer_images``); called once with every view of every image (``params.tta``).
    :return: per image, the ``(H, W)`` uint8 alpha and :func:`imgx_segment.tta.mask_confidence` (0.0 when the mask is
        empty).
    """
    if not images:
        return []
    predictions = predict(images, params.tta, infer)
    out = []
    for image, pred in zip(images, predictions, strict=True):
        mask = mask_from_prediction(image, pred, params)
        out.append((mask, mask_confidence(pred) if mask.any() else 0.0))
    return out


def segment_arrays(
    images: Sequence[np.ndarray],
    params: SegmentProductParams,
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
) -> list[np.ndarray]:
    """Masks of ``(H, W, 3)`` uint8 RGB arrays (:func:`segment_with_confidence` without the confidence).

    :return: ``(H, W)`` uint8 alphas, one per image.
    """
    return [mask for mask, _ in segment_with_confidence(images, params, infer)]


class SegmentProduct(ModelStage):
    """Product (salient object) mask by U2-Netp into ``Item.alpha``; see :mod:`imgx_segment.product`."""

    name: ClassVar[str] = "segment.product"
    Params: ClassVar[type[StageParams]] = SegmentProductParams
    summary: ClassVar[str] = "Mask the product (U2-Netp, rembg's model) into the alpha channel; the image is unchanged."
    example: ClassVar[dict] = {"min_island": 0.05, "refine_radius": 2}
    version: ClassVar[str] = "2"  # 2: closed-form matting of a 3 px band by default (1: none)
    model: ClassVar[str] = "u2netp"
    multiple: ClassVar[int] = 1
    produces_alpha: ClassVar[bool] = True  # the mask is the item's alpha: segment.cutout and compose.background read it
    params: SegmentProductParams

    @classmethod
    def input_size(cls, params: StageParams, h: int, w: int) -> tuple[int, int]:
        """Every image runs at 320 x 320."""
        return INPUT_SIDE, INPUT_SIDE

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        mode = self.params.existing_alpha
        todo = [i for i, item in enumerate(batch) if item.alpha is None or mode != "keep"]
        masks = segment_with_confidence([batch[i].image for i in todo], self.params, self.infer_images)
        results = list(batch)
        least = self.params.min_mask_confidence
        for i, (mask, confidence) in zip(todo, masks, strict=True):
            item = batch[i]
            if mode == "intersect" and item.alpha is not None:
                mask = np.minimum(mask, item.alpha)
            flags = (LOW_CONFIDENCE,) if least is not None and confidence < least else ()
            results[i] = item.replace(alpha=mask).noted(*flags, confidence=round(confidence, 4))
        return results
