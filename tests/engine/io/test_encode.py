"""encode_image: round trips through decode_image for every format, ICC, alpha flattening, no EXIF."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from imgx import Item, OutputError
from imgx.arrays import flatten_alpha
from imgx.io.decode import decode_image
from imgx.io.encode import FORMATS, encode_image
from imgx.samples import zoo_photo

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return zoo_photo(128)


@pytest.fixture(scope="module")
def matte(photo: np.ndarray) -> np.ndarray:
    """A soft elliptical matte: 0 in the corners, 255 in the middle, a ramp between."""
    height, width = photo.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    radius = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    return np.clip((1.2 - radius) * 400, 0, 255).astype(np.uint8)


def _item(image: np.ndarray, alpha: np.ndarray | None = None, **meta) -> Item:
    return Item(sku="shoes/red-1", source="mem", image=image, alpha=alpha, meta=meta)


def _roundtrip(item: Item, **options) -> Item:
    return decode_image(encode_image(item, **options), sku=item.sku, source="mem")


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_formats_map_to_extensions() -> None:
    assert FORMATS == {"jpeg": "jpg", "png": "png", "webp": "webp"}


@pytest.mark.parametrize("fmt", ["tiff", "JPEG", "jpg", ""])
def test_unknown_format_names_the_valid_ones(photo, fmt: str) -> None:
    with pytest.raises(OutputError, match=rf"got output format {fmt!r}; expected one of jpeg, png, webp"):
        encode_image(_item(photo), format=fmt)


@pytest.mark.parametrize(
    "options", [{"quality": 0}, {"quality": 101}, {"png_compress_level": 10}, {"png_compress_level": "slow"}]
)
def test_out_of_range_options_raise(photo, options) -> None:
    with pytest.raises(OutputError):
        encode_image(_item(photo), format="png", **options)


def test_png_is_lossless_with_and_without_alpha(photo, matte) -> None:
    back = _roundtrip(_item(photo), format="png")
    assert np.array_equal(back.image, photo) and back.alpha is None
    back = _roundtrip(_item(photo, matte), format="png")
    assert np.array_equal(back.image, photo) and np.array_equal(back.alpha, matte)
    assert back.meta["source_mode"] == "RGBA"


def test_fast_png_is_the_default_and_gives_the_same_pixels_as_every_zlib_level(matte) -> None:
    """fpng (the default) against zlib at 6 on a real 1024 px photo, with and without alpha: the same decoded pixels,
    a different (larger) file; and odd shapes a crop can leave (one pixel, one row, one column)."""
    big = zoo_photo(1024)
    for alpha in (None, np.ascontiguousarray(np.resize(matte, big.shape[:2]))):
        fast = encode_image(_item(big, alpha), format="png")
        assert fast == encode_image(_item(big, alpha), format="png", png_compress_level="fast")
        zlib6 = encode_image(_item(big, alpha), format="png", png_compress_level=6)
        assert fast != zlib6 and len(fast) > len(zlib6)
        back = decode_image(fast, sku="s", source="s")
        assert np.array_equal(back.image, big)
        assert (back.alpha is None) if alpha is None else np.array_equal(back.alpha, alpha)
        assert np.array_equal(back.image, decode_image(zlib6, sku="s", source="s").image)
    for shape in ((1, 1), (1, 7), (7, 1), (3, 1001)):
        tiny = big[: shape[0], : shape[1]]
        back = _roundtrip(_item(tiny, np.full(shape, 9, np.uint8)), format="png")
        assert np.array_equal(back.image, tiny) and np.array_equal(back.alpha, np.full(shape, 9, np.uint8))


def test_png_compress_level_changes_size_not_pixels(photo) -> None:
    fast = encode_image(_item(photo), format="png", png_compress_level=1)
    small = encode_image(_item(photo), format="png", png_compress_level=9)
    assert len(small) < len(fast)
    assert np.array_equal(decode_image(fast, sku="s", source="s").image, decode_image(small, sku="s", source="s").image)


def test_webp_lossless_is_exact_including_rgb_under_transparent_pixels(photo, matte) -> None:
    back = _roundtrip(_item(photo, matte), format="webp", lossless=True)
    assert np.array_equal(back.image, photo) and np.array_equal(back.alpha, matte)
    back = _roundtrip(_item(photo), format="webp", lossless=True)
    assert np.array_equal(back.image, photo) and back.alpha is None


def test_webp_lossy_within_tolerance_and_keeps_alpha(photo, matte) -> None:
    back = _roundtrip(_item(photo, matte), format="webp", quality=90)
    assert back.size == (128, 85)
    opaque = matte == 255
    assert _mean_diff(back.image[opaque], photo[opaque]) < 5
    assert back.alpha is not None and _mean_diff(back.alpha, matte) < 2
    plain = _roundtrip(_item(photo), format="webp", quality=90)
    assert plain.alpha is None and _mean_diff(plain.image, photo) < 5


def test_jpeg_within_tolerance_and_quality_matters(photo) -> None:
    high = encode_image(_item(photo), format="jpeg", quality=95)
    low = encode_image(_item(photo), format="jpeg", quality=30)
    assert len(low) < len(high)
    back = decode_image(high, sku="s", source="s")
    assert back.size == (128, 85) and back.alpha is None and _mean_diff(back.image, photo) < 3
    assert _mean_diff(decode_image(low, sku="s", source="s").image, photo) > _mean_diff(back.image, photo)


def test_jpeg_chroma_subsampling_follows_quality(photo) -> None:
    for quality, sampling in ((95, 0), (90, 0), (89, 2), (60, 2)):  # 0 = 4:4:4, 2 = 4:2:0
        with Image.open(io.BytesIO(encode_image(_item(photo), format="jpeg", quality=quality))) as image:
            assert JpegImagePlugin.get_sampling(image) == sampling, quality


def test_jpeg_flattens_alpha_over_the_background(photo) -> None:
    alpha = np.full(photo.shape[:2], 255, np.uint8)
    alpha[:32, :32] = 0  # a fully transparent block: must become the background colour
    back = _roundtrip(_item(photo, alpha), format="jpeg", quality=95, background=(255, 0, 0))
    assert back.alpha is None
    block = back.image[4:28, 4:28].astype(int)  # away from the block edge (JPEG ringing)
    assert np.abs(block - [255, 0, 0]).max() <= 6
    assert _mean_diff(back.image[40:, 40:], photo[40:, 40:]) < 3


def test_flatten_alpha_is_the_over_operator() -> None:
    image = np.array([[[200, 100, 0], [200, 100, 0], [200, 100, 0]]], np.uint8)
    alpha = np.array([[0, 255, 128]], np.uint8)
    out = flatten_alpha(image, alpha, (0, 0, 255))
    expected_half = np.round((np.array([200, 100, 0]) * 128 + np.array([0, 0, 255]) * 127) / 255)
    assert out[0, 0].tolist() == [0, 0, 255]
    assert out[0, 1].tolist() == [200, 100, 0]
    assert out[0, 2].tolist() == expected_half.astype(int).tolist()


@pytest.mark.parametrize(("fmt", "level"), [("jpeg", 6), ("png", "fast"), ("png", 6), ("webp", 6)])
def test_icc_profile_is_embedded(photo, matte, fmt: str, level) -> None:
    data = encode_image(_item(photo, matte, icc_profile=SRGB), format=fmt, png_compress_level=level)
    with Image.open(io.BytesIO(data)) as image:
        assert image.info.get("icc_profile") == SRGB
    back = decode_image(data, sku="s", source="s")
    assert back.meta["icc_profile"] == SRGB
    if fmt == "png":
        assert np.array_equal(back.image, photo) and np.array_equal(back.alpha, matte)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # every chunk's CRC, the inserted iCCP's included
    with Image.open(io.BytesIO(encode_image(_item(photo), format=fmt))) as image:
        assert not image.info.get("icc_profile")


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_no_exif_orientation_is_written(photo, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(photo).transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", exif=exif.tobytes())
    upright = decode_image(buffer.getvalue(), sku="s", source="s")
    assert upright.meta["orientation"] == 6
    data = encode_image(upright, format=fmt)
    with Image.open(io.BytesIO(data)) as image:
        assert 0x0112 not in image.getexif()
    again = decode_image(data, sku="s", source="s")
    assert again.size == upright.size == (128, 85) and again.meta["orientation"] == 1


def test_non_contiguous_views_encode(photo) -> None:
    view = photo[:, ::2]  # a strided view, as a crop stage might pass on
    back = _roundtrip(_item(view), format="png")
    assert np.array_equal(back.image, view)
