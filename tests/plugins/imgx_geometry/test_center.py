"""geometry.center: the product's box fills the given fraction of the canvas and sits in its centre; alpha rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from _support import frozen
from imgx import Item, StageError
from imgx.arrays import flatten_alpha
from imgx_geometry import Center, CenterParams, center_product, product_bbox


def _product_on_photo(photo: np.ndarray, height: int, width: int, box: tuple[int, int, int, int]) -> tuple:
    """A ``height x width`` piece of a real photo with a solid-edged ellipse "product" (a hard mask) filling ``box``
    ``(x0, y0, x1, y1)``; the product is the photo's own pixels there, its mask binary."""
    reps = (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1)
    image = np.ascontiguousarray(np.tile(photo, reps)[:height, :width])
    mask = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255  # a solid rectangle: its box is exact at any threshold
    return frozen(image), frozen(mask)


def _box_stats(alpha: np.ndarray, threshold: int = 128) -> tuple[float, float, float, float]:
    """``(width, height, centre_x, centre_y)`` of the thresholded box, in pixel-edge coordinates."""
    x0, y0, x1, y1 = product_bbox(alpha, alpha.shape, threshold)
    return x1 - x0, y1 - y0, (x0 + x1) / 2, (y0 + y1) / 2


CASES = [
    # image (h, w), product box (x0, y0, x1, y1), canvas
    ((400, 600), (100, 50, 300, 350), 256),  # tall product, landscape photo, shrink
    ((400, 600), (20, 300, 580, 380), 256),  # wide product near the bottom edge
    ((300, 300), (130, 140, 170, 165), 200),  # small product: enlarged (within max_upscale)
    ((427, 640), (0, 0, 640, 427), (300, 200)),  # the whole photo is the product
    ((333, 251), (17, 29, 240, 301), (257, 143)),  # odd sizes everywhere, wide canvas
    ((251, 333), (40, 9, 301, 200), (143, 257)),  # tall canvas
]


@pytest.mark.parametrize(("shape", "box", "canvas"), CASES, ids=[str(c[2]) + "-" + str(c[1]) for c in CASES])
@pytest.mark.parametrize("fill", [0.85, 0.5, 1.0])
def test_box_fills_the_fraction_and_is_centred(shape, box, canvas, fill, photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], *shape, box)
    canvas_w, canvas_h = (canvas, canvas) if isinstance(canvas, int) else canvas
    out, alpha = center_product(image, mask, size=canvas, fill=fill, background="transparent", max_upscale=8.0)
    assert out.shape == (canvas_h, canvas_w, 3) and out.dtype == np.uint8
    assert alpha is not None and alpha.shape == (canvas_h, canvas_w)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    scale = fill * min(canvas_w / box_w, canvas_h / box_h)
    width, height, cx, cy = _box_stats(alpha)
    assert abs(width - box_w * scale) <= 1 and abs(height - box_h * scale) <= 1
    limiting = max(width / canvas_w, height / canvas_h)  # the box touches fill on its limiting side
    assert abs(limiting - fill) <= 1 / min(canvas_w, canvas_h) + 1e-9
    assert abs(cx - canvas_w / 2) <= 1 and abs(cy - canvas_h / 2) <= 1


@pytest.mark.parametrize("canvas", [256, (300, 180)])
def test_real_matte_is_centred(canvas, rgba_pack, photos) -> None:
    """The gift box's real soft-edged matte, pasted onto a photo off-centre."""
    rgb, matte = rgba_pack
    image = np.array(photos["rocket"][:300, :400])
    mask = np.zeros((300, 400), np.uint8)
    a = matte[..., None].astype(np.float32) / 255
    image[150:278, 250:378] = (image[150:278, 250:378] * (1 - a) + rgb * a + 0.5).astype(np.uint8)
    mask[150:278, 250:378] = matte
    out, alpha = center_product(frozen(image), frozen(mask), size=canvas, background="transparent")
    canvas_w, canvas_h = (canvas, canvas) if isinstance(canvas, int) else canvas
    x0, y0, x1, y1 = product_bbox(matte, matte.shape)
    scale = 0.85 * min(canvas_w / (x1 - x0), canvas_h / (y1 - y0))
    width, height, cx, cy = _box_stats(alpha)
    # a soft edge re-thresholded after resampling moves by up to one source pixel (scaled) on each side
    assert abs(width - (x1 - x0) * scale) <= 1 + 2 * scale and abs(height - (y1 - y0) * scale) <= 1 + 2 * scale
    assert abs(cx - canvas_w / 2) <= 1 + scale / 2 and abs(cy - canvas_h / 2) <= 1 + scale / 2
    # the product's pixels came along: the centre of the canvas is the gift box scaled
    expected = cv2.resize(np.ascontiguousarray(rgb[y0:y1, x0:x1]), (round(width), round(height)), cv2.INTER_LANCZOS4)
    centre = out[round(cy) - 5 : round(cy) + 5, round(cx) - 5 : round(cx) + 5].astype(int)
    h2, w2 = expected.shape[0] // 2, expected.shape[1] // 2
    assert np.abs(centre - expected[h2 - 5 : h2 + 5, w2 - 5 : w2 + 5]).mean() < 12


