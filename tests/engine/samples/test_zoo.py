"""The bad-input zoo itself: one real file per case, consistent expectations, the kinds the executor tests need."""

from __future__ import annotations

import pathlib
import struct

import pytest
from PIL import Image

from imgx.samples import ZooCase, write_bad_input_zoo, zoo_photo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[ZooCase]]:
    directory = tmp_path_factory.mktemp("zoo") / "nested"  # created by the function
    return directory, write_bad_input_zoo(directory)


def test_one_file_per_case_and_nothing_else(zoo) -> None:
    directory, cases = zoo
    names = [case.name for case in cases]
    assert len(names) == len(set(names))
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


def test_cases_are_consistent(zoo) -> None:
    for case in zoo[1]:
        if case.expect == "ok":
            assert case.reason is None and case.size is not None, case
        else:
            assert case.expect == "failed" and case.size is None and not case.has_alpha, case
            assert case.reason and case.reason == case.reason.lower(), case


def test_the_zoo_covers_the_design_list(zoo) -> None:
    names = {case.name for case in zoo[1]}
    required = {
        "good.jpg", "truncated.jpg", "truncated.png", "empty.jpg", "not-an-image.jpg", "cmyk.jpg", "gray16.png",
        "rgb16.png", "gray.jpg", "bilevel.png", "palette.png", "palette-transparent.png", "rgba.png", "la.png",
        "orientation-6.jpg", "orientation-3.jpg", "huge.png", "unicode-café-靴.jpg", "animated.gif",
    }  # fmt: skip
    assert required <= names
    assert {case.name for case in zoo[1] if case.expect == "failed"} == {
        "truncated.jpg", "truncated.png", "empty.jpg", "not-an-image.jpg", "huge.png",
    }  # fmt: skip


def test_files_are_what_their_names_say(zoo) -> None:
    directory, _ = zoo
    expected_modes = {
        "cmyk.jpg": "CMYK", "gray16.png": "I;16", "gray.jpg": "L", "bilevel.png": "1", "palette.png": "P",
        "palette-transparent.png": "P", "rgba.png": "RGBA", "la.png": "LA", "good.jpg": "RGB",
    }  # fmt: skip
    for name, mode in expected_modes.items():
        with Image.open(directory / name) as image:
            assert image.mode == mode, name
    with Image.open(directory / "palette-transparent.png") as image:
        assert "transparency" in image.info
    assert (directory / "rgb16.png").read_bytes()[24:26] == bytes([16, 2])  # IHDR: bit depth 16, colour type RGB
    assert b"Adobe" in (directory / "cmyk.jpg").read_bytes()  # APP14: the inverted CMYK of Photoshop-style files
    for name, frames in (("animated.gif", 3), ("animated.webp", 3)):
        with Image.open(directory / name) as image:
            assert image.n_frames == frames, name
    with Image.open(directory / "orientation-6.jpg") as image:
        assert image.getexif()[0x0112] == 6 and image.size == (64, 96)
    assert (directory / "empty.jpg").stat().st_size == 0


def test_huge_png_is_tiny_on_disk_but_declares_30000_squared(zoo) -> None:
    data = (zoo[0] / "huge.png").read_bytes()
    assert len(data) < 1000
    assert data[12:16] == b"IHDR" and struct.unpack(">II", data[16:24]) == (30000, 30000)


def test_base_size(tmp_path: pathlib.Path) -> None:
    cases = write_bad_input_zoo(tmp_path, base_size=48)
    assert {case.size for case in cases if case.expect == "ok"} == {(48, 32)}
    assert zoo_photo(48).shape == (32, 48, 3)
