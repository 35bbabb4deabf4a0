"""The RRDBNet port against ncnn running the original Real-ESRGAN x4plus files on real photos, its strict loader, and
the port on every CPU backend against eager."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch

from _support import default_registry, real_photo
from imgx_gan.network_rrdbnet import RRDBNet
from imgx_gan.weights import conv_plan, load_rrdbnet, rrdbnet_from_graph
from imgx_gan.weights_ncnn import NcnnFormatError, NcnnGraph, load_ncnn

TOLERANCE = 1e-3  # the bar (max abs difference, 0..1 scale); measured ~5e-6


def crop(name: str, h: int, w: int) -> np.ndarray:
    """A real photo cropped to ``(h, w, 3)`` float32 RGB 0..1 (from its 64 px long-side version)."""
    return real_photo(name, 64)[:h, :w].astype(np.float32) / 255.0


def run_port(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` float32 -> ``(3, 4h, 4w)`` float32."""
    with torch.inference_mode():
        return net(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None])[0].numpy()


@pytest.mark.parametrize(("name", "h", "w"), [("coffee", 32, 48), ("astronaut", 40, 36), ("coffee", 17, 23)])
def test_port_matches_ncnn_on_real_photos(rrdbnet, realesrgan_files, ncnn_run, name, h, w) -> None:
    image = crop(name, h, w)
    expected = ncnn_run(realesrgan_files["param"], realesrgan_files["bin"], image.transpose(2, 0, 1))
    got = run_port(rrdbnet, image)
    assert got.shape == expected.shape == (3, 4 * h, 4 * w)
    diff = np.abs(got - expected)
    assert np.isfinite(got).all() and diff.max() <= TOLERANCE, (float(diff.max()), float(diff.mean()))
    # it is an upscaler of this photo: close to a plain 4x enlargement, but not equal to it
    nearest = image.repeat(4, axis=0).repeat(4, axis=1).transpose(2, 0, 1)
    assert 0.005 < float(np.abs(got - nearest).mean()) < 0.1


def test_batches_equal_single_images(rrdbnet) -> None:
    images = [crop("coffee", 16, 16), crop("astronaut", 16, 16)]
    x = torch.stack([torch.from_numpy(np.ascontiguousarray(i.transpose(2, 0, 1))) for i in images])
    with torch.inference_mode():
        batched = rrdbnet(x)
    for row, image in enumerate(images):
        assert np.abs(batched[row].numpy() - run_port(rrdbnet, image)).max() <= 1e-5


def test_every_weight_is_used_once(rrdbnet, realesrgan_files) -> None:
    graph = load_ncnn(realesrgan_files["param"], realesrgan_files["bin"])
    read = sum(w.size for layer in graph for w in layer.weights.values())
    assert sum(p.numel() for p in rrdbnet.parameters()) == read == 16_697_987
    assert not rrdbnet.training and not any(p.requires_grad for p in rrdbnet.parameters())
    first, last = graph.of_type("Convolution")[0], graph.of_type("Convolution")[-1]
    np.testing.assert_array_equal(rrdbnet.conv_first.bias.numpy(), first.weights["bias"])
    np.testing.assert_array_equal(rrdbnet.conv_last.weight.numpy().ravel(), last.weights["weight"])
    assert [name for name, _, _ in conv_plan(RRDBNet(blocks=1))][:3] == [
        "conv_first",
        "body.0.rdb1.conv1",
        "body.0.rdb1.conv2",
    ]


def _replace_layer(graph: NcnnGraph, index: int, **changes) -> NcnnGraph:
    layers = list(graph.layers)
    layers[index] = dataclasses.replace(layers[index], **changes)
    return dataclasses.replace(graph, layers=tuple(layers))


def _conv_index(graph: NcnnGraph, nth: int) -> int:
    return [i for i, layer in enumerate(graph.layers) if layer.type == "Convolution"][nth]


