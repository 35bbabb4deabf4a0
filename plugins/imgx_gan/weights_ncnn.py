"""Read an ncnn model (``.param`` text graph + ``.bin`` weights) into layers with numpy weights, without ncnn.

The formats, as ncnn documents and implements them (``docs/developer-guide/param-and-model-file-structure.md``,
``src/paramdict.cpp``, ``src/modelbin.cpp``):

- ``.param``: the magic ``7767517``; ``layer_count blob_count``; then one line per layer: ``type name n_in n_out``,
  the ``n_in`` input and ``n_out`` output blob names, and ``key=value`` parameters. Keys 0..19 hold an int (no ``.``
  or ``e`` in the text), a float, or (modern files) a comma-separated array; ``-233xx=n,v1,...,vn`` is the old-style
  array of key ``xx``.
- ``.bin``: the weight blobs of the layers that have any, concatenated in layer order. A blob read "with a flag" starts
  with a 4-byte little-endian tag: ``0`` float32, ``0x01306B47`` float16, ``0x000D4B38`` int8, ``0x0002C056`` float32
  (extra scaling), any other non-zero tag a quantized table (256 float32 values, then one uint8 index per weight).
  Half, int8 and index data are padded to a multiple of 4 bytes. Bias and scale blobs are raw float32 without a flag.

Which blobs a layer reads is decided by its type and parameters (``Convolution``: ``weight`` with a flag, ``bias`` if
``5=1``, ...); :data:`WEIGHTLESS` lists types that read none. Everything is checked: a malformed file raises
:class:`NcnnFormatError` naming the file and the line or layer, and the ``.bin`` must be consumed exactly.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

__all__ = [
    "MAGIC",
    "WEIGHTLESS",
    "NcnnFormatError",
    "NcnnGraph",
    "NcnnLayer",
    "ParamValue",
    "conv_kernel",
    "load_ncnn",
    "parse_param",
    "read_weights",
]

MAGIC = 7767517
MAX_PARAM_ID = 20  # ncnn's NCNN_MAX_PARAM_COUNT: keys 0..19
ARRAY_BASE = -23300  # -233xx: the old-style array of key xx

TAG_FLOAT32 = 0x00000000
TAG_FLOAT16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FLOAT32_SCALED = 0x0002C056

ParamValue = int | float | str | tuple[int, ...] | tuple[float, ...]

#: Layer types that read nothing from the ``.bin``.
WEIGHTLESS = frozenset(
    {
        "AbsVal", "BinaryOp", "BNLL", "Clip", "Concat", "Crop", "Dropout", "ELU", "Eltwise", "Exp", "Flatten",
        "GELU", "HardSigmoid", "HardSwish", "Input", "Interp", "Log", "Mish", "Noop", "Permute", "PixelShuffle",
        "Pooling", "Power", "ReLU", "Reorg", "Reshape", "Sigmoid", "Slice", "Softmax", "Split", "Squeeze", "Swish",
        "TanH", "Threshold", "UnaryOp",
    }
)  # fmt: skip

_INT = re.compile(r"[+-]?\d+")


class NcnnFormatError(ValueError):
    """A ``.param`` or ``.bin`` file that is not a well-formed ncnn model; the message names the file and where."""


@dataclasses.dataclass(frozen=True)
class NcnnLayer:
    """One layer of an ncnn graph.

    :param type: the layer type (``Convolution``).
    :param name: the layer name, unique in the graph.
    :param inputs: names of the blobs it reads.
    :param outputs: names of the blobs it writes.
    :param params: ``key -> value`` (int, float, str, or a tuple of ints or floats for arrays).
    :param line: its 1-based line number in the ``.param`` file.
    :param weights: ``role -> 1-D numpy array`` (``weight``, ``bias``, ...) in ``.bin`` order; float32 except int8
        weights, which stay int8 (with their ``weight_scales``/``input_scales``).
    """

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: Mapping[int, ParamValue]
    line: int
    weights: Mapping[str, np.ndarray] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def get(self, key: int, default: ParamValue) -> ParamValue:
        """Parameter ``key``, or ``default`` when the line omits it (as ncnn's ``ParamDict::get``)."""
        return self.params.get(key, default)

    def int(self, key: int, default: int) -> int:
        """Integer parameter ``key`` (``default`` when omitted).

        :raises NcnnFormatError: the value is not an int."""
        value = self.params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise NcnnFormatError(
                f"got {value!r} for parameter {key} of layer {self.name!r} (line {self.line}); expected an int"
            )
        return value


@dataclasses.dataclass(frozen=True)
class NcnnGraph:
    """A parsed ncnn model: layers in file order (their weights read when loaded from a ``.bin``).

    :param layers: the layers, in ``.param`` order (the order ncnn runs and reads weights in).
    :param blob_count: the blob count the ``.param`` header declares (checked against the layers).
    :param source: the ``.param`` path, for messages.
    """

    layers: tuple[NcnnLayer, ...]
    blob_count: int
    source: str = "<param>"

    def __iter__(self) -> Iterator[NcnnLayer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def of_type(self, layer_type: str) -> list[NcnnLayer]:
        """The layers of one type, in file order."""
        return [layer for layer in self.layers if layer.type == layer_type]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Output blob names of the ``Input`` layers (what ``extractor.input`` takes)."""
        return tuple(blob for layer in self.of_type("Input") for blob in layer.outputs)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Blobs that no layer reads (what ``extractor.extract`` returns)."""
        read = {blob for layer in self.layers for blob in layer.inputs}
        return tuple(blob for layer in self.layers for blob in layer.outputs if blob not in read)


def _value(text: str) -> int | float:
    """One scalar as ncnn reads it: a float when the text has a ``.`` or an ``e``/``E``, else an int."""
    if "." in text or "e" in text.lower():
        return float(text)
    if not _INT.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _array(items: list[str]) -> tuple[int, ...] | tuple[float, ...]:
    values = [_value(item) for item in items]
    if any(isinstance(v, float) for v in values):
        return tuple(float(v) for v in values)
    return tuple(int(v) for v in values)


def _parse_params(pairs: list[str], where: str) -> dict[int, ParamValue]:
    params: dict[int, ParamValue] = {}
    for pair in pairs:
        key_text, sep, text = pair.partition("=")
        if not sep or not _INT.fullmatch(key_text) or not text:
            raise NcnnFormatError(f"{where}: got {pair!r} for a parameter; expected key=value with an integer key")
        key = int(key_text)
        old_array = key <= ARRAY_BASE
        if old_array:
            key = ARRAY_BASE - key
        if not 0 <= key < MAX_PARAM_ID:
            raise NcnnFormatError(f"{where}: got key {key_text} in {pair!r}; expected 0..19 or -23300..-23319")
        if key in params:
            raise NcnnFormatError(f"{where}: got key {key_text} twice; expected each key once")
        items = text.split(",")
        try:
            if old_array:
                count = int(items[0])
                if count != len(items) - 1:
                    raise NcnnFormatError(
                        f"{where}: got {len(items) - 1} values for array {pair!r}; expected the declared {count}"
                    )
                params[key] = _array(items[1:])
            elif len(items) > 1:
                params[key] = _array(items)
            elif text[0] == '"' or (text[0].isascii() and text[0].isalpha()):
                params[key] = text.strip('"')  # a string value (modern files), as ncnn's vstr_is_string
            else:
                params[key] = _value(text)
        except NcnnFormatError:
            raise
        except ValueError as exc:
            raise NcnnFormatError(f"{where}: got {pair!r}; expected numbers (ints, or floats with '.' or 'e')") from exc
    return params


def parse_param(text: str, source: str = "<param>") -> NcnnGraph:
    """Parse the text of a ``.param`` file into layers without weights.

    :param text: the file's text.
    :param source: the file name used in messages.
    :raises NcnnFormatError: a wrong magic or header, a short or malformed layer line, a duplicate layer name or
        output blob, a blob read before any layer writes it, or counts that disagree with the header.
    """
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, fields) for number, fields in lines if fields]
    if not lines or lines[0][1] != [str(MAGIC)]:
        got = " ".join(lines[0][1]) if lines else "an empty file"
        raise NcnnFormatError(f"{source}:{lines[0][0] if lines else 1}: got {got!r}; expected the magic {MAGIC}")
    if len(lines) < 2 or len(lines[1][1]) != 2 or not all(_INT.fullmatch(f) for f in lines[1][1]):
        number, got = (lines[1][0], " ".join(lines[1][1])) if len(lines) > 1 else (lines[0][0] + 1, "nothing")
        raise NcnnFormatError(f"{source}:{number}: got {got!r}; expected 'layer_count blob_count'")
    layer_count, blob_count = (int(f) for f in lines[1][1])
    if layer_count <= 0 or blob_count <= 0:
        raise NcnnFormatError(f"{source}:{lines[1][0]}: got {layer_count} layers, {blob_count} blobs; expected > 0")
    if len(lines) - 2 != layer_count:
        raise NcnnFormatError(f"{source}: got {len(lines) - 2} layer lines; expected the declared {layer_count}")
    layers: list[NcnnLayer] = []
    names: set[str] = set()
    blobs: set[str] = set()
    for number, fields in lines[2:]:
        where = f"{source}:{number}"
        if len(fields) < 4 or not _INT.fullmatch(fields[2]) or not _INT.fullmatch(fields[3]):
            raise NcnnFormatError(f"{where}: got {' '.join(fields)!r}; expected 'type name n_in n_out blobs... k=v...'")
        layer_type, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        where = f"{source}:{number} (layer {name!r})"
        names_end = 4 + n_in + n_out
        blob_names = fields[4:names_end]
        if n_in < 0 or n_out < 0 or len(blob_names) != n_in + n_out or any("=" in b for b in blob_names):
            raise NcnnFormatError(
                f"{where}: got {len(blob_names)} blob names; expected {n_in} inputs + {n_out} outputs"
            )
        if name in names:
            raise NcnnFormatError(f"{where}: got the layer name {name!r} twice; expected unique names")
        inputs, outputs = tuple(blob_names[:n_in]), tuple(blob_names[n_in:])
        for blob in inputs:
            if blob not in blobs:
                raise NcnnFormatError(f"{where}: got input blob {blob!r} that no earlier layer writes")
        for blob in outputs:
            if blob in blobs:
                raise NcnnFormatError(f"{where}: got output blob {blob!r} that another layer writes too")
            blobs.add(blob)
        names.add(name)
        params = _parse_params(fields[names_end:], where)
        layers.append(NcnnLayer(layer_type, name, inputs, outputs, MappingProxyType(params), number))
    if len(blobs) != blob_count:
        raise NcnnFormatError(f"{source}: got {len(blobs)} distinct blobs; expected the declared {blob_count}")
    return NcnnGraph(tuple(layers), blob_count, source)


