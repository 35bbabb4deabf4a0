"""The PyTorch port against ONNX Runtime running the original file, on real photos: single styles and a blend, sizes
that are not multiples of 4, batches; and the strict loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _support import default_registry
from imgx_style.network import STYLE_COUNT, BoundStyle, MultiStyleNet, one_hot
from imgx_style.ops import style_vector
from imgx_style.weights import load_onnx_weights

TOLERANCE = 2e-4  # max absolute difference, 0..1 scale

STYLES = [0, 7, 19, 25, {3: 0.5, 12: 0.5}, {1: 0.2, 9: 0.3, 22: 0.5}]


def port(net: MultiStyleNet, image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The port with the original's pre-processing: ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` float32."""
    arr = image.astype(np.float32) / 255.0
    h, w = arr.shape[:2]
    arr = np.pad(arr, ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)[None]))
    with torch.inference_mode():
        out = net(x, torch.from_numpy(weights))
    return out[0].permute(1, 2, 0).numpy()[:h, :w]


@pytest.mark.parametrize("style", STYLES, ids=str)
@pytest.mark.parametrize("name", ["coffee", "astronaut", "rocket"])
def test_port_matches_onnxruntime_on_real_photos(net, original, photos, name, style) -> None:
    image = photos[name]
    assert image.shape[0] % 4 or image.shape[1] % 4  # the padding path is exercised
    weights = style_vector(style)
    expected = original(image, weights)
    got = port(net, image, weights)
    assert got.shape == expected.shape == image.shape
    assert np.isfinite(got).all()
    diff = np.abs(got - expected)
    assert diff.max() <= TOLERANCE, (name, style, float(diff.max()), float(diff.mean()))
    assert float(np.abs(got - image / 255.0).mean()) > 0.02  # it did stylize: not the photo, not a constant
    assert got.std() > 0.05


def test_styles_differ_and_a_blend_lies_between(net, photos) -> None:
    image = photos["coffee"]
    a, b = port(net, image, style_vector(3)), port(net, image, style_vector(12))
    mixed = port(net, image, style_vector({3: 0.5, 12: 0.5}))
    assert np.abs(a - b).mean() > 0.05
    assert np.abs(mixed - a).mean() < np.abs(a - b).mean() and np.abs(mixed - b).mean() < np.abs(a - b).mean()


def test_bound_style_is_the_network_with_that_vector_and_batches_equal_singles(net, photos) -> None:
    weights = style_vector({2: 0.25, 14: 0.75})
    bound = BoundStyle(net, weights).eval()
    crops = [photos["coffee"][:200, :200], photos["astronaut"][:200, :200], photos["rocket"][:200, :200]]
    x = torch.stack([torch.from_numpy(c.transpose(2, 0, 1) / np.float32(255.0)) for c in crops])
    with torch.inference_mode():
        batched = bound(x)
        singles = torch.cat([net(x[i : i + 1], torch.from_numpy(weights)) for i in range(3)])
    assert batched.shape == (3, 3, 200, 200)
    assert (batched - singles).abs().max() <= 1e-5
    assert bound.style_weights.shape == (STYLE_COUNT,)
    with pytest.raises(ValueError, match=r"expected \(26,\)"):
        BoundStyle(net, [1.0, 0.0])


def test_the_registry_builds_the_reference_bound_to_style_0(net, photos) -> None:
    from imgx.models import load_module

    module = load_module("multistyle26", registry=default_registry())
    assert isinstance(module, BoundStyle) and torch.equal(module.style_weights, one_hot(0))
    x = torch.from_numpy(photos["astronaut"][:64, :96].transpose(2, 0, 1) / np.float32(255.0))[None]
    with torch.inference_mode():
        assert torch.equal(module(x), net(x, one_hot(0)))


