"""output_path and validate_template: untrusted SKUs never write outside the output folder."""

from __future__ import annotations

import hashlib
import os
import pathlib

import pytest

from imgx import OutputError
from imgx.io.atomic import atomic_write
from imgx.io.naming import TEMPLATE_FIELDS, output_path, validate_template

TEMPLATE = "{sku}/{output}.{ext}"


def _tree(directory: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def _write(out_dir: pathlib.Path, sku: str, template: str = TEMPLATE) -> pathlib.Path:
    """What the executor does: name the output, then write it atomically."""
    path = output_path(out_dir, template, sku=sku, output="enhanced", ext="webp")
    atomic_write(path, b"image bytes", tmp_dir=out_dir / "_imgx" / "tmp")
    return path


MALICIOUS = [
    ("", "empty"),
    ("../escape", "'..' path component"),
    ("shoes/../../escape", "'..' path component"),
    ("..", "'..' path component"),
    ("./x", "'.' path component"),
    ("a/./b", "'.' path component"),
    ("/etc/passwd", "absolute path"),
    ("//server/share", "absolute path"),
    ("a//b", "empty path component"),
    ("trailing/", "empty path component"),
    ("nul\x00byte", "control character"),
    ("new\nline", "control character"),
    ("tab\tsku", "control character"),
    ("esc\x1b[31m", "control character"),
    ("del\x7f", "control character"),
    ("c1\x85", "control character"),
    ("line\u2028sep", "control character"),
    ("lone\udc80surrogate", "control character"),
    ("back\\slash", "backslash"),
    ("..\\..\\windows", "backslash"),
    ("x" * 256, "longer than 255 bytes; use {sku_hash}"),
    ("靴" * 86, "longer than 255 bytes; use {sku_hash}"),  # 86 chars, 258 bytes in UTF-8
    ("/".join(["d" * 200] * 21), "longer than 4096 bytes"),
    ("_imgx/ledger/x", "reserved folder _imgx"),
    ("_IMGX/ledger/x", "reserved folder _imgx"),
    ("_imgx", "reserved folder _imgx"),
]


@pytest.mark.parametrize(("sku", "reason"), MALICIOUS, ids=[repr(s)[:40] for s, _ in MALICIOUS])
def test_malicious_skus_are_rejected_and_nothing_is_written(tmp_path: pathlib.Path, sku: str, reason: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(OutputError) as info:
        _write(out_dir, sku)
    message = str(info.value)
    assert reason in message
    assert message.startswith("unsafe SKU ")
    assert repr(sku)[:30] in message  # names the SKU (truncated when long)
    assert len(message) < 400
    assert _tree(out_dir) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_long_sku_works_with_sku_hash(tmp_path: pathlib.Path) -> None:
    sku = "x" * 1000
    path = _write(tmp_path, sku, template="{sku_hash}/{output}.{ext}")
    assert path == tmp_path / hashlib.sha256(sku.encode()).hexdigest()[:16] / "enhanced.webp"
    assert path.read_bytes() == b"image bytes"


@pytest.mark.parametrize(
    ("sku", "expected"),
    [
        ("red-1", "red-1/enhanced.webp"),
        ("shoes/red-1", "shoes/red-1/enhanced.webp"),
        ("café/靴-1", "café/靴-1/enhanced.webp"),
        ("a/_imgx/b", "a/_imgx/b/enhanced.webp"),  # only the top-level _imgx is reserved
        ("...hidden", "...hidden/enhanced.webp"),
        (".dotfile", ".dotfile/enhanced.webp"),
        ("SKU 42 (blue)", "SKU 42 (blue)/enhanced.webp"),
        ("x" * 255, "x" * 255 + "/enhanced.webp"),
    ],
)
def test_legit_skus_land_where_expected(tmp_path: pathlib.Path, sku: str, expected: str) -> None:
    out_dir = tmp_path / "out"
    path = _write(out_dir, sku)
    assert path == out_dir / expected
    assert path.read_bytes() == b"image bytes"
    assert os.path.realpath(path).startswith(os.path.realpath(out_dir) + os.sep)


def test_all_template_fields(tmp_path: pathlib.Path) -> None:
    sku = "shoes/red-1"
    digest = hashlib.sha256(sku.encode()).hexdigest()[:16]
    template = "{output}/{stem}-{sku_hash}.{ext}"
    assert output_path(tmp_path, template, sku=sku, output="small", ext="jpg") == tmp_path / f"small/red-1-{digest}.jpg"
    assert TEMPLATE_FIELDS == ("sku", "output", "ext", "stem", "sku_hash", "variant")


@pytest.mark.parametrize(
    ("template", "plain", "varied"),
    [
        ("{sku}/{output}-{variant}.{ext}", "a/b/cutout.png", "a/b/hero-vintage.png"),
        ("{sku}/{variant}/{output}.{ext}", "a/b/cutout.png", "a/b/vintage/hero.png"),
        ("{variant}/{sku}/{output}.{ext}", "a/b/cutout.png", "vintage/a/b/hero.png"),
        ("{sku}_{output}.{variant}.{ext}", "a/b_cutout.png", "a/b_hero.vintage.png"),
    ],
)
def test_variant_field(tmp_path: pathlib.Path, template: str, plain: str, varied: str) -> None:
    """``{variant}`` is the row of ``hero@vintage``; for an output no variant changes it is empty and takes the
    separator before it along, so no path has ``cutout-.png`` or an empty folder."""
    assert output_path(tmp_path, template, sku="a/b", output="cutout", ext="png") == tmp_path / plain
    assert output_path(tmp_path, template, sku="a/b", output="hero@vintage", ext="png") == tmp_path / varied


def test_symlink_inside_out_dir_pointing_out_is_rejected(tmp_path: pathlib.Path) -> None:
    out_dir, outside = tmp_path / "out", tmp_path / "outside"
    out_dir.mkdir()
    outside.mkdir()
    (out_dir / "shoes").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputError, match="resolves outside the output folder"):
        _write(out_dir, "shoes/red-1")
    with pytest.raises(OutputError, match="resolves outside the output folder"):
        _write(out_dir, "shoes")
    assert list(outside.iterdir()) == []


def test_symlinked_out_dir_itself_is_fine(tmp_path: pathlib.Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    path = _write(tmp_path / "link", "shoes/red-1")
    assert (real / "shoes/red-1/enhanced.webp").read_bytes() == b"image bytes"
    assert path == tmp_path / "link/shoes/red-1/enhanced.webp"


def test_relative_out_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert output_path(pathlib.Path("out"), TEMPLATE, sku="a/b", output="o", ext="png") == pathlib.Path("out/a/b/o.png")
    with pytest.raises(OutputError):
        output_path(pathlib.Path("out"), TEMPLATE, sku="../a", output="o", ext="png")


def test_output_path_refuses_unvalidated_templates_with_attribute_access(tmp_path: pathlib.Path) -> None:
    with pytest.raises(OutputError, match="not a valid template"):
        output_path(tmp_path, "{sku.__class__}/{output}.{ext}", sku="a", output="o", ext="png")


@pytest.mark.parametrize(
    "template",
    ["{sku}/{output}.{ext}", "{sku_hash}.{ext}", "{stem}-{sku_hash}/{output}.{ext}", "catalog/{sku}_{output}.{ext}"],
)
def test_valid_templates(template: str) -> None:
    validate_template(template, n_outputs=2 if "{output}" in template else 1)


@pytest.mark.parametrize(
    ("template", "n_outputs", "message"),
    [
        ("", 1, "is empty"),
        ("{sku/{output}.{ext}", 1, "not a valid template"),
        ("{sku}}.{ext}", 1, "not a valid template"),
        ("{color}/{sku}.{ext}", 1, "unknown field {color}; expected only {sku}, {output}, {ext}, {stem}, {sku_hash}"),
        ("{0}/{sku}.{ext}", 1, "unknown field {0}"),
        ("{}/{sku}.{ext}", 1, "unknown field {}"),
        ("{sku.__class__}.{ext}", 1, "unknown field {sku.__class__}"),
        ("{sku[0]}.{ext}", 1, "unknown field {sku[0]}"),
        ("{sku!r}.{ext}", 1, "write plain fields"),
        ("{sku:>10}.{ext}", 1, "write plain fields"),
        ("{output}.{ext}", 1, "neither {sku} nor {sku_hash}"),
        ("{stem}.{ext}", 1, "neither {sku} nor {sku_hash}"),
        ("{sku}.{ext}", 2, "has no {output} but the recipe writes 2 outputs"),
        ("{sku}/{output}", 1, "has no {ext}"),
        ("/abs/{sku}.{ext}", 1, "is absolute"),
        ("../{sku}.{ext}", 1, "'..' path component"),
        ("{sku}//{output}.{ext}", 1, "empty path component"),
        ("_imgx/{sku}.{ext}", 1, "reserved folder _imgx"),
        ("{sku}\\{output}.{ext}", 1, "backslash"),
    ],
)
def test_invalid_templates_say_how_to_fix(template: str, n_outputs: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_template(template, n_outputs=n_outputs)
    assert message in str(info.value)
    assert "{sku}/{output}.{ext}" in str(info.value) or "{{" in str(info.value) or "plain fields" in str(info.value)
