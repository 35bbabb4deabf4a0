"""The CycleGAN ResnetGenerator of vintagify 0.1.2 (``vintagify/generator.py``), as a PyTorch module that loads its
``G_A2B_epoch33.pth`` state dict strictly.

The network (layer indices are those of the original ``nn.Sequential``, so the state-dict keys match one to one):

- ``model.0-3``: reflection pad 3, conv 7x7 (3 -> 64, bias), instance norm (affine, no running statistics), ReLU.
- ``model.4-9``: twice conv 3x3 stride 2 with *zero* padding 1 (64 -> 128 -> 256, bias), instance norm, ReLU.
- ``model.10-18``: 9 residual blocks ``x + block(x)``, ``block`` = reflection pad 1, conv 3x3, instance norm, ReLU,
  reflection pad 1, conv 3x3, instance norm (indices 0..6; no activation after the sum).
- ``model.19-24``: twice conv-transpose 3x3 stride 2, padding 1, output padding 1 (256 -> 128 -> 64, bias), instance
  norm, ReLU: each doubles the size exactly.
- ``model.25-27``: reflection pad 3, conv 7x7 (64 -> 3, bias), tanh.

Instance norm is PyTorch's ``InstanceNorm2d(C, affine=True)``: per-sample, per-channel mean and biased variance over
(H, W), epsilon 1e-5, statistics always from the input (``track_running_stats=False``), then the learnt scale and
shift. :class:`ResnetGenerator` maps ``(B, 3, H, W)`` float32 RGB in -1..1 (H, W multiples of 4, each at least 4) to
``(B, 3, H, W)`` float32 in -1..1. :class:`UnitRangeGenerator` wraps it for 0..1 images, as vintagify's own
pre-processing (``Normalize(0.5, 0.5)``) and post-processing (``(y + 1) / 2``) do.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from imgx.models import load_state_strict

__all__ = ["BLOCKS", "FILTERS", "ResidualBlock", "ResnetGenerator", "UnitRangeGenerator"]

FILTERS = 64
BLOCKS = 9


def _conv_norm_relu(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.InstanceNorm2d(channels, affine=True), nn.ReLU()]


class ResidualBlock(nn.Module):
    """``x + block(x)`` with two reflection-padded 3x3 convs of ``channels``; ReLU only after the first norm.

    ``(B, C, H, W)`` float32 -> ``(B, C, H, W)`` float32 (H, W at least 2).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            *_conv_norm_relu(nn.Conv2d(channels, channels, 3), channels),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN generator: ``(B, 3, H, W)`` float32 RGB in -1..1 -> ``(B, 3, H, W)`` float32 in -1..1.

    H and W must be multiples of :attr:`stride` (4) for the output to have the input's size (the stride-2 convs round
    odd sizes up, the transposed convs double), and at least 4 (the 7x7 reflection pad needs 4 pixels).
    """

    stride = 4

    def __init__(self, in_channels: int = 3, out_channels: int = 3, filters: int = FILTERS, blocks: int = BLOCKS):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *_conv_norm_relu(nn.Conv2d(in_channels, filters, 7), filters)]
        channels = filters
        for _ in range(2):
            layers += _conv_norm_relu(nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1), channels * 2)
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(2):
            up = nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1)
            layers += _conv_norm_relu(up, channels // 2)
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(filters, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def load_weights(self, state: Mapping[str, torch.Tensor]) -> ResnetGenerator:
        """Load a state dict strictly: every key of the network present, no other key, every shape equal.

        :raises ValueError: "got missing [...] and unexpected [...] keys ...; expected ..." or "got shape ... for
            KEY; expected ..." (checked before ``load_state_dict(strict=True)``, which would say the same less
            plainly).
        """
        return load_state_strict(self, state, f"a {FILTERS}-filter, {BLOCKS}-block ResnetGenerator")


class UnitRangeGenerator(nn.Module):
    """A :class:`ResnetGenerator` for 0..1 images: ``(B, 3, H, W)`` float32 RGB in 0..1 (H, W multiples of 4) ->
    ``(B, 3, H, W)`` float32 in 0..1, i.e. ``(G(2 x - 1) + 1) / 2`` as vintagify normalises and de-normalises."""

    stride = 4

    def __init__(self, net: ResnetGenerator) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x * 2.0 - 1.0) + 1.0) * 0.5
