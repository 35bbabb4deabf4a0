"""Folder catalogs take every image extension imgx decodes unless a recipe narrows them, and whatever the patterns
leave out is said by ``imgx plan --count``, ``--dry-run`` and the run summary (issue 16, item 1)."""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image

from _support import REAL_PHOTOS, REPO, real_photo, write_recipe
from imgx.io.catalog import glob_to_regex
from imgx.io.leftout import left_out

# nested folders with spaces and unicode, every extension and its upper-case spelling
NAMES = [
    "shoes/red 1.jpg",
    "shoes/red 2.JPG",
    "shoes/blue.jpeg",
    "bags/sac à main.JPEG",
    "bags/été/tote.png",
    "bags/été/clutch.webp",
    "hats/straw hat.tif",
    "hats/cap.TIFF",
    "hats/beret.bmp",
]


def _catalog(folder: Path) -> Path:
    for i, name in enumerate(NAMES):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(real_photo(REAL_PHOTOS[i % len(REAL_PHOTOS)], 48)).save(path, format=_format(path))
    (folder / "notes.txt").write_text("supplier notes\n")
    (folder / "_thumbs").mkdir()
    Image.fromarray(real_photo("coffee", 24)).save(folder / "_thumbs" / "red 1.jpg")
    return folder


def _format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, ext[1:].upper())


def _recipe(tmp_path: Path, **input_keys: object) -> Path:
    body = {
        "version": 1,
        "name": "day-one",
        "input": {"path": str(_catalog(tmp_path / "catalog")), "exclude": ["_thumbs/**"], **input_keys},
        "output": {"dir": str(tmp_path / "out"), "format": "png"},
        "execution": {"workers": 1},
        "stages": [{"id": "square", "uses": "geometry.fit", "with": {"size": 32}}],
    }
    return write_recipe(tmp_path, body)


def test_the_default_pattern_takes_every_extension_in_any_case(imgx, tmp_path: Path) -> None:
    result = imgx("run", _recipe(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("square.png")) == sorted(
        f"{name.rsplit('.', 1)[0]}/square.png" for name in NAMES
    )
    assert "images imgx can read" not in result.output  # only notes.txt was left out
    assert "input.pattern left out 1 file(s) of the folder (.txt 1), e.g. notes.txt" in result.stderr


def test_what_a_narrow_pattern_leaves_out_is_said_by_plan_dry_run_and_the_summary(imgx, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, pattern=["**/*.jpg", "**/*.png"])
    said = "input.pattern left out 7 file(s) of the folder, 6 of them images imgx can read"
    counts = "(.jpeg 2, .bmp 1, .tif 1, .tiff 1, .webp 1, .txt 1)"
    planned = imgx("plan", recipe, "--count")
    assert planned.exit_code == 0 and "items: 3" in planned.stdout, planned.output
    for result in (planned, imgx("run", recipe, "--dry-run"), imgx("run", recipe)):
        assert said in result.stderr and counts in result.stderr, result.stderr
        assert (
            "e.g. bags/sac à main.JPEG, bags/été/clutch.webp, hats/beret.bmp, hats/cap.TIFF, hats/straw hat.tif;"
            in (result.stderr)
        )
    assert "widen input.pattern" in planned.stderr


def test_left_out_streams_with_bounded_examples(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"img {i:02d}.jpeg").write_bytes(b"")
    found = left_out(tmp_path, [glob_to_regex("**/*.jpg")], examples=3)
    assert found.by_extension == {".jpeg": 50} and len(found.examples) == 3 and found.images == 50


def test_no_shipped_recipe_narrows_the_extensions() -> None:
    for recipe in sorted((REPO / "recipes").glob("*.yaml")):
        assert "pattern" not in yaml.safe_load(recipe.read_text())["input"], recipe.name