class _Reader:
    """Reads blobs from the ``.bin`` bytes as ncnn's ``ModelBinFromDataReader`` does."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = memoryview(data)
        self.offset = 0
        self.source = source

    def _take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.offset + size > len(self.data):
            raise NcnnFormatError(
                f"{self.source}: got {len(self.data) - self.offset} bytes left at offset {self.offset} for {what}; "
                f"expected {size} (the file is truncated or does not belong to this .param)"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def raw(self, count: int, what: str) -> np.ndarray:
        """``count`` float32 values without a flag (ncnn's load type 1)."""
        return np.frombuffer(self._take(4 * count, what), dtype="<f4").astype(np.float32)

    def flagged(self, count: int, what: str) -> np.ndarray:
        """``count`` weights after a 4-byte storage flag (ncnn's load type 0)."""
        tag = int.from_bytes(self._take(4, f"the storage flag of {what}"), "little")
        if tag == TAG_FLOAT16:
            data = self._take(_align4(2 * count), what)
            return np.frombuffer(data[: 2 * count], dtype="<f2").astype(np.float32)
        if tag == TAG_INT8:
            return np.frombuffer(self._take(_align4(count), what)[:count], dtype=np.int8).copy()
        if tag in (TAG_FLOAT32, TAG_FLOAT32_SCALED):  # TAG_FLOAT32 is the only all-zero flag
            return self.raw(count, what)
        # any other non-zero flag: a 256-entry float32 table, then one uint8 index per weight (as ncnn reads it)
        table = self.raw(256, f"the quantization table of {what}")
        indices = np.frombuffer(self._take(_align4(count), what)[:count], dtype=np.uint8)
        return table[indices]


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4


def _conv_blobs(layer: NcnnLayer, read: _Reader) -> dict[str, np.ndarray]:
    """Convolution / ConvolutionDepthWise / Deconvolution / DeconvolutionDepthWise / InnerProduct."""
    if layer.int(19, 0):  # dynamic weight: given as a second input blob
        return {}
    size = layer.int(6, 0)
    if size <= 0:
        raise NcnnFormatError(
            f"{read.source}: got weight_data_size 6={size} for layer {layer.name!r} (line {layer.line} of the .param); "
            "expected a positive size"
        )
    out = {"weight": read.flagged(size, f"the weight of layer {layer.name!r}")}
    num_output = layer.int(0, 0)
    if layer.int(5, 0):
        out["bias"] = read.raw(num_output, f"the bias of layer {layer.name!r}")
    int8 = layer.int(8, 0)
    if int8:
        if layer.type not in ("Convolution", "InnerProduct"):
            raise NcnnFormatError(
                f"{read.source}: got int8 scales (8={int8}) on {layer.type} layer {layer.name!r} (line {layer.line}); "
                "expected them only on Convolution or InnerProduct for this reader"
            )
        out["weight_scales"] = read.raw(num_output, f"the weight scales of layer {layer.name!r}")
        out["input_scales"] = read.raw(1, f"the input scale of layer {layer.name!r}")
        if int8 > 100:
            out["output_scales"] = read.raw(1, f"the output scale of layer {layer.name!r}")
    return out


def _batchnorm_blobs(layer: NcnnLayer, read: _Reader) -> dict[str, np.ndarray]:
    channels = layer.int(0, 0)
    return {
        role: read.raw(channels, f"the {role} of layer {layer.name!r}") for role in ("slope", "mean", "var", "bias")
    }


def _prelu_blobs(layer: NcnnLayer, read: _Reader) -> dict[str, np.ndarray]:
    return {"slope": read.raw(layer.int(0, 0), f"the slope of layer {layer.name!r}")}


_BLOB_READERS: dict[str, Callable[[NcnnLayer, _Reader], dict[str, np.ndarray]]] = {
    "Convolution": _conv_blobs,
    "ConvolutionDepthWise": _conv_blobs,
    "Deconvolution": _conv_blobs,
    "DeconvolutionDepthWise": _conv_blobs,
    "InnerProduct": _conv_blobs,
    "BatchNorm": _batchnorm_blobs,
    "PReLU": _prelu_blobs,
}


def read_weights(graph: NcnnGraph, data: bytes, source: str = "<bin>") -> NcnnGraph:
    """The graph with each layer's weights read from the ``.bin`` bytes, in layer order.

    :raises NcnnFormatError: a layer type whose weights this reader does not know, a truncated file, an unknown
        storage flag, a non-positive weight size, or bytes left over after the last layer.
    """
    read = _Reader(data, source)
    layers = []
    for layer in graph.layers:
        reader = _BLOB_READERS.get(layer.type)
        if reader is None:
            if layer.type not in WEIGHTLESS:
                known = ", ".join(sorted(_BLOB_READERS) + sorted(WEIGHTLESS))
                raise NcnnFormatError(
                    f"{graph.source}:{layer.line}: got layer type {layer.type!r} (layer {layer.name!r}) whose weights "
                    f"this reader does not know; expected one of {known}"
                )
            layers.append(layer)
            continue
        weights = reader(layer, read)
        layers.append(dataclasses.replace(layer, weights=MappingProxyType(weights)))
    if read.offset != len(read.data):
        raise NcnnFormatError(
            f"{source}: got {len(read.data) - read.offset} bytes after the last layer's weights (offset "
            f"{read.offset}); expected none (the .bin does not belong to this .param)"
        )
    return NcnnGraph(tuple(layers), graph.blob_count, graph.source)


def load_ncnn(param_path: str | Path, bin_path: str | Path) -> NcnnGraph:
    """Parse ``param_path`` and read its weights from ``bin_path``.

    :raises NcnnFormatError: either file is malformed (the message names it, and the line or layer).
    :raises OSError: a file cannot be read.
    """
    param_path, bin_path = Path(param_path), Path(bin_path)
    try:
        text = param_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NcnnFormatError(f"{param_path}: got bytes that are not UTF-8 text; expected an ncnn .param") from exc
    graph = parse_param(text, str(param_path))
    return read_weights(graph, bin_path.read_bytes(), str(bin_path))


def conv_kernel(layer: NcnnLayer) -> np.ndarray:
    """A ``Convolution`` layer's weight as an ``(out, in, kh, kw)`` float32 array (ncnn stores it in that order).

    :raises NcnnFormatError: not a float Convolution, or a weight size that does not divide into that shape.
    """
    if layer.type != "Convolution" or "weight" not in layer.weights:
        raise NcnnFormatError(f"got {layer.type} layer {layer.name!r} (line {layer.line}); expected a Convolution")
    weight = layer.weights["weight"]
    if weight.dtype != np.float32:
        raise NcnnFormatError(f"got {weight.dtype} weights in layer {layer.name!r}; expected float (not int8)")
    out, kw = layer.int(0, 0), layer.int(1, 0)
    kh = layer.int(11, kw)
    if out <= 0 or kw <= 0 or kh <= 0 or weight.size % (out * kh * kw):
        raise NcnnFormatError(
            f"got {weight.size} weights for layer {layer.name!r} (line {layer.line}); expected a multiple of "
            f"num_output {out} x kernel {kh} x {kw}"
        )
    return weight.reshape(out, weight.size // (out * kh * kw), kh, kw)
