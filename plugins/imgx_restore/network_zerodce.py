"""Zero-DCE (neuro-low-light 0.1.0's ``ZeroDCEPP``) as a PyTorch module, loaded strictly from the ``model_state_dict``
of the original ``best_model.pth`` training checkpoint.

The network, read from neuro-low-light's ``model.py`` and ``inference.py``:

- curve estimation (``dce_net``) at the full input resolution, no downsampling: seven conv 3x3 layers (zero padding 1,
  bias), 32 channels, ReLU after the first six: ``x1 = conv1(x)``, ``x2 = conv2(x1)``, ``x3 = conv3(x2)``,
  ``x4 = conv4(x3)``, then skip connections by concatenation ``x5 = conv5([x4, x3])``, ``x6 = conv6([x5, x2])`` and
  ``r = tanh(conv7([x6, x1]))``: 24 channels, a 3-channel curve map per iteration;
- 8 iterations of the light-enhancement curve, each clamped to 0..1: ``e = clamp(e - r_i * e * (1 - e), 0, 1)``. Note
  the sign: this checkpoint was trained with ``e - r e (1 - e)`` (the paper writes ``+``), so its curve maps are
  mostly negative where it brightens.

The input is ``(B, 3, H, W)`` float32 RGB in 0..1 (any H, W: the network is fully convolutional, receptive field 15
pixels); the output is the enhanced ``(B, 3, H, W)`` float32 in 0..1. The original then converts with
``(clip(out, 0, 1) * 255).astype(uint8)`` (truncation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ITERATIONS", "WIDTH", "CurveNet", "ZeroDCE", "apply_curves"]

WIDTH = 32
ITERATIONS = 8


class CurveNet(nn.Module):
    """``dce_net``: ``(B, 3, H, W)`` float32 RGB in 0..1 -> ``(B, 3 * iterations, H, W)`` curve maps in -1..1."""

    def __init__(self, width: int = WIDTH, iterations: int = ITERATIONS) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, width, 3, padding=1)
        self.conv4 = nn.Conv2d(width, width, 3, padding=1)
        self.conv5 = nn.Conv2d(width * 2, width, 3, padding=1)
        self.conv6 = nn.Conv2d(width * 2, width, 3, padding=1)
        self.conv7 = nn.Conv2d(width * 2, 3 * iterations, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        x5 = F.relu(self.conv5(torch.cat([x4, x3], dim=1)))
        x6 = F.relu(self.conv6(torch.cat([x5, x2], dim=1)))
        return torch.tanh(self.conv7(torch.cat([x6, x1], dim=1)))


def apply_curves(x: torch.Tensor, curves: torch.Tensor) -> torch.Tensor:
    """The iterated light-enhancement curve: ``(B, 3, H, W)`` float32 in 0..1 and ``(B, 3 * n, H, W)`` curve maps ->
    ``(B, 3, H, W)`` float32 in 0..1 (``e = clamp(e - r_i e (1 - e), 0, 1)`` for i = 0..n-1)."""
    enhanced = x
    for i in range(curves.shape[1] // 3):
        curve = curves[:, 3 * i : 3 * i + 3]
        enhanced = torch.clamp(enhanced - curve * (enhanced * (1 - enhanced)), 0, 1)
    return enhanced


class ZeroDCE(nn.Module):
    """The whole model, one input and one output: ``(B, 3, H, W)`` float32 RGB in 0..1 -> the enhanced ``(B, 3, H,
    W)`` float32 in 0..1 (the original's ``forward`` also returns the curve maps; :class:`CurveNet` gives them)."""

    def __init__(self, iterations: int = ITERATIONS) -> None:
        super().__init__()
        self.dce_net = CurveNet(iterations=iterations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_curves(x, self.dce_net(x))
