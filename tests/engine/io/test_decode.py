"""decode_image over the bad-input zoo and the edge cases around it (real files on disk, real photo)."""

from __future__ import annotations

import io
import pathlib
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, features

from imgx import InputError, Item
from imgx.io.decode import decode_image
from imgx.samples import ZooCase, write_bad_input_zoo, zoo_photo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, ZooCase]]:
    directory = tmp_path_factory.mktemp("zoo")
    cases = write_bad_input_zoo(directory)
    return directory, {case.name: case for case in cases}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return zoo_photo()


def _decode(directory: pathlib.Path, name: str, **kwargs) -> Item:
    path = directory / name
    return decode_image(path.read_bytes(), sku=name, source=str(path), **kwargs)


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_every_zoo_case_decodes_or_fails_as_declared(zoo) -> None:
    directory, cases = zoo
    for case in cases.values():
        if case.expect == "ok":
            item = _decode(directory, case.name)
            assert item.size == case.size, case.name
            assert item.image.dtype == np.uint8 and item.image.shape == (case.size[1], case.size[0], 3), case.name
            assert (item.alpha is not None) == case.has_alpha, case.name
            if item.alpha is not None:
                assert item.alpha.dtype == np.uint8 and item.alpha.shape == item.image.shape[:2]
            assert not item.image.flags.writeable, case.name
            assert item.sku == case.name and item.source == str(directory / case.name)
            assert {"format", "source_mode", "source_size", "orientation", "icc_profile"} <= item.meta.keys()
            assert item.meta["source_size"] == case.size
        else:
            with pytest.raises(InputError) as info:
                _decode(directory, case.name)
            assert case.reason in str(info.value).lower(), case.name


@pytest.mark.parametrize(
    ("name", "max_diff"),
    [
        ("good.png", 0.0),
        ("rgb16.png", 0.0),  # cv2 wrote v * 257; Pillow keeps the high byte: exact
        ("rgba.png", 0.0),
        ("good.jpg", 8.0),
        ("good.webp", 8.0),
        ("unicode-café-靴.jpg", 8.0),
        ("cmyk.jpg", 3.0),  # Adobe inverted CMYK: a wrong inversion would give a negative (diff ~ 100)
        ("palette.png", 8.0),
        ("orientation-6.jpg", 8.0),
        ("orientation-3.jpg", 8.0),
        ("animated.gif", 8.0),
        ("animated.webp", 8.0),
    ],
)
def test_colour_cases_match_the_photo(zoo, photo, name: str, max_diff: float) -> None:
    item = _decode(zoo[0], name)
    assert _mean_diff(item.image, photo) <= max_diff


@pytest.mark.parametrize("name", ["gray.jpg", "gray16.png", "la.png", "bilevel.png"])
def test_gray_cases_become_equal_rgb_channels(zoo, photo, name: str) -> None:
    item = _decode(zoo[0], name)
    assert np.array_equal(item.image[..., 0], item.image[..., 1])
    assert np.array_equal(item.image[..., 0], item.image[..., 2])
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    if name in ("gray16.png", "la.png"):
        assert np.array_equal(item.image[..., 0], gray)  # 16-bit v * 257 scales back exactly
    elif name == "bilevel.png":
        assert set(np.unique(item.image)) <= {0, 255}
    else:
        assert _mean_diff(item.image[..., 0], gray) < 3


def test_sixteen_bit_gray_is_scaled_not_clipped() -> None:
    values = np.array([[0, 128, 129, 257, 32896, 65279, 65535]], dtype=np.uint16)
    item = decode_image(_encode(Image.fromarray(values), "PNG"), sku="s", source="s")
    assert item.meta["source_mode"].startswith("I;16")
    assert item.image[0, :, 0].tolist() == [0, 0, 1, 1, 128, 254, 255]


def test_alpha_cases_keep_the_matte(zoo, photo) -> None:
    directory, _ = zoo
    rgba = np.asarray(Image.open(directory / "rgba.png"))
    matte = rgba[..., 3]
    assert np.array_equal(_decode(directory, "rgba.png").alpha, matte)
    assert np.array_equal(_decode(directory, "la.png").alpha, matte)
    palette_alpha = _decode(directory, "palette-transparent.png").alpha
    assert np.array_equal(palette_alpha, np.where(matte < 128, 0, 255).astype(np.uint8))
    assert 0 < matte.mean() < 255 and np.count_nonzero((matte > 0) & (matte < 255)) > 0  # a real soft matte


def test_rgb_colour_key_transparency_becomes_alpha(photo) -> None:
    image = photo.copy()
    image[:8, :8] = (1, 2, 3)
    item = decode_image(_encode(Image.fromarray(image), "PNG", transparency=(1, 2, 3)), sku="s", source="s")
    assert item.alpha is not None
    assert (item.alpha[:8, :8] == 0).all()
    assert (item.alpha == 0).sum() == 64


def test_exif_orientation_6_swaps_the_size(zoo) -> None:
    directory, _ = zoo
    with Image.open(directory / "orientation-6.jpg") as stored:
        assert stored.size == (64, 96)
    item = _decode(directory, "orientation-6.jpg")
    assert item.size == (96, 64)
    assert item.meta["orientation"] == 6
    assert _decode(directory, "orientation-3.jpg").meta["orientation"] == 3
    assert _decode(directory, "good.jpg").meta["orientation"] == 1


