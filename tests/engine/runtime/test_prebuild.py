"""``imgx build``: a recipe's model stage built ahead through the real CLI (the test plugin's ``tiny.style`` stage and
``tiny-style`` network, compiled by AOTInductor at BF16), after which ``auto`` runs ``compile`` with nothing to build
and writes what eager writes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from _support import real_photo, write_recipe
from imgx.cli import app
from imgx.runtime import BackendOptions
from imgx.runtime.compile import CompileBackend, PackageCounter

pytestmark = pytest.mark.skipif(
    CompileBackend.unavailable(BackendOptions()) is not None, reason="compile cannot run here (no C++ compiler)"
)


def flat(output: str) -> str:
    """A table's text with its borders, line breaks and runs of spaces gone (cells wrap)."""
    return re.sub(r"\s+", " ", re.sub(r"[│┃]", " ", output))


def recipe(tmp_path: Path, catalog: Path, out: str, backend: str = "auto", precision: str = "bf16") -> Path:
    return write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "tiny",
            "input": {"path": str(catalog), "pattern": "*.png"},
            "output": {"dir": str(tmp_path / out), "format": "png", "naming": "{sku}.{ext}"},
            "execution": {"workers": 1, "batch_size": 2, "device": "cpu", "backend": backend, "precision": precision},
            "stages": [{"id": "styled", "uses": "tiny.style"}],
        },
        name=f"{out}.yaml",
    )


def test_build_makes_auto_run_compile_with_nothing_to_build(tiny_model_plugin, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name, side in (("astronaut", 96), ("coffee", 96), ("chelsea", 120)):  # 96x96, 64x96, 80x120
        Image.fromarray(real_photo(name, long_side=side)).save(catalog / f"{name}.png")
    runner = CliRunner()
    plugin = ["-p", "imgx_test_tinymodel"]
    auto = recipe(tmp_path, catalog, "auto")

    wide = {"COLUMNS": "400"}  # the plan's table on one line per row
    before = runner.invoke(app, ["plan", str(auto), "--no-estimate", *plugin], env=wide)
    assert before.exit_code == 0, before.output
    assert "eager bf16 on cpu" in before.output
    assert "compile would go first once built (imgx build)" in flat(before.output)

    built = runner.invoke(app, ["build", str(auto), *plugin])
    assert built.exit_code == 0, built.output
    assert "compile bf16 on cpu" in built.output and "yes" in built.output
    packages = Path(tmp_path / "home" / "engines" / "inductor")
    made = {p.name: p.stat().st_mtime_ns for p in packages.glob("*.pt2")}
    assert len(made) == 2  # the most common shape's own package and the dynamic-shape one

    after = runner.invoke(app, ["plan", str(auto), "--no-estimate", *plugin], env=wide)
    assert after.exit_code == 0, after.output
    assert "compile bf16 on cpu" in after.output
    assert "its builds for this model are in the engine cache" in flat(after.output)

    count = PackageCounter.count
    ran = runner.invoke(app, ["run", str(auto), "--no-progress", *plugin])
    assert ran.exit_code == 0, ran.output
    assert PackageCounter.count == count  # nothing built
    assert {p.name: p.stat().st_mtime_ns for p in packages.glob("*.pt2")} == made

    eager = runner.invoke(
        app, ["run", str(recipe(tmp_path, catalog, "eager", backend="eager")), "--no-progress", *plugin]
    )
    assert eager.exit_code == 0, eager.output
    for name in ("astronaut", "coffee", "chelsea"):
        got = np.asarray(Image.open(tmp_path / "auto" / f"{name}.png"), dtype=np.float32)
        want = np.asarray(Image.open(tmp_path / "eager" / f"{name}.png"), dtype=np.float32)
        source = np.asarray(Image.open(catalog / f"{name}.png"), dtype=np.float32)
        assert got.shape == want.shape == source.shape
        assert np.abs(got - want).mean() < 2.0  # BF16 kernels of two backends, 0..255
        assert np.abs(got - source).mean() > 5.0  # the network ran


def test_build_of_a_recipe_without_a_model_stage_builds_nothing(tmp_path: Path) -> None:
    from _support import basic_recipe

    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(real_photo("coffee", long_side=64)).save(catalog / "coffee.jpg")
    result = CliRunner().invoke(app, ["build", str(write_recipe(tmp_path, basic_recipe(catalog, tmp_path / "out")))])
    assert result.exit_code == 0, result.output
    assert "no model stage, nothing to build" in result.output
    assert not (tmp_path / "out").exists()


def test_build_leaves_a_stage_run_in_parts_to_autos_usual_order(tmp_path: Path) -> None:
    """gan.upscale runs Real-ESRGAN as a trunk and an upsampler: a cached build of one part would not make auto's
    choice for the stage, so ``imgx build`` of an ``auto`` recipe builds nothing for it and says why."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(real_photo("coffee", long_side=64)).save(catalog / "coffee.png")
    body = {
        "version": 1,
        "name": "parts",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(tmp_path / "out"), "format": "png"},
        "execution": {"device": "cpu", "backend": "auto", "precision": "auto"},
        "stages": [{"id": "up", "uses": "gan.upscale", "with": {"scale": 4}}],
    }
    home = tmp_path / "home"  # nothing is loaded or built, so an empty IMGX_HOME stays empty
    env = {"COLUMNS": "400", "IMGX_HOME": str(home)}
    result = CliRunner().invoke(app, ["build", str(write_recipe(tmp_path, body))], env=env)
    assert result.exit_code == 0, result.output
    assert "runs its network in parts, for which auto keeps its usual order" in result.output
    assert not home.exists() or not any(home.rglob("*"))


def test_build_of_an_auto_recipe_at_fp32_builds_nothing_auto_would_not_run(tiny_model_plugin, tmp_path: Path) -> None:
    """At FP32 ONNX Runtime stays first in auto's order even where compile's packages are cached (compile has no
    ready rank there), so building them would cost minutes for nothing: the stage starts (weights, precision) and
    ``imgx build`` says why it built nothing."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(real_photo("coffee", long_side=96)).save(catalog / "coffee.png")
    result = CliRunner().invoke(
        app,
        ["build", str(recipe(tmp_path, catalog, "fp32", precision="fp32")), "-p", "imgx_test_tinymodel"],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 0, result.output
    assert "auto runs it at fp32 on cpu, where compile does not go first even when built" in result.output
    assert not list((tmp_path / "home").rglob("*.pt2"))
