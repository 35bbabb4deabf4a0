"""geometry.fit: exact canvas, whole image kept (fit) or canvas filled (cover), alpha resized / padded / created."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from imgx import Item
from imgx.color import parse_color_or_transparent
from imgx_geometry import Fit, FitParams, fit_to_canvas

MAGENTA = (255, 0, 255)


def _crop(photo: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``height x width`` piece of a real photo (tiled where the photo is smaller), read-only."""
    reps = (-(-height // photo.shape[0]), -(-width // photo.shape[1]), 1)
    piece = np.ascontiguousarray(np.tile(photo, reps)[:height, :width])
    piece.flags.writeable = False
    return piece


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _expected_fit_box(width: int, height: int, canvas_w: int, canvas_h: int) -> tuple[int, int, int, int]:
    scale = min(canvas_w / width, canvas_h / height)
    new_w, new_h = min(canvas_w, max(1, round(width * scale))), min(canvas_h, max(1, round(height * scale)))
    left, top = (canvas_w - new_w) // 2, (canvas_h - new_h) // 2
    return left, top, left + new_w, top + new_h


SHAPES = [(1, 1), (3, 5), (17, 1001), (1001, 17), (400, 600), (600, 400), (512, 512), (10, 2000), (333, 334)]
CANVASES = [64, (300, 200), (200, 300), (1, 1), (999, 17), (1, 40)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("canvas", CANVASES, ids=str)
@pytest.mark.parametrize("mode", ["fit", "cover"])
@pytest.mark.parametrize("upscale", [True, False], ids=["up", "noup"])
@pytest.mark.parametrize("background", ["#fff", "transparent"])
def test_output_is_exactly_the_canvas(shape, canvas, mode, upscale, background, photos) -> None:
    image = _crop(photos["coffee"], *shape)
    canvas_w, canvas_h = (canvas, canvas) if isinstance(canvas, int) else canvas
    out, alpha = fit_to_canvas(image, size=canvas, mode=mode, background=background, upscale=upscale)
    assert out.shape == (canvas_h, canvas_w, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if background == "transparent":
        assert alpha is not None and alpha.shape == (canvas_h, canvas_w) and alpha.dtype == np.uint8
    else:
        assert alpha is None


@pytest.mark.parametrize(("height", "width"), [(400, 600), (600, 400), (50, 500), (500, 50), (100, 100), (7, 3)])
@pytest.mark.parametrize("canvas", [(300, 200), (256, 256), (120, 400)], ids=str)
def test_fit_keeps_the_whole_image(height, width, canvas) -> None:
    """A solid green product on a magenta canvas: the content box is exactly the scaled, centred image."""
    green = np.zeros((height, width, 3), np.uint8)
    green[..., 1] = 200
    out, _ = fit_to_canvas(green, size=canvas, mode="fit", background="#ff00ff")
    content = np.any(out != MAGENTA, axis=2)
    box = _bbox(content)
    assert box == _expected_fit_box(width, height, *canvas)
    assert content.sum() == (box[2] - box[0]) * (box[3] - box[1])  # a solid rectangle, no pad inside
    assert box[0] == 0 or box[1] == 0  # it touches two opposite edges (fills one axis)


@pytest.mark.parametrize("name", ["coffee", "grace_hopper", "rocket"])
def test_fit_photo_content_is_the_resized_photo(name, photos) -> None:
    photo = photos[name]
    out, _ = fit_to_canvas(photo, size=(320, 320), mode="fit", background="#ff00ff")
    left, top, right, bottom = _expected_fit_box(photo.shape[1], photo.shape[0], 320, 320)
    expected = cv2.resize(photo, (right - left, bottom - top), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out[top:bottom, left:right], expected)
    outside = np.ones(out.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert (out[outside] == MAGENTA).all()


@pytest.mark.parametrize("name", ["coffee", "grace_hopper", "astronaut"])
@pytest.mark.parametrize("canvas", [(300, 200), (200, 300), (256, 256), (1000, 90)], ids=str)
def test_cover_fills_the_canvas_with_a_centre_crop(name, canvas, photos) -> None:
    photo = photos[name]
    height, width = photo.shape[:2]
    out, alpha = fit_to_canvas(photo, size=canvas, mode="cover", background="transparent")
    assert (alpha == 255).all()  # no pad anywhere
    scale = max(canvas[0] / width, canvas[1] / height)
    new_w, new_h = max(canvas[0], round(width * scale)), max(canvas[1], round(height * scale))
    flag = cv2.INTER_AREA if new_w <= width and new_h <= height else cv2.INTER_CUBIC
    resized = cv2.resize(photo, (new_w, new_h), interpolation=flag)
    x0, y0 = (new_w - canvas[0]) // 2, (new_h - canvas[1]) // 2
    np.testing.assert_array_equal(out, resized[y0 : y0 + canvas[1], x0 : x0 + canvas[0]])


def test_transparent_background_creates_alpha(photos) -> None:
    photo = photos["coffee"]  # 600 x 400 on 300 x 300: 300 x 200 content, 50 px pad above and below
    out, alpha = fit_to_canvas(photo, size=300, background="transparent")
    assert (alpha[50:250] == 255).all() and (alpha[:50] == 0).all() and (alpha[250:] == 0).all()
    assert (out[:50] == 0).all() and (out[250:] == 0).all()


@pytest.mark.parametrize("background", ["transparent", "#ff8800"])
@pytest.mark.parametrize(("canvas", "interp"), [((300, 200), cv2.INTER_CUBIC), ((64, 100), cv2.INTER_AREA)], ids=str)
def test_item_alpha_is_resized_with_the_image(background, canvas, interp, rgba_pack) -> None:
    rgb, alpha = rgba_pack  # 128 x 128 with a real matte
    out, out_alpha = fit_to_canvas(rgb, alpha, size=canvas, background=background)
    side = min(canvas)
    left, top = (canvas[0] - side) // 2, (canvas[1] - side) // 2
    np.testing.assert_array_equal(
        out_alpha[top : top + side, left : left + side], cv2.resize(alpha, (side, side), interpolation=interp)
    )
    np.testing.assert_array_equal(
        out[top : top + side, left : left + side], cv2.resize(rgb, (side, side), interpolation=interp)
    )
    pad = np.ones(out_alpha.shape, bool)
    pad[top : top + side, left : left + side] = False
    if background == "transparent":
        assert (out_alpha[pad] == 0).all() and (out[pad] == 0).all()
    else:
        assert (out_alpha[pad] == 255).all() and (out[pad] == (255, 136, 0)).all()


@pytest.mark.parametrize("mode", ["fit", "cover"])
def test_no_upscale_centres_a_small_image_unscaled(mode, rgba_pack) -> None:
    rgb, alpha = rgba_pack  # 128 x 128 on 300 x 200: left 86, top 36, padded in both modes
    out, out_alpha = fit_to_canvas(rgb, alpha, size=(300, 200), mode=mode, upscale=False, background="transparent")
    np.testing.assert_array_equal(out[36:164, 86:214], rgb)
    np.testing.assert_array_equal(out_alpha[36:164, 86:214], alpha)
    assert out_alpha[:36].max() == 0 and out_alpha[:, :86].max() == 0
    # With upscale (the default) the same image fills the height.
    up, _ = fit_to_canvas(rgb, size=(300, 200), mode="fit", background="#000")
    assert _bbox(np.any(up != 0, axis=2))[3] - _bbox(np.any(up != 0, axis=2))[1] > 190


def test_no_upscale_cover_crops_the_long_side_and_pads_the_short(photos) -> None:
    photo = photos["coffee"]  # 600 x 400 onto 300 x 500: never enlarged, so 300 of the width, 400 of 500 high
    out, alpha = fit_to_canvas(photo, size=(300, 500), mode="cover", upscale=False, background="transparent")
    np.testing.assert_array_equal(out[50:450], photo[:, 150:450])
    assert (alpha[50:450] == 255).all() and (alpha[:50] == 0).all() and (alpha[450:] == 0).all()


def test_stage_equals_function_and_keeps_inputs(rgba_pack) -> None:
    rgb, alpha = rgba_pack
    rgb_before, alpha_before = rgb.copy(), alpha.copy()
    params = FitParams.model_validate({"size": [300, 200], "mode": "cover", "background": "transparent"})
    (out,) = Fit(params)([Item(sku="pack", source="matplotlib", image=rgb, alpha=alpha)])
    image, out_alpha = fit_to_canvas(rgb, alpha, size=(300, 200), mode="cover", background="transparent")
    np.testing.assert_array_equal(out.image, image)
    np.testing.assert_array_equal(out.alpha, out_alpha)
    assert out.size == (300, 200)
    np.testing.assert_array_equal(rgb, rgb_before)
    np.testing.assert_array_equal(alpha, alpha_before)


@pytest.mark.parametrize(
    ("text", "rgb"),
    [("#ffffff", (255, 255, 255)), ("#FFF", (255, 255, 255)), ("#ff8800", (255, 136, 0)), ("#08f", (0, 136, 255))],
)
def test_colour_forms(text, rgb) -> None:
    assert parse_color_or_transparent(text) == rgb
    assert parse_color_or_transparent("Transparent") is None
    assert FitParams(size=10, background=text).background == text.lower()


@pytest.mark.parametrize("bad", ["red", "#12", "#12345", "#GGGGGG", "ffffff", "", "#ffffff80"])
def test_bad_background_names_value_and_forms(bad) -> None:
    with pytest.raises(ValidationError) as info:
        FitParams(size=10, background=bad)
    (error,) = info.value.errors()
    assert error["loc"] == ("background",)
    assert f"got {bad!r}" in error["msg"] and "'#RRGGBB', '#RGB' or 'transparent'" in error["msg"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": [300]}, "size"),
        ({"size": [300, 200, 3]}, "size"),
        ({"size": [300, -1]}, "size"),
        ({"size": "big"}, "size"),
        ({"size": 10, "mode": "contain"}, "mode"),
        ({"size": 10, "interpolation": "bilinear"}, "interpolation"),
        ({"size": 10, "upscale": "sometimes"}, "upscale"),
        ({"size": 10, "colour": "#fff"}, "colour"),
        ({}, "size"),
    ],
)
def test_params_reject_bad_values_and_unknown_keys(bad, field) -> None:
    with pytest.raises(ValidationError) as info:
        FitParams.model_validate(bad)
    assert all(error["loc"][0] == field for error in info.value.errors())


def test_size_forms() -> None:
    assert FitParams.model_validate({"size": 512}).size == 512
    assert FitParams.model_validate({"size": [300, 200]}).size == (300, 200)
