"""The example third-party plugin, installed for real with pip: discovered by entry point, listed and run by the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pydantic
import pytest
from PIL import Image

import imgx
from imgx.registry import PluginConfig, load_registry
from imgx.samples import build_demo_catalog

REPO = pathlib.Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO / "plugins" / "imgx-example-plugin"
DISTRIBUTION = "imgx-example-plugin"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _forget_module() -> None:
    for name in [m for m in sys.modules if m == "imgx_example" or m.startswith("imgx_example.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@contextlib.contextmanager
def _install_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """How many pytest processes use the installed plugin, as ``[count]``, under an exclusive lock; the count is
    written back on leaving. The file sits in the folder the session's temp folders share: under pytest-xdist every
    worker shares one virtual environment, and this module's tests may be split between workers."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # popen-gw0, popen-gw1, ...: one folder per session
    with open(shared / "example-plugin.users", "a+", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        handle.seek(0)
        users = [int(handle.read() or 0)]
        yield users
        handle.seek(0)
        handle.truncate()
        handle.write(str(users[0]))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``pip install`` the plugin (non-editable, from a copy so the source tree stays clean); uninstall afterwards.

    The first process in installs, the last one out uninstalls: with the module's tests split over two xdist workers,
    one worker's uninstall once pulled the plugin from under the other's CLI tests (`imgx stages example.border`:
    unknown stage)."""
    with _install_users(tmp_path_factory) as users:
        if users[0] == 0:
            source = tmp_path_factory.mktemp("plugin-src") / PLUGIN_SOURCE.name
            shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            installed = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(source))
            assert installed.returncode == 0, f"pip install failed:\n{installed.stdout}\n{installed.stderr}"
        users[0] += 1
    _forget_module()
    try:
        yield importlib.import_module("imgx_example")
    finally:
        _forget_module()
        with _install_users(tmp_path_factory) as users:
            users[0] -= 1
            if users[0] == 0:
                removed = _pip("uninstall", "-y", DISTRIBUTION)
                importlib.invalidate_caches()
                assert removed.returncode == 0, f"pip uninstall failed:\n{removed.stdout}\n{removed.stderr}"


def make_item(height: int = 5, width: int = 7, *, alpha: bool = False, seed: int = 0) -> imgx.Item:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (height, width), dtype=np.uint8) if alpha else None
    return imgx.Item(sku="sku-1", source="sku-1.png", image=image, alpha=mask, meta={"source_size": (width, height)})


# ---------------------------------------------------------------------------------------------------------------------
# Installed for real: metadata, registry, CLI


def test_installed_from_metadata_not_from_the_source_tree(example):
    dist = importlib.metadata.distribution(DISTRIBUTION)
    entry_points = [ep for ep in dist.entry_points if ep.group == "imgx"]
    assert [(ep.name, ep.value) for ep in entry_points] == [("example", "imgx_example")]
    module_path = pathlib.Path(example.__file__).resolve()
    assert PLUGIN_SOURCE not in module_path.parents, f"imported {module_path}; expected the installed copy"


def test_registry_loads_the_stage_from_the_plugin(example):
    registry = load_registry(PluginConfig(autoload=True))
    assert registry.get_stage("example.border") is example.BorderStage
    assert DISTRIBUTION in registry.stage_plugin("example.border")
    assert not [f for f in registry.failures if "example" in f.plugin], registry.failures


def test_autoload_switch_turns_the_plugin_off(example):
    registry = load_registry(PluginConfig(autoload=False))
    assert "example.border" not in registry.stages


def _imgx(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    script = pathlib.Path(sys.executable).with_name("imgx")
    command = [str(script)] if script.exists() else [shutil.which("imgx") or "imgx"]
    env = {k: v for k, v in os.environ.items() if k != "IMGX_DISABLE_PLUGIN_AUTOLOAD"}
    env["COLUMNS"] = "200"  # wide enough that rich does not wrap the phrases the tests look for
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_cli_lists_the_stage_with_its_params(example, tmp_path):
    result = _imgx("stages", "example.border", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for words in ("example.border", "width", "color", "Border width in pixels", "#RRGGBB"):
        assert words in result.stdout, f"{words!r} missing from `imgx stages example.border`:\n{result.stdout}"


@pytest.mark.slow
def test_cli_runs_a_recipe_with_the_stage(example, tmp_path):
    catalog = build_demo_catalog(tmp_path / "catalog", synthetic=2, size=96)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            """\
            version: 1
            name: framed
            input: {path: catalog/, pattern: "**/*.jpg"}
            output: {dir: out/, format: png, naming: "{sku}/{output}.{ext}"}
            execution: {workers: 1}
            stages:
              - id: framed
                uses: example.border
                with: {width: 8, color: "#FF0000"}
            outputs: [framed]
            """
        )
    )
    result = _imgx("run", str(recipe), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("framed.png"))
    assert written == sorted(f"{c.sku}/framed.png" for c in catalog)
    for entry in catalog:
        source = np.asarray(Image.open(entry.path).convert("RGB")).astype(np.int16)
        with Image.open(tmp_path / "out" / entry.sku / "framed.png") as output:
            framed = np.asarray(output.convert("RGB")).astype(np.int16)
        w, h = entry.size
        assert framed.shape == (h + 16, w + 16, 3), entry.sku
        ring = np.ones(framed.shape[:2], bool)
        ring[8:-8, 8:-8] = False
        assert (framed[ring] == (255, 0, 0)).all(), f"{entry.sku}: the border is not solid #FF0000"
        inside = framed[8:-8, 8:-8]
        assert np.abs(inside - source).mean() < 2, f"{entry.sku}: the picture inside the border changed"


# ---------------------------------------------------------------------------------------------------------------------
# The stage and its plain function


def test_function_and_stage_give_the_same_result(example):
    for alpha in (False, True):
        item = make_item(alpha=alpha)
        stage = example.BorderStage(example.BorderParams(width=3, color="#102030"))
        [out] = stage([item])
        image, mask = example.add_border(item.image, 3, (0x10, 0x20, 0x30), item.alpha)
        np.testing.assert_array_equal(out.image, image)
        if alpha:
            np.testing.assert_array_equal(out.alpha, mask)
        else:
            assert out.alpha is None and mask is None
        assert out.sku == item.sku and out.meta == item.meta


def test_border_pixels_and_interior(example):
    item = make_item(4, 9)
    image, alpha = example.add_border(item.image, 2, (1, 2, 3))
    assert image.shape == (8, 13, 3) and image.dtype == np.uint8 and alpha is None
    np.testing.assert_array_equal(image[2:-2, 2:-2], item.image)
    ring = np.ones(image.shape[:2], bool)
    ring[2:-2, 2:-2] = False
    assert (image[ring] == (1, 2, 3)).all()


@pytest.mark.parametrize(("height", "width", "border"), [(1, 1, 1), (3, 17, 0), (31, 2, 5)])
def test_odd_sizes(example, height, width, border):
    item = make_item(height, width, alpha=True)
    image, alpha = example.add_border(item.image, border, (255, 255, 255), item.alpha)
    assert image.shape == (height + 2 * border, width + 2 * border, 3)
    assert alpha is not None and alpha.shape == image.shape[:2]
    np.testing.assert_array_equal(image[border : border + height, border : border + width], item.image)


def test_alpha_is_padded_to_match(example):
    item = make_item(alpha=True)
    [out] = example.BorderStage(example.BorderParams(width=4))([item])
    assert out.alpha.shape == out.image.shape[:2]
    np.testing.assert_array_equal(out.alpha[4:-4, 4:-4], item.alpha)
    ring = np.ones(out.alpha.shape, bool)
    ring[4:-4, 4:-4] = False
    assert (out.alpha[ring] == 255).all()


def test_transparent_border_gives_an_image_without_alpha_one(example):
    item = make_item(alpha=False)
    [out] = example.BorderStage(example.BorderParams(width=2, alpha=0))([item])
    assert out.alpha is not None
    assert (out.alpha[2:-2, 2:-2] == 255).all()
    assert out.alpha[0].max() == 0 and out.alpha[:, -1].max() == 0


def test_input_is_not_modified(example):
    item = make_item(alpha=True)
    before = item.image.copy(), item.alpha.copy()
    example.BorderStage(example.BorderParams(width=1))([item])
    np.testing.assert_array_equal(item.image, before[0])
    np.testing.assert_array_equal(item.alpha, before[1])


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"width": -1}, "width", "greater than or equal to 0"),
        ({"width": "wide"}, "width", "integer"),
        ({"color": "red"}, "color", "#RRGGBB"),
        ({"color": "#12345"}, "color", "#RRGGBB"),
        ({"colour": "#FFFFFF"}, "colour", "Extra inputs are not permitted"),
        ({"alpha": 300}, "alpha", "less than or equal to 255"),
    ],
)
def test_bad_params_are_rejected_naming_the_field(example, params, field, words):
    with pytest.raises(pydantic.ValidationError) as caught:
        example.BorderParams(**params)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]
    assert field in str(caught.value) and words in str(caught.value)


def test_bad_arrays_are_rejected(example):
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) uint8 RGB"):
        example.add_border(np.zeros((4, 4), np.uint8), 1, (0, 0, 0))
    with pytest.raises(ValueError, match="alpha"):
        example.add_border(np.zeros((4, 4, 3), np.uint8), 1, (0, 0, 0), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="width"):
        example.add_border(np.zeros((4, 4, 3), np.uint8), -2, (0, 0, 0))


def test_describe_documents_every_param(example):
    described = example.BorderStage.describe()
    assert described["name"] == "example.border" and described["summary"]
    params = {p["name"]: p for p in described["params"]}
    assert set(params) == {"width", "color", "alpha"}
    assert all(p["description"] for p in params.values())
    assert params["color"]["default"] == "#FFFFFF" and params["width"]["default"] == 16


def test_color_is_normalised(example):
    assert example.BorderParams(color="#ff00aa").color == "#FF00AA"
    assert example.parse_hex_color("#ff00aa") == (255, 0, 170)
