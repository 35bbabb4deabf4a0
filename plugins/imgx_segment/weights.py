"""Load :class:`~imgx_segment.network.U2NetPAll` from rembg's original ``u2netp.onnx`` (its ``Conv`` initializers).

The file's initializers carry PyTorch-export numbers for names (``1967``, ``1968``...), so they are matched by the
graph: the ``Conv`` nodes in graph order, each with its weight and bias initializer, are the port's convs in the order
it runs them. Strict: one conv per node, every initializer used, shapes and conv geometry (dilation, padding, stride,
groups) equal, and the graph's input and seven outputs as rembg reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .network import U2NetPAll

__all__ = ["INPUT_NAME", "OUTPUT_COUNT", "load_onnx_weights"]

INPUT_NAME = "input.1"
OUTPUT_COUNT = 7


def load_onnx_weights(path: str | Path) -> U2NetPAll:
    """The network with every weight taken from the ONNX file (strict: all used, shapes and geometry equal).

    :param path: a verified copy of ``u2netp.onnx``.
    :return: the module (all seven outputs) in eval mode, float32, on the CPU, without gradients.
    :raises ValueError: the file is not this network (other inputs or outputs, initializers, shapes or geometry).
    """
    import onnx
    import torch
    from onnx import helper, numpy_helper

    from .network import U2NetPAll

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = tuple(i.name for i in graph.input if i.name not in initializers)
    outputs = tuple(o.name for o in graph.output)
    if inputs != (INPUT_NAME,) or len(outputs) != OUTPUT_COUNT:
        raise ValueError(
            f"got graph inputs {inputs} and {len(outputs)} outputs in {path}; expected ({INPUT_NAME!r},) and "
            f"{OUTPUT_COUNT} outputs (rembg's u2netp.onnx)"
        )
    pairs = []
    attributes = []
    used: set[str] = set()
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        names = list(node.input[1:])
        if len(names) != 2 or not all(name in initializers for name in names):
            raise ValueError(
                f"got conv {node.name or node.output[0]} with inputs {list(node.input)}; expected "
                "data, weight and bias initializers"
            )
        pairs.append(tuple(torch.from_numpy(numpy_helper.to_array(initializers[n]).copy()) for n in names))
        attributes.append({a.name: helper.get_attribute_value(a) for a in node.attribute})
        used.update(names)
    unused = sorted(set(initializers) - used)
    if unused:
        raise ValueError(f"got initializers {unused[:5]} not used by any conv; expected only conv weights and biases")
    net = U2NetPAll()
    net.load_convs(pairs, attributes)
    return net.eval().requires_grad_(False)
