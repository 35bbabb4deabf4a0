"""The ncnn reader: the real Real-ESRGAN files, small hand-written models in every weight storage format checked
against ncnn itself on a real photo, and malformed files (each error names the file and the line or layer)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _support import real_photo
from imgx_gan.weights_ncnn import (
    TAG_FLOAT16,
    TAG_INT8,
    NcnnFormatError,
    conv_kernel,
    load_ncnn,
    parse_param,
    read_weights,
)

RNG = np.random.default_rng(7)


def test_the_real_param_and_bin_parse_completely(realesrgan_files) -> None:
    graph = load_ncnn(realesrgan_files["param"], realesrgan_files["bin"])
    assert len(graph) == 999 and graph.blob_count == 1782
    assert graph.inputs == ("data",) and graph.outputs == ("output",)
    counts = {t: len(graph.of_type(t)) for t in ("Convolution", "Split", "Concat", "Eltwise", "Interp", "BinaryOp")}
    assert counts == {"Convolution": 351, "Split": 276, "Concat": 276, "Eltwise": 92, "Interp": 2, "BinaryOp": 1}
    first = graph.of_type("Convolution")[0]
    assert (first.name, first.line, first.inputs, first.outputs) == ("Conv_0", 4, ("data",), ("703",))
    assert conv_kernel(first).shape == (64, 3, 3, 3) and first.weights["bias"].shape == (64,)
    second = graph.of_type("Convolution")[1]
    assert second.params[9] == 2 and second.params[10] == (0.2,)  # -23310=1,2.000000e-01: the LeakyReLU slope
    assert graph.of_type("Eltwise")[0].params[1] == (0.2, 1.0)
    # the .bin holds float16 weights (flag 0x01306B47) and float32 biases, and every byte belongs to a layer
    assert Path(realesrgan_files["bin"]).read_bytes()[:4] == struct.pack("<I", TAG_FLOAT16)
    floats = sum(w.size for layer in graph for w in layer.weights.values())
    assert floats == 16_697_987
    weights = np.concatenate([layer.weights["weight"] for layer in graph.of_type("Convolution")])
    assert weights.dtype == np.float32 and np.isfinite(weights).all()
    assert 0.01 < float(np.abs(weights).mean()) < 0.5 and float(np.abs(weights).max()) < 10  # not misread bytes


# -- small models in each storage format, run by ncnn -------------------------------------------------------------

# conv_a: 3 -> 3, 1x1 (9 weights: an odd count, so half and byte storage are padded); conv_b: 3 -> 4, 3x3, LeakyReLU
PARAM = """7767517
3 3
Input            input   0 1 data
Convolution      conv_a  1 1 data mid 0=3 1=1 5=1 6=9
Convolution      conv_b  1 1 mid output 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,1.000000e-01
"""


def _flagged(values: np.ndarray, storage: str) -> tuple[bytes, np.ndarray]:
    """The bytes of a weight blob in ``storage`` and the float32 values ncnn will see."""
    if storage == "float32":
        return struct.pack("<I", 0) + values.astype("<f4").tobytes(), values.astype(np.float32)
    if storage == "float16":
        half = values.astype("<f2")
        data = half.tobytes()
        return struct.pack("<I", TAG_FLOAT16) + data + b"\0" * (-len(data) % 4), half.astype(np.float32)
    if storage == "table":  # 256 levels and one uint8 index per weight
        table = np.linspace(-0.8, 0.8, 256, dtype=np.float32)
        index = np.abs(values[:, None] - table[None]).argmin(axis=1).astype(np.uint8)
        data = index.tobytes()
        return b"\x01\x02\x03\x04" + table.astype("<f4").tobytes() + data + b"\0" * (-len(data) % 4), table[index]
    raise AssertionError(storage)


def _tiny_model(folder: Path, storage: str) -> tuple[Path, Path, dict[str, np.ndarray]]:
    wa = RNG.normal(0, 0.5, 9).astype(np.float32)
    ba = RNG.normal(0, 0.1, 3).astype(np.float32)
    wb = RNG.normal(0, 0.2, 108).astype(np.float32)
    bb = RNG.normal(0, 0.1, 4).astype(np.float32)
    blob_a, seen_a = _flagged(wa, storage)
    blob_b, seen_b = _flagged(wb, "float32")
    param, bin_ = folder / f"tiny-{storage}.param", folder / f"tiny-{storage}.bin"
    param.write_text(PARAM, encoding="utf-8")
    bin_.write_bytes(blob_a + ba.tobytes() + blob_b + bb.tobytes())
    return param, bin_, {"wa": seen_a, "ba": ba, "wb": seen_b, "bb": bb}


@pytest.mark.parametrize("storage", ["float32", "float16", "table"])
def test_each_storage_format_reads_the_weights_ncnn_computes_with(storage, tmp_path, ncnn_run) -> None:
    param, bin_, expected = _tiny_model(tmp_path, storage)
    graph = load_ncnn(param, bin_)
    conv_a, conv_b = graph.of_type("Convolution")
    np.testing.assert_array_equal(conv_a.weights["weight"], expected["wa"])
    np.testing.assert_array_equal(conv_b.weights["bias"], expected["bb"])
    image = real_photo("coffee", 40).astype(np.float32) / 255.0
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    x = torch.from_numpy(chw)[None]
    mid = F.conv2d(x, torch.from_numpy(conv_kernel(conv_a)), torch.from_numpy(conv_a.weights["bias"]))
    out = F.conv2d(mid, torch.from_numpy(conv_kernel(conv_b)), torch.from_numpy(conv_b.weights["bias"]), padding=1)
    out = F.leaky_relu(out, conv_b.params[10][0])[0].numpy()
    reference = ncnn_run(param, bin_, chw)
    assert reference.shape == out.shape == (4, *image.shape[:2])
    assert np.abs(reference - out).max() <= 1e-5, float(np.abs(reference - out).max())
    assert reference.std() > 0.05  # a real response, not zeros


def test_int8_weights_stay_int8_with_their_scales(tmp_path: Path) -> None:
    param = PARAM.replace("0=3 1=1 5=1 6=9", "0=3 1=1 5=1 6=9 8=1")
    weights = np.arange(-4, 5, dtype=np.int8)
    data = struct.pack("<I", TAG_INT8) + weights.tobytes() + b"\0" * 3  # 9 bytes padded to 12
    data += np.float32([0.1, 0.2, 0.3]).tobytes()  # bias
    data += np.float32([50.0, 60.0, 70.0]).tobytes() + np.float32([127.0]).tobytes()  # weight and input scales
    data += struct.pack("<I", 0) + np.zeros(108, np.float32).tobytes() + np.zeros(4, np.float32).tobytes()
    graph = read_weights(parse_param(param, "int8.param"), data, "int8.bin")
    layer = graph.of_type("Convolution")[0]
    assert layer.weights["weight"].dtype == np.int8 and layer.weights["weight"].tolist() == list(range(-4, 5))
    assert layer.weights["weight_scales"].tolist() == [50.0, 60.0, 70.0]
    assert layer.weights["input_scales"].tolist() == [127.0]
    with pytest.raises(NcnnFormatError, match="expected float"):
        conv_kernel(layer)


def test_param_values_follow_ncnns_rules() -> None:
    text = PARAM.replace("9=2 -23310=1,1.000000e-01", "9=2 -23310=1,1.000000e-01 11=3 13=1 12=1e0 18=-0.5 3=1,2")
    conv_b = parse_param(text).of_type("Convolution")[1]
    assert conv_b.params[10] == (0.1,) and conv_b.params[11] == 3 and isinstance(conv_b.params[11], int)
    assert conv_b.params[12] == 1.0 and isinstance(conv_b.params[12], float)  # an 'e' makes it a float
    assert conv_b.params[18] == -0.5 and conv_b.params[3] == (1, 2)  # modern array syntax
    assert conv_b.int(0, 0) == 4 and conv_b.get(15, 7) == 7


# -- malformed files ------------------------------------------------------------------------------------------------

BAD_PARAMS = [
    (lambda t: t.replace("7767517", "7767518"), r"bad\.param:1: got '7767518'; expected the magic 7767517"),
    (lambda t: t.replace("3 3\n", "3\n"), r"bad\.param:2: got '3'; expected 'layer_count blob_count'"),
    (lambda t: t.replace("3 3\n", "4 3\n"), r"got 3 layer lines; expected the declared 4"),
    (lambda t: t.replace("3 3\n", "3 5\n"), r"got 3 distinct blobs; expected the declared 5"),
    (
        lambda t: t.replace("1 1 data mid", "1 1 nowhere mid"),
        r"bad\.param:4 \(layer 'conv_a'\): got input blob 'nowhere'",
    ),
    (lambda t: t.replace("mid output", "mid mid"), r"bad\.param:5 \(layer 'conv_b'\): got output blob 'mid'"),
    (lambda t: t.replace("conv_b  1 1", "conv_a  1 1"), r"bad\.param:5 \(layer 'conv_a'\): got the layer name"),
    (lambda t: t.replace("conv_a  1 1 data mid", "conv_a  1 2 data mid"), r"bad\.param:4 .*expected 1 inputs \+ 2"),
    (lambda t: t.replace("Convolution      conv_a  1 1", "Convolution      conv_a  x 1"), r"bad\.param:4: got"),
    (lambda t: t.replace("6=9", "6=9.1.2"), r"bad\.param:4 \(layer 'conv_a'\): got '6=9\.1\.2'; expected numbers"),
    (lambda t: t.replace("6=9", "6=_9"), r"bad\.param:4 \(layer 'conv_a'\): got '6=_9'; expected numbers"),
    (lambda t: t.replace("6=9", "six=9"), r"bad\.param:4 .*got 'six=9' for a parameter"),
    (lambda t: t.replace("6=9", "6=9 6=9"), r"bad\.param:4 .*got key 6 twice"),
    (lambda t: t.replace("6=9", "6=9 25=1"), r"bad\.param:4 .*got key 25 .*expected 0\.\.19"),
    (lambda t: t.replace("-23310=1,", "-23310=2,"), r"bad\.param:5 .*got 1 values for array .*declared 2"),
    (lambda t: "", r"bad\.param:1: got 'an empty file'"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_PARAMS)
def test_a_malformed_param_names_the_file_and_line(mutate, message) -> None:
    with pytest.raises(NcnnFormatError, match=message):
        parse_param(mutate(PARAM), "bad.param")


def test_a_malformed_bin_names_the_file_and_layer(tmp_path: Path) -> None:
    param, bin_, _ = _tiny_model(tmp_path, "float16")
    data = bin_.read_bytes()
    graph = parse_param(PARAM, str(param))
    with pytest.raises(NcnnFormatError, match=r"cut\.bin: got .* bytes left .* for the bias of layer 'conv_b'"):
        read_weights(graph, data[:-8], "cut.bin")
    with pytest.raises(NcnnFormatError, match=r"long\.bin: got 4 bytes after the last layer's weights"):
        read_weights(graph, data + b"\0" * 4, "long.bin")
    with pytest.raises(NcnnFormatError, match=r"empty\.bin: .*for the storage flag of the weight of layer 'conv_a'"):
        read_weights(graph, b"", "empty.bin")
    unknown = parse_param(PARAM.replace("Convolution      conv_b", "Deformable       conv_b"), "odd.param")
    with pytest.raises(NcnnFormatError, match=r"odd\.param:5: got layer type 'Deformable' \(layer 'conv_b'\)"):
        read_weights(unknown, data, "x.bin")
    text = parse_param(PARAM.replace("6=9", "6=nine"), "text.param")  # a string value, as ncnn reads it
    assert text.of_type("Convolution")[0].params[6] == "nine"
    with pytest.raises(NcnnFormatError, match=r"got 'nine' for parameter 6 of layer 'conv_a' \(line 4\)"):
        read_weights(text, data, "x.bin")
    zero = parse_param(PARAM.replace("6=9", "6=0"), "zero.param")
    with pytest.raises(NcnnFormatError, match=r"weight_data_size 6=0 for layer 'conv_a' \(line 4"):
        read_weights(zero, data, "x.bin")
    (tmp_path / "latin.param").write_bytes(b"7767517\n\xff\xfe\n")
    with pytest.raises(NcnnFormatError, match=r"latin\.param: got bytes that are not UTF-8"):
        load_ncnn(tmp_path / "latin.param", bin_)
