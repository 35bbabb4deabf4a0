"""The same network computed with less memory traffic: :class:`FastMultiStyleNet`, built from a loaded
:class:`~imgx_style.network.MultiStyleNet` (same weights, same results up to float rounding, ~1e-6).

Three exact rewrites, each checked against the reference port and against ONNX Runtime running the original file:

- **Stride-2 convs without the padded copy.** A 3x3 stride-2 conv over an input reflect-padded by 1 never reads the
  bottom and right padding when H and W are even (always: they are multiples of 4). So it is a zero-padded conv
  (padding inside the conv kernel, no copy of the full-resolution 32-channel tensor) whose first row and first
  column are recomputed from 2-pixel-wide reflect-padded strips.
- **Nearest x2 upsampling + reflect pad 1 + 3x3 conv as one low-resolution conv.** Reflect-padding a nearest-upsampled
  image by one pixel equals upsampling its replicate-padded version, and each of the four output phases (row and
  column parity) of the 3x3 conv then reads at most 2x2 low-resolution pixels: one 3x3 conv with 4x the output
  channels at the low resolution, followed by a pixel shuffle. The upsampled tensor is never built.
- **The last 9x9 conv (4 -> 3 channels at full resolution) as a 5x5 conv on the space-to-depth input** (16 -> 12
  channels at half resolution, then a pixel shuffle): the same sums, in channel counts CPU kernels handle well.

Layouts are those of the reference: ``(B, 3, H, W)`` float32 RGB in 0..1 (H, W multiples of 4) in, the same out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .network import EPSILON, STYLE_COUNT, CondConv, MultiStyleNet

__all__ = ["FastMultiStyleNet", "space_to_depth_kernel", "upsample_conv_kernel"]

# Which 3x3 taps of the upsampled image land on which low-resolution tap, per output phase (0: even, 1: odd).
_PHASE_TAPS = torch.tensor(
    [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]],  # even rows: taps -1 | 0, +1 read rows i-1 | i
        [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],  # odd rows: taps -1, 0 | +1 read rows i | i+1
    ]
)


def upsample_conv_kernel(w: torch.Tensor) -> torch.Tensor:
    """``(O, C, 3, 3)`` -> ``(4 O, C, 3, 3)``: the kernel that, on the replicate-padded low-resolution input,
    followed by ``pixel_shuffle(2)``, equals ``conv3x3(reflect_pad1(upsample_nearest2x(x)))``."""
    o, c = w.shape[:2]
    k = torch.einsum("atu,bsv,ocuv->oabcts", _PHASE_TAPS.to(w), _PHASE_TAPS.to(w), w)
    return k.reshape(o * 4, c, 3, 3).contiguous()


def space_to_depth_kernel(w: torch.Tensor) -> torch.Tensor:
    """``(O, C, K, K)`` with odd K -> ``(4 O, 4 C, (K + 1) // 2, (K + 1) // 2)``: the kernel that, on
    ``pixel_unshuffle(x, 2)`` and followed by ``pixel_shuffle(2)``, equals ``conv(x, w)`` (x already padded)."""
    o, c, kh, kw = w.shape
    taps = (kh + 1) // 2
    k = w.new_zeros(o, 2, 2, c, 2, 2, taps, taps)
    for a in range(2):
        for p in range(2):
            for d in range(taps):
                u = 2 * d + p - a
                if not 0 <= u < kh:
                    continue
                for b in range(2):
                    for q in range(2):
                        for e in range(taps):
                            v = 2 * e + q - b
                            if 0 <= v < kw:
                                k[:, a, b, :, p, q, d, e] = w[:, :, u, v]
    return k.reshape(o * 4, c * 4, taps, taps).contiguous()


def _norm(x: torch.Tensor, layer: CondConv, style_weights: torch.Tensor) -> torch.Tensor:
    gamma, beta = style_weights @ layer.norm.gamma, style_weights @ layer.norm.beta
    return F.instance_norm(x, weight=gamma, bias=beta, eps=EPSILON)


def _replicate_pad1(x: torch.Tensor) -> torch.Tensor:
    """``F.pad(x, (1, 1, 1, 1), mode="replicate")`` by concatenation: Inductor (torch 2.13) fails to compile the
    replication-pad op in this network ("vr must not be None"); slices and concatenation compile and export alike."""
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)


def _stride2_conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``conv2d(reflect_pad1(x), w, stride=2)`` for even H and W, without padding ``x`` itself."""
    main = F.conv2d(x, w, stride=2, padding=1)
    top = F.conv2d(F.pad(x[:, :, :2, :], (1, 1, 1, 0), mode="reflect"), w, stride=2)  # (B, O, 1, W/2)
    # the left column as a row (transposed): oneDNN's AMX BF16 convolution of an input 3 pixels wide returned NaN and
    # different values per call for the same input (torch 2.13, 2026-12-06); 3 pixels high, it computes correctly
    strip = F.pad(x[:, :, :, :2], (1, 0, 1, 1), mode="reflect").transpose(2, 3)  # (B, C, 3, H + 2)
    left = F.conv2d(strip, w.transpose(2, 3), stride=2).transpose(2, 3)  # (B, O, H/2, 1)
    return torch.cat([top, torch.cat([left[:, :, 1:], main[:, :, 1:, 1:]], dim=3)], dim=2)


class FastMultiStyleNet(nn.Module):
    """:class:`MultiStyleNet` rewritten for speed; ``forward(x, style_weights)`` as the reference's."""

    stride = 4

    def __init__(self, reference: MultiStyleNet) -> None:
        super().__init__()
        self.contract = reference.contract
        self.res = reference.res
        self.expand = reference.expand
        with torch.no_grad():
            self.register_buffer("up0", upsample_conv_kernel(reference.expand[0].w.detach()))
            self.register_buffer("up1", upsample_conv_kernel(reference.expand[1].w.detach()))
            self.register_buffer("last", space_to_depth_kernel(reference.expand[2].w.detach()))
        if reference.expand[2].w.shape[0] * STYLE_COUNT != reference.expand[2].norm.gamma.numel():
            raise ValueError("got a last layer whose norm does not match its conv; expected the multistyle26 network")

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        x = self.contract[0](x, style_weights)
        for layer in self.contract[1:]:
            x = F.relu(_norm(_stride2_conv(x, layer.w), layer, style_weights))
        for block in self.res:
            x = block(x, style_weights)
        for kernel, layer in ((self.up0, self.expand[0]), (self.up1, self.expand[1])):
            x = F.pixel_shuffle(F.conv2d(_replicate_pad1(x), kernel), 2)
            x = F.relu(_norm(x, layer, style_weights))
        x = F.pixel_unshuffle(F.pad(x, (4, 4, 4, 4), mode="reflect"), 2)
        x = F.pixel_shuffle(F.conv2d(x, self.last), 2)
        return torch.sigmoid(_norm(x, self.expand[2], style_weights))
