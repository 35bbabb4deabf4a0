"""Fixtures of the runtime tests: a small real conv net of the style network's kind, real photos as tensors, and a
model registered through a real plugin with a real weights file."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from _support import real_photo

NET_SOURCE = '''
"""A small image-to-image network of the style network's kind: reflection padding before every convolution,
instance norm with a learned scale and shift, residual blocks, nearest x2 upsampling and a sigmoid. Stride 4."""

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin, cout, k, stride=1):
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride, bias=False),
                         nn.InstanceNorm2d(cout, affine=True))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = conv(c, c, 3), conv(c, c, 3)

    def forward(self, x):
        return x + self.b(F.relu(self.a(x)))


class TinyStyleNet(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.down = nn.Sequential(conv(3, width, 5), nn.ReLU(), conv(width, width, 3, 2), nn.ReLU(),
                                  conv(width, width, 3, 2), nn.ReLU())
        self.res = nn.Sequential(Residual(width), Residual(width))
        self.up1, self.up2 = conv(width, width, 3), conv(width, 4, 3)
        self.out = nn.Sequential(nn.ReflectionPad2d(2), nn.Conv2d(4, 3, 5, bias=False))

    def forward(self, x):
        x = self.res(self.down(x))
        x = F.relu(self.up1(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        x = F.relu(self.up2(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        return torch.sigmoid(self.out(x))


def trained_like(seed=0):
    """The network with seeded weights whose instance-norm scales are spread like a trained network's."""
    torch.manual_seed(seed)
    net = TinyStyleNet()
    for module in net.modules():
        if isinstance(module, nn.InstanceNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    return net.eval()
'''

PLUGIN_SOURCE = '''
"""A test plugin: the tiny network as model ``tiny-style`` with a real weights file (file:// source), and backend
``eager-static``: eager PyTorch declared as building per shape, so model stages pad its inputs to shape buckets; and
stage ``tiny.style``, which runs the network on each image."""

from pathlib import Path

import numpy as np
import torch

import imgx
from imgx.models import ModelSpec, WeightFile
from imgx.runtime import ModelStage
from imgx.runtime.eager import EagerBackend

from {net} import TinyStyleNet

WEIGHTS = Path({weights!r})


def build(paths):
    net = TinyStyleNet()
    net.load_state_dict(torch.load(paths["state"], weights_only=True))
    return net.eval()


SPEC = ModelSpec(
    name="tiny-style",
    files={{"state": WeightFile("tiny-style.pt", {sha!r}, (WEIGHTS.as_uri(),), size=WEIGHTS.stat().st_size)}},
    build=build,
    summary="A small network of the style network's kind (test plugin).",
    licence="CC0-1.0",
    stride=4,
    sides=(128, 256, 512),
)


class StaticEager(EagerBackend):
    name = "eager-static"
    dynamic_shapes = False


class TinyStyle(ModelStage):
    name = "tiny.style"
    summary = "The tiny style network on each image (test plugin)."
    model = "tiny-style"

    def __call__(self, batch, *more):
        outputs = self.infer_images([item.image.astype(np.float32) / 255 for item in batch])
        return [
            item.replace(image=np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8))
            for item, out in zip(batch, outputs, strict=True)
        ]


@imgx.hookimpl
def imgx_models():
    return [SPEC]


@imgx.hookimpl
def imgx_stages():
    return [TinyStyle]


@imgx.hookimpl
def imgx_backends():
    return [StaticEager]
'''


@pytest.fixture(scope="session")
def net_module(tmp_path_factory: pytest.TempPathFactory):
    """The importable module holding :class:`TinyStyleNet` (written to disk, imported like any plugin module)."""
    folder = tmp_path_factory.mktemp("tinynet")
    (folder / "imgx_test_tinynet.py").write_text(textwrap.dedent(NET_SOURCE))
    sys.path.insert(0, str(folder))
    import importlib

    module = importlib.import_module("imgx_test_tinynet")
    yield module
    sys.path.remove(str(folder))


@pytest.fixture
def tiny_net(net_module):
    """A fresh :class:`TinyStyleNet` in eval mode, float32, CPU."""
    return net_module.trained_like()


@pytest.fixture
def tiny_model_plugin(tmp_path: Path, net_module, monkeypatch: pytest.MonkeyPatch):
    """The registry of a run with a real plugin module (given as ``-p imgx_test_tinymodel`` would give it) that
    registers model ``tiny-style``, its weights a real file fetched into a fresh ``IMGX_HOME``."""
    import torch

    from imgx.registry import PluginConfig, load_registry

    weights = tmp_path / "weights" / "tiny-style.pt"
    weights.parent.mkdir()
    torch.save(net_module.trained_like().state_dict(), weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "imgx_test_tinymodel.py").write_text(
        textwrap.dedent(PLUGIN_SOURCE).format(net="imgx_test_tinynet", weights=str(weights), sha=sha)
    )
    monkeypatch.syspath_prepend(str(plugin_dir))
    monkeypatch.setenv("IMGX_HOME", str(tmp_path / "home"))
    sys.modules.pop("imgx_test_tinymodel", None)
    registry = load_registry(PluginConfig(modules=("imgx_test_tinymodel",)))
    assert not registry.failures, registry.failures
    yield registry
    sys.modules.pop("imgx_test_tinymodel", None)


def photo_tensor(names: tuple[str, ...], side: int = 128):
    """Real photos, each resized (long side ``side``) and centre-cropped to ``side`` x ``side``, as a ``(B, 3, side,
    side)`` float32 tensor in 0..1."""
    import torch

    arrays = []
    for name in names:
        image = real_photo(name, long_side=side * 2)
        h, w = image.shape[:2]
        top, left = (h - side) // 2, (w - side) // 2
        arrays.append(image[top : top + side, left : left + side].astype(np.float32).transpose(2, 0, 1) / 255.0)
    return torch.from_numpy(np.stack(arrays))
