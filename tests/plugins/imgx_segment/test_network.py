"""The PyTorch port of U2-Netp against ONNX Runtime running the original file, on real photos; the strict loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _support import default_registry
from imgx_segment.network import U2NetP, U2NetPAll
from imgx_segment.preprocess import network_input, normalise_prediction, upsample_mask
from imgx_segment.weights import load_onnx_weights

from .conftest import rembg_input

TOLERANCE = 2e-4  # max absolute difference on the 0..1 mask


def run_port(module: torch.nn.Module, x: np.ndarray):
    with torch.inference_mode():
        return module(torch.from_numpy(x))


@pytest.mark.parametrize("name", ["coffee", "rocket", "astronaut"])
def test_all_seven_outputs_match_onnxruntime_on_real_photos(net, original, photos, name) -> None:
    expected, _ = original(photos[name])
    got = run_port(net, rembg_input(photos[name]))
    assert len(got) == len(expected) == 7
    for index, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.shape == e.shape == (1, 1, 320, 320)
        assert float(np.abs(g.numpy() - e).max()) <= TOLERANCE, (name, index)
    assert float(expected[0].max()) > 0.9 and float(expected[0].min()) < 0.01  # a real mask, not a constant


@pytest.mark.parametrize("name", ["coffee", "rocket", "astronaut"])
def test_the_mask_matches_rembgs_from_onnxruntime_within_2e4(net, original, photos, name) -> None:
    """imgx's pre-processing (float32) + the port + min-max normalisation against rembg's pipeline on the original."""
    image = photos[name]
    _, expected = original(image)
    x = network_input(image)
    assert np.abs(x.transpose(2, 0, 1)[None] - rembg_input(image)).max() <= 1e-5
    pred = run_port(U2NetP(net), np.ascontiguousarray(x.transpose(2, 0, 1)[None]))[0, 0].numpy()
    mask = normalise_prediction(pred)
    diff = np.abs(mask - expected)
    assert diff.max() <= TOLERANCE, (name, float(diff.max()), float(diff.mean()))
    # and upsampled to the image size (the same resampling applied to both)
    h, w = image.shape[:2]
    full = upsample_mask(mask, h, w)
    assert full.shape == (h, w)
    assert np.abs(full - upsample_mask(expected.astype(np.float32), h, w)).max() <= TOLERANCE


def test_batches_equal_single_images_and_the_registry_builds_the_first_output(net, photos) -> None:
    from imgx.models import load_module

    x = np.concatenate([rembg_input(photos[n]) for n in ("coffee", "rocket", "astronaut")])
    module = load_module("u2netp", registry=default_registry())
    assert isinstance(module, U2NetP) and not module.training
    batched = run_port(module, x)
    assert batched.shape == (3, 1, 320, 320)
    for i in range(3):
        single = run_port(net, x[i : i + 1])[0]
        assert (batched[i : i + 1] - single).abs().max() <= 1e-5
    assert sum(p.numel() for p in module.parameters()) == 1_125_485  # U2-Netp: 1.1M parameters


def test_the_port_runs_at_other_sizes(net) -> None:
    """The network itself takes any size (odd sizes meet ceil-mode pooling and exact-size upsampling)."""
    x = torch.rand(1, 3, 75, 101, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        outs = net(x)
    assert all(o.shape == (1, 1, 75, 101) for o in outs)
    assert all(bool(torch.isfinite(o).all()) for o in outs)


def test_the_loader_is_strict(onnx_file: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    assert not load_onnx_weights(onnx_file).training
    model = onnx.load(str(onnx_file))
    pairs = []
    init = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Conv":
            pairs.append(tuple(torch.from_numpy(numpy_helper.to_array(init[n]).copy()) for n in node.input[1:]))
    assert len(pairs) == 119 == len(list(U2NetPAll().convs()))

    with pytest.raises(ValueError, match=r"got 118 convs in the file; expected 119"):
        U2NetPAll().load_convs(pairs[:-1])
    wrong = list(pairs)
    wrong[5] = (torch.zeros(16, 16, 5, 5), pairs[5][1])
    with pytest.raises(ValueError, match=r"got weight shape \(16, 16, 5, 5\) for conv 5; expected \(16, 16, 3, 3\)"):
        U2NetPAll().load_convs(wrong)
    geometry = [{"dilations": [1, 1], "pads": [1, 1, 1, 1], "strides": [1, 1], "group": 1}] * 119
    with pytest.raises(ValueError, match=r"got conv 7 with .*'dilations': \[1, 1\].*expected .*'dilations': \[2, 2\]"):
        U2NetPAll().load_convs(pairs, geometry)  # conv 7 is RSU-7's dilated bottom conv

    # a file with one conv's dilation changed is refused; one with an extra initializer too
    changed = onnx.load(str(onnx_file))
    conv = [n for n in changed.graph.node if n.op_type == "Conv"][7]
    for attr in conv.attribute:
        if attr.name == "dilations":
            attr.CopyFrom(helper.make_attribute("dilations", [1, 1]))
    path = tmp_path / "changed.onnx"
    onnx.save(changed, str(path))
    with pytest.raises(ValueError, match="got conv 7 with"):
        load_onnx_weights(path)
    extra = onnx.load(str(onnx_file))
    extra.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "stray"))
    onnx.save(extra, str(path))
    with pytest.raises(ValueError, match=r"got initializers \['stray'\] not used by any conv"):
        load_onnx_weights(path)
    renamed = onnx.load(str(onnx_file))
    renamed.graph.output.pop()
    onnx.save(renamed, str(path))
    with pytest.raises(ValueError, match=r"and 6 outputs .*expected .* 7 outputs"):
        load_onnx_weights(path)