_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_orientations_give_the_upright_photo(photo, orientation: int) -> None:
    upright = Image.fromarray(photo)
    stored = upright.transpose(_INVERSE[orientation]) if orientation > 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    item = decode_image(_encode(stored, "PNG", exif=exif.tobytes()), sku="s", source="s")  # lossless: exact
    assert item.meta["orientation"] == orientation
    assert np.array_equal(item.image, photo)


def test_rotated_alpha_follows_the_image(photo) -> None:
    rgba = Image.fromarray(photo).convert("RGBA")
    matte = np.zeros(photo.shape[:2], np.uint8)
    matte[:, : photo.shape[1] // 2] = 255
    rgba.putalpha(Image.fromarray(matte))
    exif = Image.Exif()
    exif[0x0112] = 8
    item = decode_image(_encode(rgba.transpose(_INVERSE[8]), "PNG", exif=exif.tobytes()), sku="s", source="s")
    assert np.array_equal(item.alpha, matte)


def test_invalid_orientation_is_ignored(photo) -> None:
    exif = Image.Exif()
    exif[0x0112] = 42
    item = decode_image(_encode(Image.fromarray(photo), "JPEG", exif=exif.tobytes()), sku="s", source="s")
    assert item.meta["orientation"] == 1 and item.size == (96, 64)


def test_truncation_is_never_silently_filled(zoo) -> None:
    directory, _ = zoo
    good = (directory / "good.jpg").read_bytes()
    for cut in (len(good) // 4, len(good) // 2, len(good) - 10):
        with pytest.raises(InputError, match="truncated or corrupt image data"):
            decode_image(good[:cut], sku="s", source="s")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_huge_header_fails_before_decoding_with_the_limit_in_the_message(zoo) -> None:
    with pytest.raises(InputError) as info:
        _decode(zoo[0], "huge.png")
    assert str(info.value) == "image is 30000x30000 = 900.0 MP; limit is 100.0 MP (input.max_pixels)"
    assert (zoo[0] / "huge.png").stat().st_size < 1000


def test_max_pixels_is_the_callers_limit(zoo) -> None:
    with pytest.raises(InputError, match=r"image is 96x64 = 0.00614 MP; limit is 0.006 MP \(input.max_pixels\)"):
        _decode(zoo[0], "good.jpg", max_pixels=6000)
    assert _decode(zoo[0], "good.jpg", max_pixels=96 * 64).size == (96, 64)


def test_pillow_decompression_bomb_error_is_converted() -> None:
    buffer = io.BytesIO()
    Image.new("P", (4, 4)).save(buffer, "GIF")
    data = bytearray(buffer.getvalue())
    descriptor = data.index(0x2C, 13)  # first image descriptor: a 4x4 screen holding a 30000x30000 frame
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 30000, 30000)
    with pytest.raises(InputError, match="decompression-bomb limit") as info:
        decode_image(bytes(data), sku="s", source="s")
    assert isinstance(info.value.__cause__, Image.DecompressionBombError)


def test_first_frame_of_animations(zoo, photo) -> None:
    flipped = photo[:, ::-1]
    for name in ("animated.gif", "animated.webp"):
        item = _decode(zoo[0], name)
        assert _mean_diff(item.image, photo) < _mean_diff(item.image, flipped) / 3, name


def test_icc_profile_is_kept_for_rgb_and_dropped_for_other_colour_spaces(photo) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("JPEG", "PNG", "WEBP"):
        item = decode_image(_encode(Image.fromarray(photo), fmt, icc_profile=srgb), sku="s", source="s")
        assert item.meta["icc_profile"] == srgb, fmt
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB profile
    item = decode_image(_encode(Image.fromarray(photo), "PNG", icc_profile=lab), sku="s", source="s")
    assert item.meta["icc_profile"] is None
    assert decode_image(_encode(Image.fromarray(photo), "PNG"), sku="s", source="s").meta["icc_profile"] is None


@pytest.mark.parametrize("fmt", ["TIFF", "BMP"])
def test_other_allowed_formats(photo, fmt: str) -> None:
    item = decode_image(_encode(Image.fromarray(photo), fmt), sku="s", source="s")
    assert np.array_equal(item.image, photo) and item.meta["format"] == fmt


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build has no AVIF support")
def test_avif(photo) -> None:
    item = decode_image(_encode(Image.fromarray(photo), "AVIF", quality=90), sku="s", source="s")
    assert item.meta["format"] == "AVIF" and item.size == (96, 64) and _mean_diff(item.image, photo) < 8


def test_formats_outside_the_allow_list_are_refused(photo) -> None:
    ppm = _encode(Image.fromarray(photo), "PPM")  # Pillow reads it, a catalog should not ship it
    with pytest.raises(InputError, match="not a recognised image format"):
        decode_image(ppm, sku="s", source="s")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
        b"GIF89a" + b"\xff" * 3,
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20,
    ],
    ids=["png-garbage", "jpeg-garbage", "gif-garbage", "webp-garbage"],
)
def test_corrupt_headers_raise_input_error(data: bytes) -> None:
    with pytest.raises(InputError):
        decode_image(data, sku="s", source="s")


def test_hot_path_array_is_the_pillow_buffer_without_extra_conversions(zoo) -> None:
    item = _decode(zoo[0], "good.jpg")
    assert item.image.flags.c_contiguous and item.image.dtype == np.uint8
    assert item.meta == {**item.meta, "format": "JPEG", "source_mode": "RGB", "orientation": 1}
