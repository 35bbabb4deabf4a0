"""A third-party model plugin, loaded the documented ways (``--plugins-dir DIR`` and ``-p module``), through the real
CLI in a subprocess: it registers a model (weights from a ``file://`` source written here, pinned by sha256) and a
``ModelStage`` using it, and ``imgx run`` writes the stage's outputs on the local executor and on Ray.

The network is a 1x1 convolution whose weights the test chooses (channels reversed, halved), so every output pixel
has a known value: ``round_half_up(0.5 * source[..., ::-1])``, within one level for float rounding.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import write_recipe
from imgx.ledger import read_ledger

PLUGIN = '''
import numpy as np
import torch

import imgx
from imgx.models import ModelSpec, WeightFile, load_state_strict
from imgx.runtime import ModelStage, to_float, to_uint8


class Swap(torch.nn.Module):
    """(B, 3, H, W) float32 -> (B, 3, H, W): a 1x1 convolution, no bias."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = torch.nn.Conv2d(3, 3, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x)


def build(paths):
    net = Swap()
    load_state_strict(net, torch.load(paths["weights"], map_location="cpu"), "swap-half")
    return net.eval()


SPEC = ModelSpec(
    name="swap-half",
    files={{"weights": WeightFile(filename="swap-half.pt", sha256="{sha}", sources=("{uri}",))}},
    build=build,
    summary="Channels reversed and halved (a test plugin's model).",
    licence="CC0-1.0",
)


class SwapParams(imgx.StageParams):
    pass


class SwapStage(ModelStage):
    name = "plug.swap"
    summary = "Run the plugin's model."
    Params = SwapParams
    model = "swap-half"

    def __call__(self, batch):
        outputs = self.infer_images([to_float(item.image) for item in batch])
        return [item.replace(image=to_uint8(out)) for item, out in zip(batch, outputs, strict=True)]


class MissingStage(SwapStage):
    name = "plug.missing"
    model = "swap-hlaf"


@imgx.hookimpl
def imgx_models():
    return [SPEC]


@imgx.hookimpl
def imgx_stages():
    return [SwapStage, MissingStage]