@pytest.mark.parametrize(("shape", "box", "canvas"), CASES, ids=[str(c[2]) + "-" + str(c[1]) for c in CASES])
def test_colour_canvas_is_the_transparent_one_flattened(shape, box, canvas, photos) -> None:
    """A colour canvas is the transparent result composited onto the colour (the JPEG encoder's own formula)."""
    image, mask = _product_on_photo(photos["china"], *shape, box)
    clear, clear_alpha = center_product(image, mask, size=canvas, background="transparent")
    out, alpha = center_product(image, mask, size=canvas, background="#f0e0d0")
    assert alpha is not None and (alpha == 255).all()
    np.testing.assert_array_equal(out, flatten_alpha(clear, clear_alpha, (0xF0, 0xE0, 0xD0)))
    assert (out[clear_alpha == 0] == (0xF0, 0xE0, 0xD0)).all()


def test_max_upscale_caps_a_small_product(photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], 200, 200, (90, 95, 110, 105))  # 20 x 10
    _, alpha = center_product(image, mask, size=512, background="transparent", max_upscale=2.0)
    width, height, cx, cy = _box_stats(alpha)
    assert (width, height) == (40, 20)  # not 0.85 * 512: never enlarged more than twice
    assert abs(cx - 256) <= 1 and abs(cy - 256) <= 1
    _, alpha1 = center_product(image, mask, size=512, background="transparent", max_upscale=1.0)
    assert _box_stats(alpha1)[:2] == (20, 10)


@pytest.mark.parametrize(
    ("canvas", "min_size", "expected_canvas", "expected_side"),
    [
        (512, 256, (256, 256), 200),  # 0.85 * 256 = 217.6 needs x 2.18 > 2: the canvas stops at min_size
        (512, 200, (235, 235), 200),  # 200 px (x 2) is 85 % of 235 px
        ((600, 400), 100, (236, 157), 200),  # aspect kept; the width limits: 200 px is 85 % of 236
        (200, 100, (200, 200), 170),  # not capped (x 1.7): the canvas stays
    ],
)
def test_min_size_shrinks_the_canvas_to_keep_the_fill(canvas, min_size, expected_canvas, expected_side, photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], 300, 300, (100, 120, 200, 180))  # a 100 x 60 product
    out, alpha = center_product(image, mask, size=canvas, min_size=min_size, background="transparent")
    assert (out.shape[1], out.shape[0]) == expected_canvas
    width, height, cx, cy = _box_stats(alpha)
    assert abs(width - expected_side) <= 1 and abs(height - expected_side * 0.6) <= 1
    assert abs(cx - expected_canvas[0] / 2) <= 1 and abs(cy - expected_canvas[1] / 2) <= 1


def test_margin_keeps_the_box_off_the_edges(photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], 300, 400, (50, 20, 350, 280))  # 300 x 260
    _, alpha = center_product(image, mask, size=(200, 200), fill=1.0, margin=20, background="transparent")
    x0, y0, x1, y1 = product_bbox(alpha, alpha.shape)
    assert min(x0, y0, 200 - x1, 200 - y1) >= 19 and x1 - x0 >= 159


def test_threshold_ignores_a_faint_halo(photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], 200, 200, (80, 80, 120, 120))
    halo = np.array(mask)
    halo[40:160, 40:160] = np.maximum(halo[40:160, 40:160], 40)  # a faint shadow/halo around the product
    assert product_bbox(halo, halo.shape) == (80, 80, 120, 120)
    assert product_bbox(halo, halo.shape, threshold=30) == (40, 40, 160, 160)
    _, alpha = center_product(image, frozen(halo), size=100, fill=0.8, background="transparent")
    width, height, _, _ = _box_stats(alpha)
    assert abs(width - 80) <= 1 and abs(height - 80) <= 1
    assert ((alpha > 20) & (alpha < 60)).mean() > 0.25  # the halo itself is carried, not cut off


def test_transparent_canvas_carries_the_mask_and_photo(photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], 200, 300, (100, 50, 200, 150))
    out, alpha = center_product(image, mask, size=100, fill=0.5, background="transparent", interpolation="area")
    # scale 0.5: the product (100 x 100) becomes 50 x 50 in the middle; the photo around it comes along
    expected = cv2.resize(image, (150, 100), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out[25:75, 25:75], expected[25:75, 50:100])
    assert (alpha[25:75, 25:75] == 255).all() and alpha[:25].max() == 0


def test_colour_canvas_is_the_product_over_the_colour(photos) -> None:
    image, mask = _product_on_photo(photos["coffee"], 200, 300, (100, 50, 200, 150))
    out, alpha = center_product(image, mask, size=100, fill=0.5, background="#102030", interpolation="area")
    assert (alpha == 255).all()
    assert (out[:24] == (0x10, 0x20, 0x30)).all() and (out[:, :24] == (0x10, 0x20, 0x30)).all()
    transparent, _ = center_product(image, mask, size=100, fill=0.5, background="transparent", interpolation="area")
    np.testing.assert_array_equal(out[25:75, 25:75], transparent[25:75, 25:75])


