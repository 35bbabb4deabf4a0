"""Test-time augmentation (TTA) for U2-Netp and a confidence per mask, as plain functions (no torch).

TTA (``segment.product``'s ``tta``): the network runs on more than one view of each photo and the raw predictions are
averaged before the usual post-processing (min-max normalisation, upsampling, clean-ups):

- ``none``: the photo at 320 x 320 (rembg's single pass);
- ``flip``: also the horizontally mirrored network input, its prediction mirrored back (2 views);
- ``flip_scales``: ``flip`` at 320 and again at :data:`SECOND_SIDE` (384) x 384, those predictions resized to 320 with
  area averaging (4 views).

Every view of every photo of a batch goes to the network in one :meth:`imgx.runtime.ModelStage.infer_images` call, so
the backend batches them like any other inputs. Mirroring the network input is the same as preparing the mirrored
photo (Pillow's bicubic resize is mirror-symmetric, tested), so the ``flip`` view is exactly the network's pass on the
mirrored photo.

Confidence (:func:`mask_confidence`): of the pixels the network does not call background (normalised probability above
0.1), the share it calls product with certainty (above 0.9), measured on the 320 x 320 prediction (two counts: the
same cost for every photo size, and no dependence on it). A confident network paints the product near 1 and leaves a
thin anti-aliased rim; where it hesitates (a shadow, a product that merges with its background, a thin part) the
grey band grows against the product. On the ground-truth set (60 composites) it ranks masks by their true IoU with
Spearman 0.69 (one pass; 0.65 with ``flip``), against 0.61 for the share of decided pixels in the product's bounding
box grown by 10 % (:func:`decided_share`, which also counts the shape's outline) and 0.64 for the agreement of the
plain and mirrored masks (:func:`flip_agreement`, which needs ``flip``; with ``flip``, the confidence's own 0.65):
``benchmarks/results/segment-quality-vm-20261205.json``.

``segment.onnx`` (a team's own network) runs the same functions with its family's input side, mean and std: views at
its side (``flip_scales``: also at :func:`second_side`), merged at its side, the confidence measured there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import cv2
import numpy as np

from .models import INPUT_SIDE
from .preprocess import MEAN, STD, network_input, normalise_prediction

__all__ = [
    "DECIDED",
    "GROW",
    "SECOND_SIDE",
    "TTA_MODES",
    "Tta",
    "decided_share",
    "flip_agreement",
    "mask_confidence",
    "masks_with_confidence",
    "merge_views",
    "predict",
    "second_side",
    "views",
]

Tta = Literal["none", "flip", "flip_scales"]
TTA_MODES: tuple[str, ...] = ("none", "flip", "flip_scales")
SECOND_SIDE = 384  # the second input side of ``flip_scales`` (a multiple of U2-Netp's 32 px downsampling)
DECIDED = 0.1  # a normalised probability below this or above 1 - this is decided
GROW = 0.1  # the bounding box is grown by this fraction of its height / width on each side


def second_side(side: int) -> int:
    """The second input side of ``flip_scales`` for a network run at ``side``: 1.2 x ``side`` rounded to a multiple of
    32 (the usual downsampling of these networks); :data:`SECOND_SIDE` for U2-Netp's 320."""
    return max(32, round(side * 1.2 / 32) * 32)


def _sides(mode: str, side: int) -> tuple[int, ...]:
    if mode not in TTA_MODES:
        raise ValueError(f"got tta {mode!r}; expected one of {', '.join(TTA_MODES)}")
    return (side, second_side(side)) if mode == "flip_scales" else (side,)


def views(
    image: np.ndarray,
    mode: str,
    side: int = INPUT_SIDE,
    mean: np.ndarray | Sequence[float] = MEAN,
    std: np.ndarray | Sequence[float] = STD,
) -> list[np.ndarray]:
    """The network inputs of one ``(H, W, 3)`` uint8 RGB photo for a TTA ``mode``: per side (``side``, and for
    ``flip_scales`` :func:`second_side`), the plain input and (any mode but ``none``) its mirror, each
    ``(s, s, 3)`` float32 (:func:`imgx_segment.preprocess.network_input` with ``mean`` and ``std``; U2-Netp's by
    default)."""
    out = []
    for one in _sides(mode, side):
        plain = network_input(image, one, mean, std)
        out.append(plain)
        if mode != "none":
            out.append(np.ascontiguousarray(plain[:, ::-1]))
    return out