'''


def _weights(folder: Path) -> tuple[Path, str]:
    import torch

    mix = torch.zeros(3, 3, 1, 1)
    for out_channel in range(3):
        mix[out_channel, 2 - out_channel, 0, 0] = 0.5
    path = folder / "swap-half.pt"
    torch.save({"mix.weight": mix}, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def plugin(tmp_path: Path, request) -> tuple[list[str], dict[str, str], str]:
    """``(flags, env, module)``: the plugin written as a ``--plugins-dir`` folder or as an importable package."""
    weights, sha = _weights(tmp_path)
    source = textwrap.dedent(PLUGIN).format(sha=sha, uri=weights.as_uri())
    env = {**os.environ, "IMGX_HOME": str(tmp_path / "home"), "IMGX_DISABLE_PLUGIN_AUTOLOAD": ""}
    env.pop("IMGX_PLUGINS", None)
    if request.param == "plugins-dir":
        folder = tmp_path / "plugins"
        folder.mkdir()
        (folder / "swap_plugin.py").write_text(source)
        return ["--plugins-dir", str(folder)], env, ""
    package = tmp_path / "site" / "imgx_test_swap"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    env["PYTHONPATH"] = os.pathsep.join([str(package.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return ["-p", "imgx_test_swap"], env, str(package.parent)


def _catalog(folder: Path) -> dict[str, np.ndarray]:
    from skimage import data

    folder.mkdir(parents=True)
    photos = {"coffee": data.coffee()[::4, ::4], "astronaut": data.astronaut()[::4, ::4], "chelsea": data.chelsea()}
    for name, image in photos.items():
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{name}.png")
    return photos


def _recipe(tmp_path: Path, catalog: Path, out: Path, executor: str, **ray) -> Path:
    execution = {"executor": executor, "workers": 2, "batch_size": 2}
    if ray:
        execution["ray"] = ray
    return write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "plugin-model",
            "input": {"path": str(catalog)},
            "output": {"dir": str(out), "format": "png"},
            "execution": execution,
            "stages": [{"id": "swapped", "uses": "plug.swap"}],
        },
    )


def _imgx(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgx", *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def _expect_outputs(out: Path, photos: dict[str, np.ndarray]) -> None:
    ledger = read_ledger(out).to_pylist()
    assert sorted((row["sku"], row["status"]) for row in ledger) == sorted((sku, "ok") for sku in photos)
    for sku, photo in photos.items():
        written = np.asarray(Image.open(out / sku / "swapped.png").convert("RGB")).astype(int)
        expected = np.floor(photo[..., ::-1].astype(np.float64) * 0.5 + 0.5).astype(int)
        assert written.shape == photo.shape
        assert np.abs(written - expected).max() <= 1, sku


@pytest.mark.slow
@pytest.mark.parametrize("plugin", ["plugins-dir", "module"], indirect=True)
def test_a_model_plugin_runs_on_the_local_executor(plugin, tmp_path: Path) -> None:
    flags, env, _ = plugin
    photos = _catalog(tmp_path / "catalog")
    out = tmp_path / "out"
    recipe = _recipe(tmp_path, tmp_path / "catalog", out, "local")
    listed = _imgx("models", "list", *flags, env=env)
    assert listed.returncode == 0 and "swap-half" in listed.stdout, listed.stdout + listed.stderr
    result = _imgx("run", str(recipe), *flags, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    _expect_outputs(out, photos)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("plugin", ["plugins-dir", "module"], indirect=True)
def test_a_model_plugin_runs_on_ray(plugin, tmp_path: Path, ray_address: str) -> None:
    """Joining a running cluster: the ``-p`` package is shipped to the workers with imgx (``ship_code``), the
    ``--plugins-dir`` folder is loaded by path (this machine is the cluster)."""
    flags, env, _ = plugin
    photos = _catalog(tmp_path / "catalog")
    out = tmp_path / "out"
    runtime_env = {"ship_code": flags[0] == "-p", "env_vars": {"IMGX_HOME": env["IMGX_HOME"]}}
    recipe = _recipe(tmp_path, tmp_path / "catalog", out, "ray", address=ray_address, runtime_env=runtime_env)
    result = _imgx("run", str(recipe), *flags, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    _expect_outputs(out, photos)
    assert all(row["worker"].startswith("ray-") for row in read_ledger(out).to_pylist())


@pytest.mark.parametrize("plugin", ["plugins-dir", "module"], indirect=True)
def test_validate_names_the_line_of_an_unknown_model_and_an_unknown_backend(plugin, tmp_path: Path) -> None:
    flags, env, _ = plugin
    (tmp_path / "catalog").mkdir()
    recipe = write_recipe(
        tmp_path,
        """\
        version: 1
        name: bad
        input: {path: catalog}
        execution:
          backend: onnxruntme
        stages:
          - id: ok
            uses: plug.swap
          - id: missing
            uses: plug.missing
        """,
    )
    result = _imgx("validate", str(recipe), *flags, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    text = " ".join(result.stderr.split())
    assert f"{recipe}:5: execution.backend: got unknown backend 'onnxruntme'. Did you mean 'onnxruntime'?" in text
    assert (
        f"{recipe}:10: stages[1].uses: plug.missing: got unknown model 'swap-hlaf'. Did you mean 'swap-half'?" in text
    )
    assert _imgx("validate", str(recipe), "--set", "execution.backend=auto", *flags, env=env).returncode == 2
    fixed = recipe.read_text().replace("uses: plug.missing", "uses: plug.swap").replace("onnxruntme", "onnxruntime")
    recipe.write_text(fixed)
    assert _imgx("validate", str(recipe), *flags, env=env).returncode == 0