def test_no_alpha_centres_the_whole_image(photos) -> None:
    photo = photos["grace_hopper"]  # 512 x 600 portrait
    out, alpha = center_product(photo, None, size=300, fill=0.8)
    assert alpha is None and out.shape == (300, 300, 3)
    content = np.any(out != 255, axis=2)
    ys = np.nonzero(content)[0]
    assert abs(ys.max() + 1 - ys.min() - 240) <= 1  # the long side fills 80 %
    out_t, alpha_t = center_product(photo, None, size=300, fill=0.8, background="transparent")
    width, height, cx, _ = _box_stats(alpha_t)
    assert abs(height - 240) <= 1 and abs(width - 512 * 240 / 600) <= 1 and abs(cx - 150) <= 1
    full, full_alpha = center_product(photo, frozen(np.full(photo.shape[:2], 255, np.uint8)), size=300, fill=0.8,
                                      background="transparent")  # fmt: skip
    np.testing.assert_array_equal(full, out_t)  # a full mask is the same as no alpha
    np.testing.assert_array_equal(full_alpha, alpha_t)


def test_empty_mask_fails_the_item_with_a_reason(photos) -> None:
    image = photos["coffee"][:64, :64]
    stage = Center(CenterParams(size=64))
    faint = frozen(np.full((64, 64), 20, np.uint8))
    with pytest.raises(StageError, match=r"item 'bag-3'.*no alpha >= 128 \(max 20\).*expected a product mask"):
        stage([Item("bag-3", "memory", frozen(np.ascontiguousarray(image)), faint)])
    with pytest.raises(ValueError, match="no alpha >= 128"):
        center_product(image, np.zeros((64, 64), np.uint8), size=64)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3), (1, 9)])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_tiny_images(shape, with_alpha, photos) -> None:
    image = frozen(np.ascontiguousarray(photos["astronaut"][200 : 200 + shape[0], 200 : 200 + shape[1]]))
    alpha = frozen(np.full(shape, 255, np.uint8)) if with_alpha else None
    for canvas in (1, 8, (64, 16)):
        out, out_alpha = center_product(image, alpha, size=canvas, background="transparent", max_upscale=2.0)
        canvas_w, canvas_h = (canvas, canvas) if isinstance(canvas, int) else canvas
        assert out.shape == (canvas_h, canvas_w, 3) and out_alpha.shape == (canvas_h, canvas_w)
        assert out_alpha.max() == 255  # the product is on the canvas, never an empty output


def test_grayscale_looking_input_stays_grey(photos) -> None:
    grey = photos["coffee"].mean(axis=2).astype(np.uint8)
    image = frozen(np.repeat(grey[:, :, None], 3, axis=2))
    mask = np.zeros(grey.shape, np.uint8)
    cv2.ellipse(mask, (300, 200), (120, 80), 0, 0, 360, 255, -1, cv2.LINE_AA)
    for background in ("#808080", "transparent"):
        out, _ = center_product(image, frozen(mask), size=(211, 157), background=background)
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize(
    "params",
    [{"size": 256}, {"size": [300, 200], "fill": 0.7, "margin": 8, "background": "transparent"},
     {"size": 128, "interpolation": "lanczos", "threshold": 20, "max_upscale": 1.0}],
)  # fmt: skip
def test_stage_equals_the_function(params, rgba_pack) -> None:
    rgb, matte = rgba_pack
    parsed = CenterParams.model_validate(params)
    (item,) = Center(parsed)([Item("sku", "memory", rgb, matte, {"source_mode": "RGBA"})])
    image, alpha = center_product(rgb, matte, **parsed.model_dump())
    np.testing.assert_array_equal(item.image, image)
    np.testing.assert_array_equal(item.alpha, alpha)
    assert item.meta == {"source_mode": "RGBA"}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"size": 100, "fill": 0}, "greater than 0"),
        ({"size": 100, "fill": 1.2}, "less than or equal to 1"),
        ({"size": 100, "margin": 50}, "2 \\* margin < side"),
        ({"size": 100, "background": "white"}, "#RRGGBB"),
        ({"size": 100, "max_upscale": 0.5}, "greater than or equal to 1"),
        ({"size": 100, "threshold": 0}, "greater than or equal to 1"),
        ({"size": 100, "min_size": 120}, "min_size <= side"),
        ({"size": [300, 100], "margin": 10, "min_size": 20}, "2 \\* margin < min_size"),
        ({"fill": 0.85}, "size"),
        ({"size": 100, "fil": 0.85}, "Extra inputs"),
    ],
)
def test_bad_params_are_recipe_errors(params, words) -> None:
    with pytest.raises(ValidationError, match=words):
        CenterParams.model_validate(params)