def test_the_loader_is_strict(realesrgan_files, tmp_path: Path) -> None:
    graph = load_ncnn(realesrgan_files["param"], realesrgan_files["bin"])
    fewer = dataclasses.replace(graph, layers=tuple(layer for layer in graph.layers if layer.name != "Conv_4"))
    with pytest.raises(NcnnFormatError, match="got 350 Convolution layers; expected 351"):
        rrdbnet_from_graph(fewer)
    i = _conv_index(graph, 1)
    no_act = _replace_layer(graph, i, params=MappingProxyType({**graph.layers[i].params, 9: 0}))
    with pytest.raises(NcnnFormatError, match=r"layer 'Conv_1', port body\.0\.rdb1\.conv1\).*'activation': 0"):
        rrdbnet_from_graph(no_act)
    slope = _replace_layer(graph, i, params=MappingProxyType({**graph.layers[i].params, 10: (0.1,)}))
    with pytest.raises(NcnnFormatError, match=r"10=\(0\.1,\)"):
        rrdbnet_from_graph(slope)
    j = _conv_index(graph, 2)
    layer = graph.layers[j]
    short = dict(layer.weights, weight=layer.weights["weight"][: 32 * 64 * 9])  # 64 inputs where the port has 96
    with pytest.raises(NcnnFormatError, match=r"Conv_4.*got weight \(32, 64, 3, 3\).*expected \(32, 96, 3, 3\)"):
        rrdbnet_from_graph(_replace_layer(graph, j, weights=MappingProxyType(short)))
    k = next(i for i, layer in enumerate(graph.layers) if layer.type == "Eltwise")
    coeffs = _replace_layer(graph, k, params=MappingProxyType({0: 1, 1: (0.5, 1.0)}))
    with pytest.raises(NcnnFormatError, match=r"layer 'Add_16'.*expected \{0: 1, 1: \(0\.2, 1\.0\)\}"):
        rrdbnet_from_graph(coeffs)
    # files: a .bin cut short names the file; a .bin of another model does not load
    cut = tmp_path / "cut.bin"
    cut.write_bytes(Path(realesrgan_files["bin"]).read_bytes()[:1_000_000])
    with pytest.raises(NcnnFormatError, match=r"cut\.bin: got .* bytes left .* the weight of layer 'Conv_\d+'"):
        load_rrdbnet(realesrgan_files["param"], cut)


def test_the_registry_builds_the_port(rrdbnet) -> None:
    from imgx.models import get_spec, load_module

    spec = get_spec("realesrgan_x4plus", default_registry())
    assert spec.licence == "BSD-3-Clause" and spec.stride == 1 and spec.in_channels == 3
    module = load_module("realesrgan_x4plus", registry=default_registry())
    assert isinstance(module, RRDBNet)
    x = torch.from_numpy(np.ascontiguousarray(crop("astronaut", 16, 20).transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        assert torch.equal(module(x), rrdbnet(x))


@pytest.mark.slow  # exporting / compiling 351 convs: ~40 s (onnxruntime) and ~90 s (compile) on a busy 2-core box
@pytest.mark.parametrize("backend", ["compile", "onnxruntime"])
def test_the_port_runs_on_each_cpu_backend_like_eager(rrdbnet, backend, tmp_path: Path) -> None:
    from imgx.runtime import BackendOptions, create_backend
    from imgx.runtime.parity import compare

    options = BackendOptions(device="cpu", precision="fp32", cache_dir=tmp_path, model_key="rrdbnet-test")
    image = crop("coffee", 32, 32)
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        reference = rrdbnet(x)
    runner = create_backend(backend, rrdbnet, options, registry=default_registry())
    runner.load()
    runner.warmup(tuple(x.shape))
    out = runner.infer(x)
    runner.close()
    result = compare(reference, out)
    assert out.shape == reference.shape == (1, 3, 128, 128)
    assert result["nonfinite"] == 0 and result["max_abs"] <= 1e-4, result
