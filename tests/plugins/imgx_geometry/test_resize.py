"""geometry.resize: long side, short side, width, height or exact size; alpha resized the same way."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from imgx import Item
from imgx_geometry import Resize, ResizeParams, resize_image, target_size


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"long_side": 300}, {"coffee": (300, 200), "grace_hopper": (256, 300), "astronaut": (300, 300)}),
        ({"short_side": 100}, {"coffee": (150, 100), "grace_hopper": (100, 117), "astronaut": (100, 100)}),
        ({"width": 120}, {"coffee": (120, 80), "grace_hopper": (120, 141), "astronaut": (120, 120)}),
        ({"height": 120}, {"coffee": (180, 120), "grace_hopper": (102, 120), "astronaut": (120, 120)}),
        ({"width": 90, "height": 33}, {"coffee": (90, 33), "grace_hopper": (90, 33), "astronaut": (90, 33)}),
        ({"long_side": 1000}, {"coffee": (1000, 667), "grace_hopper": (853, 1000), "astronaut": (1000, 1000)}),
    ],
    ids=str,
)
def test_target_sizes_on_photos(kwargs, expected, photos) -> None:
    for name, size in expected.items():
        out, alpha = resize_image(photos[name], **kwargs)
        assert (out.shape[1], out.shape[0]) == size, name
        assert alpha is None


def test_auto_interpolation_is_area_down_and_cubic_up(photos) -> None:
    photo = photos["coffee"]
    down, _ = resize_image(photo, long_side=300)
    np.testing.assert_array_equal(down, cv2.resize(photo, (300, 200), interpolation=cv2.INTER_AREA))
    up, _ = resize_image(photo, long_side=900)
    np.testing.assert_array_equal(up, cv2.resize(photo, (900, 600), interpolation=cv2.INTER_CUBIC))
    lanczos, _ = resize_image(photo, long_side=900, interpolation="lanczos")
    np.testing.assert_array_equal(lanczos, cv2.resize(photo, (900, 600), interpolation=cv2.INTER_LANCZOS4))


def test_no_upscale_keeps_small_images(rgba_pack) -> None:
    rgb, alpha = rgba_pack  # 128 x 128
    out, out_alpha = resize_image(rgb, alpha, long_side=512, upscale=False)
    assert out is rgb and out_alpha is alpha
    assert target_size((128, 128), width=512, height=64, upscale=False) == (128, 64)
    assert target_size((600, 400), long_side=300, upscale=False) == (300, 200)


@pytest.mark.parametrize("kwargs", [{"long_side": 50}, {"long_side": 300}, {"width": 77, "height": 200}], ids=str)
def test_alpha_resized_consistently(kwargs, rgba_pack) -> None:
    rgb, alpha = rgba_pack
    out, out_alpha = resize_image(rgb, alpha, **kwargs)
    assert out_alpha.shape == out.shape[:2]
    size = (out.shape[1], out.shape[0])
    flag = cv2.INTER_AREA if size[0] <= 128 and size[1] <= 128 else cv2.INTER_CUBIC
    np.testing.assert_array_equal(out_alpha, cv2.resize(alpha, size, interpolation=flag))
    # Same geometry and interpolation as the image: resizing RGBA in one go gives the same planes (OpenCV's 4-channel
    # SIMD path may round 1 level differently).
    together = cv2.resize(np.dstack([rgb, alpha]), size, interpolation=flag).astype(np.int16)
    assert np.abs(together[..., :3] - out).max() <= 1
    assert np.abs(together[..., 3] - out_alpha).max() <= 1
    # The matte still covers the same fraction of the frame.
    assert abs((out_alpha > 127).mean() - (alpha > 127).mean()) < 0.03


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (1001, 17), (17, 1001)], ids=str)
def test_odd_sizes(shape, photos) -> None:
    image = np.ascontiguousarray(np.tile(photos["coffee"], (3, 2, 1))[: shape[0], : shape[1]])
    for kwargs in ({"long_side": 64}, {"short_side": 3}, {"width": 5, "height": 1}, {"height": 1}):
        out, _ = resize_image(image, **kwargs)
        assert out.ndim == 3 and min(out.shape[:2]) >= 1
    assert resize_image(image, long_side=64)[0].shape[:2] == target_size((shape[1], shape[0]), long_side=64)[::-1]


def test_stage_equals_function_and_keeps_inputs(rgba_pack) -> None:
    rgb, alpha = rgba_pack
    before = rgb.copy(), alpha.copy()
    (out,) = Resize(ResizeParams(long_side=200))([Item(sku="pack", source="matplotlib", image=rgb, alpha=alpha)])
    image, out_alpha = resize_image(rgb, alpha, long_side=200)
    np.testing.assert_array_equal(out.image, image)
    np.testing.assert_array_equal(out.alpha, out_alpha)
    np.testing.assert_array_equal(rgb, before[0])
    np.testing.assert_array_equal(alpha, before[1])


@pytest.mark.parametrize(
    "bad", [{}, {"long_side": 100, "short_side": 100}, {"long_side": 100, "width": 50}, {"upscale": False}]
)
def test_exactly_one_way(bad) -> None:
    with pytest.raises(ValidationError, match="expected exactly one of long_side, short_side, or width and/or height"):
        ResizeParams.model_validate(bad)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"long_side": 0}, "long_side"),
        ({"short_side": -3}, "short_side"),
        ({"width": "wide"}, "width"),
        ({"long_side": 10, "interpolation": "bicubic"}, "interpolation"),
        ({"long_side": 10, "longside": 5}, "longside"),
    ],
)
def test_params_name_the_field(bad, field) -> None:
    with pytest.raises(ValidationError) as info:
        ResizeParams.model_validate(bad)
    assert info.value.errors()[0]["loc"] == (field,)
