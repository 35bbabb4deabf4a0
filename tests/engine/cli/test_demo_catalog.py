"""``imgx demo-catalog``, ``imgx --version`` and ``imgx`` with no arguments."""

from __future__ import annotations

import imgx


def test_demo_catalog_builds_a_catalog(imgx, tmp_path):
    result = imgx("demo-catalog", tmp_path / "catalog", "--synthetic", "2", "--size", "64")
    assert result.exit_code == 0, result.output
    images = sorted(
        p for p in (tmp_path / "catalog").rglob("*") if p.suffix in {".jpg", ".png"} and "_truth" not in p.parts
    )
    assert result.stdout == f"demo catalog: {len(images)} images in {tmp_path / 'catalog'}\n"
    assert len([p for p in images if p.parent.name == "products"]) == 2
    assert (tmp_path / "catalog" / "_truth" / "catalog.json").is_file()


def test_demo_catalog_rejects_a_tiny_size(imgx, tmp_path):
    result = imgx("demo-catalog", tmp_path / "catalog", "--size", "8")
    assert result.exit_code == 2
    assert "--size" in result.stderr
    assert not (tmp_path / "catalog").exists()


def test_demo_catalog_help_names_the_extra(imgx):
    result = imgx("demo-catalog", "--help")
    assert result.exit_code == 0
    assert "pip install 'imgx[demo]'" in result.stdout


def test_version(imgx):
    result = imgx("--version")
    assert result.exit_code == 0
    assert result.stdout == f"imgx {imgx_version()}\n"


def imgx_version() -> str:
    return imgx.__version__


def test_no_arguments_shows_help_with_every_command(imgx):
    result = imgx()
    assert result.exit_code in (0, 2)  # click >= 8.2 exits 2 for no_args_is_help
    assert "Usage: imgx [OPTIONS] COMMAND" in result.output
    for command in ("run", "validate", "plan", "stages", "demo-catalog"):
        assert f"│ {command} " in result.output
