"""The image work around the network: style vectors, working size, rounding, colour preservation, strength blend."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgx.arrays import to_float, to_uint8, working_size
from imgx_style.ops import blend, keep_color, resize_rgb, style_vector


def test_style_vector_one_hot_and_normalised_blends() -> None:
    one = style_vector(7)
    assert one.dtype == np.float32 and one.shape == (26,) and one[7] == 1.0 and one.sum() == 1.0
    assert np.array_equal(style_vector({3: 1, 12: 1}), style_vector({3: 0.5, 12: 0.5}))
    mixed = style_vector({3: 1.0, 12: 3.0})
    assert mixed[3] == pytest.approx(0.25) and mixed[12] == pytest.approx(0.75) and mixed.sum() == pytest.approx(1.0)
    assert np.array_equal(style_vector({5: 2.0, 0: 0.0}), style_vector(5))


@pytest.mark.parametrize(
    ("style", "words"),
    [
        (26, "got style index 26; expected an integer 0..25"),
        (-1, "got style index -1"),
        ({3: 0.5, 40: 0.5}, "got style index 40"),
        ({3: -0.5, 4: 1.0}, "got weight -0.5 for style 3; expected a number >= 0"),
        ({3: 0.0}, "summing to 0"),
        ({3: float("nan")}, "got weight nan"),
    ],
)
def test_bad_styles_say_what_is_expected(style, words) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        style_vector(style)


def test_working_size_scales_the_long_side_only_when_over() -> None:
    assert working_size(400, 600, 1024) == (400, 600)
    assert working_size(400, 600, None) == (400, 600)
    assert working_size(1500, 3000, 1024) == (512, 1024)
    assert working_size(3000, 1001, 1000) == (1000, 334)
    assert working_size(5000, 3, 1024) == (1024, 1)


def test_uint8_rounding_is_the_originals() -> None:
    x = np.array([[[-0.2, 0.0, 0.5], [0.998, 1.0, 1.7]]], np.float32)
    expected = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(to_uint8(x), expected) and to_uint8(x).tolist() == [[[0, 0, 128], [254, 255, 255]]]
    image = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    assert np.array_equal(to_uint8(to_float(image)), image)


def test_keep_color_takes_luma_from_the_stylized_and_chroma_from_the_photo(photos) -> None:
    photo = np.ascontiguousarray(photos["astronaut"][:200])
    stylized = np.ascontiguousarray(photos["coffee"][:200, :250])
    assert stylized.shape == photo.shape
    out = keep_color(stylized, photo)
    ycc = np.asarray(Image.fromarray(out).convert("YCbCr")).astype(int)
    want_y = np.asarray(Image.fromarray(stylized).convert("YCbCr"))[..., 0].astype(int)
    want_c = np.asarray(Image.fromarray(photo).convert("YCbCr"))[..., 1:].astype(int)
    # back through RGB, out-of-gamut colours clip: close, not exact
    assert np.abs(ycc[..., 0] - want_y).mean() < 3 and np.abs(ycc[..., 1:] - want_c).mean() < 3
    assert np.abs(out.astype(int) - stylized).mean() > 5  # the colours did change
    with pytest.raises(ValueError, match="expected equal shapes"):
        keep_color(stylized[:10], photo)


def test_blend_ends_and_midpoint(photos) -> None:
    photo = photos["astronaut"]
    other = np.ascontiguousarray(photo[::-1])
    assert blend(other, photo, 0.0) is photo and blend(other, photo, 1.0) is other
    half = blend(other, photo, 0.5).astype(int)
    assert np.abs(half - (photo.astype(int) + other) / 2).max() <= 1
    quarter = blend(other, photo, 0.25).astype(int)
    assert np.abs(quarter - photo).mean() < np.abs(half - photo).mean()
    with pytest.raises(ValueError, match=r"got strength 1\.5; expected 0\.\.1"):
        blend(other, photo, 1.5)


def test_blend_of_a_large_photo_goes_by_strips_with_the_whole_formulas_pixels(photos) -> None:
    """Blending runs a strip of rows at a time (a 12 MP photo's float32 copies were ~430 MB at once): the same bytes
    as the formula over the whole image."""
    photo = resize_rgb(photos["astronaut"], 900, 700)
    other = np.ascontiguousarray(photo[::-1, ::-1])
    whole = photo.astype(np.float32)
    whole += np.float32(0.3) * (other.astype(np.float32) - whole)
    assert np.array_equal(blend(other, photo, 0.3), (whole + 0.5).astype(np.uint8))


def test_resize_is_pillows_lanczos_and_a_no_op_at_size(photos) -> None:
    photo = photos["rocket"]
    assert resize_rgb(photo, *photo.shape[:2]) is photo
    small = resize_rgb(photo, 111, 166)
    assert small.shape == (111, 166, 3)
    assert np.array_equal(small, np.asarray(Image.fromarray(photo).resize((166, 111), Image.Resampling.LANCZOS)))


def test_pad_min_mirrors_small_images_up_to_the_minimum(photos) -> None:
    from imgx.arrays import pad_min

    photo = photos["coffee"]
    assert pad_min(photo, 32) is photo
    tiny = np.ascontiguousarray(photo[50:53, 60:65])
    padded = pad_min(tiny, 32)
    assert padded.shape == (32, 32, 3) and np.array_equal(padded[:3, :5], tiny)
    assert np.array_equal(padded[3, :5], tiny[1])  # reflected, not repeated
    line = np.ascontiguousarray(photo[:1, :40])
    assert pad_min(line, 32).shape == (32, 40, 3) and (pad_min(line, 32) == line).all()
