"""The conversions around ``infer_images``: uint8 <-> 0..1 float32, the working size, padding tiny images."""

from __future__ import annotations

import numpy as np

from _support import real_photo
from imgx.runtime import pad_min, to_float, to_uint8, working_size


def test_float_and_back_is_lossless_and_rounding_is_half_up_after_clipping() -> None:
    image = real_photo("coffee", 64)
    x = to_float(image)
    assert x.dtype == np.float32 and float(x.max()) <= 1.0 and np.array_equal(to_uint8(x), image)
    y = np.array([[[-0.1, 0.5 / 255, 127.5 / 255], [254.49 / 255, 1.0, 1.3]]], np.float32)
    assert to_uint8(y).tolist() == [[[0, 1, 128], [254, 255, 255]]]


def test_working_size_scales_only_the_images_over_max_side() -> None:
    assert working_size(400, 600, None) == working_size(400, 600, 600) == (400, 600)
    assert working_size(1500, 3000, 1024) == (512, 1024)
    assert working_size(5000, 3, 1024) == (1024, 1)


def test_pad_min_mirrors_up_to_the_minimum_and_leaves_large_images_alone() -> None:
    photo = to_float(real_photo("astronaut", 48))
    assert pad_min(photo, 32) is photo
    tiny = photo[:5, :3]
    padded = pad_min(tiny, 32)
    assert padded.shape == (32, 32, 3) and np.array_equal(padded[:5, :3], tiny)
    assert np.array_equal(padded[5, :3], tiny[3])  # mirrored, not repeated
    dot = pad_min(photo[:1, :1], 4)
    assert dot.shape == (4, 4, 3) and (dot == photo[0, 0]).all()