def test_the_loader_is_strict(onnx_file: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    assert not load_onnx_weights(onnx_file).training
    model = onnx.load(str(onnx_file))
    tensors = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    assert len(tensors) == len(MultiStyleNet().state_dict()) == 54

    missing = dict(tensors)
    del missing["res.3.1.norm.beta"]
    with pytest.raises(ValueError, match=r"missing \['res.3.1.norm.beta'\]"):
        MultiStyleNet().load_initializers(missing)
    extra = {**tensors, "res.6.0.w": tensors["res.5.0.w"]}
    with pytest.raises(ValueError, match=r"unused \['res.6.0.w'\]"):
        MultiStyleNet().load_initializers(extra)
    wrong = {**tensors, "expand.0.w": torch.zeros(8, 32, 5, 5)}
    with pytest.raises(ValueError, match=r"got shape \(8, 32, 5, 5\) for expand.0.w; expected \(8, 32, 3, 3\)"):
        MultiStyleNet().load_initializers(wrong)

    renamed = onnx.load(str(onnx_file))
    renamed.graph.input[0].name = "photo"
    for node in renamed.graph.node:
        node.input[:] = ["photo" if i == "image" else i for i in node.input]
    path = tmp_path / "renamed.onnx"
    onnx.save(renamed, str(path))
    with pytest.raises(ValueError, match=r"expected \('image', 'style_weights'\)"):
        load_onnx_weights(path)


@pytest.mark.parametrize("style", [7, {3: 0.5, 12: 0.5}], ids=str)
def test_the_fast_form_matches_the_reference_and_onnxruntime(net, original, photos, style) -> None:
    from imgx_style.network_fast import FastMultiStyleNet

    fast = FastMultiStyleNet(net).eval()
    weights = style_vector(style)
    for name, image in photos.items():
        expected = original(image, weights)
        got = port(fast, image, weights)
        assert np.abs(got - expected).max() <= TOLERANCE, name
        assert np.abs(got - port(net, image, weights)).max() <= 1e-5, name
    x = torch.rand(3, 3, 36, 20, generator=torch.Generator().manual_seed(1))  # batch, odd multiples of 4
    with torch.inference_mode():
        assert (fast(x, torch.from_numpy(weights)) - net(x, torch.from_numpy(weights))).abs().max() <= 1e-5


def test_the_fast_kernels_are_exact_rewrites() -> None:
    import torch.nn.functional as F

    from imgx_style.network_fast import space_to_depth_kernel, upsample_conv_kernel

    gen = torch.Generator().manual_seed(2)
    x, w = torch.rand(2, 5, 12, 16, generator=gen), torch.randn(6, 5, 3, 3, generator=gen)
    expected = F.conv2d(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect"), w)
    got = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), upsample_conv_kernel(w)), 2)
    assert got.shape == expected.shape == (2, 6, 24, 32) and (got - expected).abs().max() <= 1e-5
    w9 = torch.randn(3, 4, 9, 9, generator=gen)
    padded = F.pad(torch.rand(1, 4, 20, 28, generator=gen), (4, 4, 4, 4), mode="reflect")
    got = F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(padded, 2), space_to_depth_kernel(w9)), 2)
    assert (got - F.conv2d(padded, w9)).abs().max() <= 1e-4


def test_the_fast_form_at_bf16_is_finite_repeatable_and_within_the_tolerance(net, tmp_path, monkeypatch) -> None:
    """The fast form at BF16 on this CPU, real photos of 256 and 512 px, each run twice (the check ``auto`` makes
    before it picks BF16): on a Firecracker VM with AMX BF16, its stride-2 convolution of the 3-pixel-wide left strip
    returned NaN and different values per call until the strip was turned into a row."""
    from imgx.runtime.bf16_check import bf16_check
    from imgx_style.network_fast import FastMultiStyleNet

    monkeypatch.setenv("IMGX_HOME", str(tmp_path))  # measured now, not read from a cache
    bound = BoundStyle(FastMultiStyleNet(net), style_vector(7)).eval()
    verdict = bf16_check(bound, "fast form test", default_registry().get_model("multistyle26").tolerance)
    assert verdict.ok, verdict.reason


@pytest.mark.slow
def test_the_fast_form_compiles_with_inductor(net, tmp_path) -> None:
    """The ``compile`` backend builds the fast form (the module the stage runs; on the CPU ahead of time with
    AOTInductor) and gives the eager result."""
    from imgx.runtime import BackendOptions, create_backend
    from imgx_style.network_fast import FastMultiStyleNet

    bound = BoundStyle(FastMultiStyleNet(net), style_vector({4: 0.5, 20: 0.5})).eval()
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    backend = create_backend("compile", bound, BackendOptions(cache_dir=tmp_path), default_registry())
    out = backend.infer(x)
    with torch.inference_mode():
        assert (out - bound(x)).abs().max() <= 1e-4