def merge_views(predictions: Sequence[np.ndarray], mode: str, side: int = INPUT_SIDE) -> np.ndarray:
    """The ``(side, side)`` float32 prediction of one photo from the network's outputs on its :func:`views` (same
    order, each ``(s, s)`` or ``(s, s, 1)``): mirrored ones mirrored back, other sides resized to ``side`` (area
    averaging), all averaged."""
    maps = []
    for index, pred in enumerate(predictions):
        pred = np.asarray(pred, np.float32).reshape(pred.shape[0], pred.shape[1])
        if mode != "none" and index % 2 == 1:
            pred = pred[:, ::-1]
        if pred.shape != (side, side):
            pred = cv2.resize(pred, (side, side), interpolation=cv2.INTER_AREA)
        maps.append(np.ascontiguousarray(pred, np.float32))
    if len(maps) == 1:
        return maps[0]
    return (np.sum(maps, axis=0, dtype=np.float32) / np.float32(len(maps))).astype(np.float32)


def predict(
    images: Sequence[np.ndarray],
    mode: str,
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    side: int = INPUT_SIDE,
    mean: np.ndarray | Sequence[float] = MEAN,
    std: np.ndarray | Sequence[float] = STD,
) -> list[np.ndarray]:
    """The merged ``(side, side)`` float32 prediction of each ``(H, W, 3)`` uint8 photo: every view of every photo in
    one ``infer`` call (``ModelStage.infer_images``, which batches them), then :func:`merge_views` per photo.
    ``side``, ``mean`` and ``std`` are the network's input conventions (U2-Netp's by default)."""
    per = [views(image, mode, side, mean, std) for image in images]
    flat = infer([view for group in per for view in group])
    out, start = [], 0
    for group in per:
        out.append(merge_views(flat[start : start + len(group)], mode, side))
        start += len(group)
    return out


def masks_with_confidence(
    images: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    to_mask: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> list[tuple[np.ndarray, float]]:
    """Per photo, its ``(H, W)`` uint8 mask ``to_mask(image, prediction)`` (``segment.product``'s post-processing)
    and :func:`mask_confidence` of its merged prediction, 0.0 where the mask is empty (no product found): the one
    place both ``segment.product`` and ``segment.onnx`` pair a mask with its confidence."""
    out = []
    for image, pred in zip(images, predictions, strict=True):
        mask = to_mask(image, pred)
        out.append((mask, mask_confidence(pred) if mask.any() else 0.0))
    return out


def mask_confidence(prediction: np.ndarray) -> float:
    """How sure the network is of its mask, 0..1: of the pixels it does not call background (normalised probability
    above :data:`DECIDED`), the share it calls product with certainty (above ``1 - DECIDED``).

    :param prediction: the raw ``(h, w)`` float32 network output (the merged TTA prediction), min-max normalised here.
    :return: 0.0 when no pixel is above :data:`DECIDED` (no product).
    """
    prob = normalise_prediction(prediction)
    some = int(np.count_nonzero(prob > DECIDED))
    if some == 0:
        return 0.0
    return float(np.count_nonzero(prob > 1.0 - DECIDED) / some)


def decided_share(prediction: np.ndarray) -> float:
    """The share of decided pixels (normalised probability below :data:`DECIDED` or above ``1 - DECIDED``) in the
    product's bounding box (probability >= 0.5) grown by :data:`GROW` of its size on each side; 0.0 without a product.
    An alternative confidence measured in the benchmark (it also counts the shape's outline, so it ranks masks less
    well than :func:`mask_confidence`)."""
    prob = normalise_prediction(prediction)
    ys, xs = np.nonzero(prob >= 0.5)
    if ys.size == 0:
        return 0.0
    h, w = prob.shape
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    dy, dx = round((y1 - y0) * GROW), round((x1 - x0) * GROW)
    box = prob[max(0, y0 - dy) : min(h, y1 + dy), max(0, x0 - dx) : min(w, x1 + dx)]
    return float(((box < DECIDED) | (box > 1.0 - DECIDED)).mean())


def flip_agreement(plain: np.ndarray, mirrored_back: np.ndarray) -> float:
    """IoU of the masks (normalised probability >= 0.5) of the plain prediction and of the mirrored view's
    prediction mirrored back; 1.0 when both are empty. The alternative confidence measured in the benchmark."""
    a, b = normalise_prediction(plain) >= 0.5, normalise_prediction(mirrored_back) >= 0.5
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
