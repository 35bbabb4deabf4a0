"""``load_module``: a registered name becomes the reference module, pulling its weights on first use; and
``weights_key`` for cache keys."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest

from _support import default_registry, real_photo
from imgx.errors import ModelError
from imgx.models import get_spec, load_module, models_dir, weights_key
from imgx.registry import PluginConfig, load_registry

PLUGIN = '''
"""A third-party model plugin: a small conv net whose weights sit in a file on a share."""
import torch

import imgx
from imgx.models import ModelSpec, WeightFile


def build(paths):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1), torch.nn.Sigmoid()
    )
    net.load_state_dict(torch.load(paths["weights"], weights_only=True))
    return net


@imgx.hookimpl
def imgx_models():
    weight = WeightFile("small-net.pt", "{sha256}", ("{source}",), {size})
    return [ModelSpec(name="shop-small", files={{"weights": weight}}, build=build, licence="CC0-1.0")]
'''


@pytest.fixture
def registry(tmp_path, weights):
    folder = tmp_path / "plugins"
    folder.mkdir()
    body = PLUGIN.format(sha256=weights.sha256, source=weights.path.as_uri(), size=weights.size)
    (folder / "shop_models.py").write_text(textwrap.dedent(body))
    registry = load_registry(PluginConfig(plugins_dirs=(str(folder),)))
    assert registry.failures == [] and "shop-small" in registry.models
    return registry


def test_a_registered_name_loads_the_reference_module_pulling_on_first_use(registry, weights) -> None:
    import torch

    cached = models_dir() / "shop-small" / "small-net.pt"
    assert not cached.exists()
    module = load_module("shop-small", registry=registry)
    assert cached.read_bytes() == weights.path.read_bytes()
    assert not module.training
    photo = torch.from_numpy(real_photo("coffee", 96).astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        assert torch.equal(module(photo), weights.module(photo))


def test_without_pull_a_missing_model_says_what_to_run(make_spec) -> None:
    with pytest.raises(ModelError) as info:
        load_module(make_spec("https://weights.invalid/small-net.pt"), pull=False, registry=default_registry())
    assert "run `imgx models pull small`, or place the file by hand at " in str(info.value)
    assert "not tried (pulling is off): https://weights.invalid/small-net.pt" in str(info.value)


def test_an_unknown_model_lists_the_known_ones(registry) -> None:
    with pytest.raises(ModelError, match=r"got unknown model 'shop-smal'. Did you mean 'shop-small'\?") as info:
        load_module("shop-smal", registry=registry)
    assert "(see `imgx models list`)" in str(info.value)


def test_a_build_that_fails_on_verified_files_blames_the_build(make_spec, weights) -> None:
    spec = make_spec(str(weights.path))

    def wrong_architecture(paths):
        import torch

        net = torch.nn.Conv2d(3, 3, 1)
        net.load_state_dict(torch.load(paths["weights"], weights_only=True))
        return net

    words = r"got RuntimeError: Error\(s\) in loading state_dict for Conv2d: Missing key\(s\) .* building model 'small'"
    with pytest.raises(ModelError, match=words + " from weights=") as info:
        load_module(dataclasses.replace(spec, build=wrong_architecture), registry=default_registry())
    assert "the files are verified: the plugin's build function or its dependencies are at fault" in str(info.value)
    with pytest.raises(ModelError, match=r"got dict from the build of model 'small'; expected a torch\.nn\.Module"):
        load_module(dataclasses.replace(spec, build=lambda paths: dict(paths)), registry=default_registry())


def test_weights_key_follows_the_pinned_hashes_only(make_spec, registry) -> None:
    spec = make_spec("https://a.example/small-net.pt")
    key = weights_key(spec)
    assert len(key) == 16 and int(key, 16) >= 0
    assert weights_key(make_spec("file:///elsewhere/small-net.pt", name="renamed", filename="other.pt")) == key
    assert weights_key(make_spec("https://a.example/small-net.pt", sha256="0" * 64)) != key
    assert weights_key(get_spec("shop-small", registry)) == key  # same file, same key, whoever registers it


def test_an_onnx_only_model_registers_pulls_and_is_refused_as_a_module(weights) -> None:
    """``build=None``: a model that runs only through ONNX Runtime on its original file (an OCR detector) is pinned,
    pulled and listed like any other, and asking for its PyTorch module names why there is none."""
    from imgx.models import ModelSpec, WeightFile, ensure_files

    spec = ModelSpec(
        name="onnx-only",
        files={"weights": WeightFile("small-net.pt", weights.sha256, (weights.path.as_uri(),), weights.size)},
        build=None,
    )
    assert spec.registration_problem() is None
    paths = ensure_files(spec, registry=default_registry())
    assert paths["weights"].read_bytes() == weights.path.read_bytes()
    with pytest.raises(ModelError, match="'onnx-only' has no PyTorch module"):
        load_module(spec, registry=default_registry())
