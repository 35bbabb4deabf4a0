"""``imgx plan`` on a recipe with a model stage: the backend auto picks and the shape buckets of the catalog, read
from image headers only (EXIF rotation included). Uses the real style.transfer stage; no weights are needed."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from _support import real_photo, write_recipe
from imgx.cli import app
from imgx.io.decode import decode_image, header_orientation
from imgx.runtime.shape_report import header_size


def save(path: Path, image: np.ndarray, orientation: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.fromarray(image).save(path, exif=exif)


@pytest.fixture
def mixed_catalog(tmp_path: Path) -> Path:
    """Real photos cropped to chosen sizes: (h, w) 300x400, 290x390, 700x500, 1000x800 and a 300x400 file whose EXIF
    says rotate 90 degrees (decoded 400x300)."""
    root = tmp_path / "catalog"
    photo = real_photo("astronaut", long_side=1000)  # 1000 x 1000
    for name, (h, w) in {"a": (300, 400), "b": (290, 390), "c": (700, 500), "d": (1000, 800)}.items():
        save(root / f"{name}.jpg", np.ascontiguousarray(photo[:h, :w]))
    save(root / "rotated.jpg", np.ascontiguousarray(photo[:300, :400]), orientation=6)
    return root


def test_header_size_applies_exif_rotation(mixed_catalog: Path) -> None:
    assert header_size(str(mixed_catalog / "a.jpg")) == (300, 400)
    assert header_size(str(mixed_catalog / "rotated.jpg")) == (400, 300)
    assert header_size(str(mixed_catalog / "missing.jpg")) is None
    assert header_size("https://example.com/x.jpg") is None


def png_with_exif_after_pixels(path: Path, image: np.ndarray, orientation: int) -> None:
    """A PNG whose ``eXIf`` chunk comes after the pixel data (just before ``IEND``), as some tools write it: Pillow
    only finds such a chunk by decoding the image first."""
    Image.fromarray(image).save(path, "PNG")
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data))
    raw = path.read_bytes()
    end = raw.rindex(b"IEND") - 4  # the IEND chunk starts with its length
    path.write_bytes(raw[:end] + chunk + raw[end:])


@pytest.mark.parametrize("after_pixels", [False, True])
def test_header_size_reads_a_png_orientation_without_decoding_the_pixels(
    tmp_path: Path, after_pixels: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's cost estimate reads up to 200 headers before the first item: on a PNG, Pillow's getexif decodes
    the whole image to look for an eXIf chunk (0.4 s at 4000 px). The orientation is found by walking the chunk
    headers instead, before or after the pixel data, and agrees with what decoding applies."""
    photo = np.ascontiguousarray(real_photo("astronaut", long_side=400)[:300, :400])
    path = tmp_path / "rotated.png"
    if after_pixels:
        png_with_exif_after_pixels(path, photo, 6)
    else:
        save(path, photo, orientation=6)
    with Image.open(path) as image:
        assert header_orientation(image) == 6
        assert image.tile, "the pixels were decoded"  # Pillow empties tile when it loads the image
    loads = []
    real_load = PngImagePlugin.PngImageFile.load
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: loads.append(self) or real_load(self))
    assert header_size(str(path)) == (400, 300)
    assert loads == [], "header_size decoded the PNG"
    monkeypatch.undo()
    decoded = decode_image(path.read_bytes(), sku="rotated", source=str(path))
    assert decoded.image.shape[:2] == (400, 300) and decoded.meta["orientation"] == 6
    plain = tmp_path / "plain.png"
    save(plain, photo)
    assert header_size(str(plain)) == (300, 400)


def style_recipe(tmp_path: Path, catalog: Path, backend: str) -> Path:
    return write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "style-plan",
            "input": {"path": str(catalog)},
            "output": {"dir": str(tmp_path / "out")},
            "execution": {"device": "cpu", "backend": backend, "precision": "fp32"},
            "stages": [{"id": "s7", "uses": "style.transfer", "with": {"style": 7, "max_side": 768}}],
        },
    )


def test_plan_shows_the_buckets_of_a_backend_that_builds_per_shape(
    mixed_catalog: Path, tmp_path: Path, monkeypatch, tiny_model_plugin
) -> None:
    """A plugin backend that builds per shape (``eager-static`` from the test plugin) gets the catalog's buckets."""
    monkeypatch.setenv("COLUMNS", "250")
    recipe = style_recipe(tmp_path, mixed_catalog, "eager-static")
    result = CliRunner().invoke(app, ["plan", str(recipe), "-p", "imgx_test_tinymodel"])
    assert result.exit_code == 0, result.output
    # sides 256/512/768/1024..., stride 4, short side in quarter steps; d (1000x800) is stylized at 768x614
    assert "384x512: 2, 768x576: 1, 768x768: 1, 512x384: 1" in result.output
    assert "eager-static fp32 on cpu" in result.output and "eager-static (requested)" in result.output
    assert "shapes from the headers of 5 image(s)" in result.output
    assert not (tmp_path / "out").exists()


def test_plan_shows_exact_shapes_for_compile_on_the_cpu(mixed_catalog: Path, tmp_path: Path, monkeypatch) -> None:
    """``compile`` on the CPU runs each image at its own size (a package for the first shape, one dynamic-shape
    package for the rest), so the plan shows no buckets."""
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(app, ["plan", str(style_recipe(tmp_path, mixed_catalog, "compile"))])
    assert result.exit_code == 0, result.output
    assert "compile fp32 on cpu" in result.output and "compile (requested)" in result.output
    assert "any size, padded to the stride (5 shapes): " in result.output and "768x616: 1" in result.output


def test_plan_shows_auto_and_exact_shapes_on_a_dynamic_shape_backend(
    mixed_catalog: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(app, ["plan", str(style_recipe(tmp_path, mixed_catalog, "auto"))])
    assert result.exit_code == 0, result.output
    assert "onnxruntime fp32 on cpu" in result.output and "auto: onnxruntime" in result.output
    # each size rounded up to a multiple of 4; d (1000x800) at 768x614 -> 768x616; rotated 400x300
    assert "any size, padded to the stride (5 shapes): " in result.output
    for shape in ("300x400: 1", "292x392: 1", "700x500: 1", "768x616: 1", "400x300: 1"):
        assert shape in result.output


def test_plan_says_when_a_requested_backend_cannot_run(mixed_catalog: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    recipe = write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "style-plan",
            "input": {"path": str(mixed_catalog)},
            "execution": {"device": "cpu", "backend": "tensorrt"},
            "stages": [{"id": "s7", "uses": "style.transfer", "with": {"style": 7}}],
        },
    )
    result = CliRunner().invoke(app, ["plan", str(recipe)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "error" in result.output and "got backend 'tensorrt' at fp32 on cpu, which cannot run here" in result.output
