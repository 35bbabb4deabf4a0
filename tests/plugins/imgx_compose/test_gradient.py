"""gradient: end pixels equal the end stops, stops land where placed, CSS angle convention, radial from the centre."""

from __future__ import annotations

import numpy as np
import pytest

from imgx.color import parse_color
from imgx_compose import gradient, gradient_positions

RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00ff00"


@pytest.mark.parametrize(("height", "width"), [(64, 96), (33, 17), (5, 3), (1, 40), (40, 1)])
@pytest.mark.parametrize(
    ("angle", "first", "last"),
    [
        (90, (slice(None), 0), (slice(None), -1)),  # left -> right: whole columns
        (270, (slice(None), -1), (slice(None), 0)),
        (180, (0, slice(None)), (-1, slice(None))),  # top -> bottom: whole rows
        (0, (-1, slice(None)), (0, slice(None))),
    ],
    ids=["90", "270", "180", "0"],
)
def test_axis_gradients_start_and_end_exactly_on_the_stops(height, width, angle, first, last) -> None:
    out = gradient(height, width, [RED, "#123456", BLUE], angle=angle)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    along = width if angle in (90, 270) else height
    if along == 1:  # a 1-pixel gradient line: every pixel is at position 0
        assert (out == parse_color(RED)).all()
        return
    assert (out[first] == parse_color(RED)).all()
    assert (out[last] == parse_color(BLUE)).all()


def test_diagonal_gradient_ends_on_opposite_corners() -> None:
    out = gradient(50, 80, [RED, BLUE], angle=135)  # towards the bottom right
    assert tuple(out[0, 0]) == parse_color(RED) and tuple(out[-1, -1]) == parse_color(BLUE)
    t = gradient_positions(50, 80, angle=135)
    assert 0.0 < t[0, -1] < 1.0 and 0.0 < t[-1, 0] < 1.0  # the other corners are in between
    assert np.all(np.diff(t, axis=0) >= 0) and np.all(np.diff(t, axis=1) >= 0)


def test_middle_stop_sits_at_its_position() -> None:
    out = gradient(3, 101, [RED, GREEN, BLUE], positions=[0.0, 0.2, 1.0], angle=90)
    assert tuple(out[1, 20]) == parse_color(GREEN)
    np.testing.assert_array_equal(out[:, 0], np.tile(parse_color(RED), (3, 1)))
    # halfway between the green stop (x = 20) and blue (x = 100): an even sRGB mix
    assert tuple(out[1, 60]) in {(0, 128, 127), (0, 127, 128)}
    assert tuple(out[1, 10]) in {(128, 127, 0), (127, 128, 0)}


def test_hard_stop_with_repeated_position() -> None:
    out = gradient(1, 100, ["#000", "#000", "#fff", "#fff"], positions=[0, 0.5, 0.5, 1], angle=90)
    assert (out[0, :49] == 0).all() and (out[0, 51:] == 255).all()


def test_radial_is_the_first_stop_at_the_centre_and_the_last_at_the_corners() -> None:
    out = gradient(31, 41, ["#ffffff", "#202020"], kind="radial")
    assert tuple(out[15, 20]) == (255, 255, 255)
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert tuple(out[corner]) == (32, 32, 32)
    distance = np.hypot(*np.meshgrid(np.arange(31) - 15, np.arange(41) - 20, indexing="ij"))
    # values fall monotonically with the distance from the centre (up to rounding)
    order = np.argsort(distance.ravel(), kind="stable")
    assert np.all(np.diff(out[..., 0].ravel()[order].astype(int)) <= 1)


def test_one_pixel_image() -> None:
    assert gradient(1, 1, [RED, BLUE]).shape == (1, 1, 3)
    assert tuple(gradient(1, 1, [RED, BLUE], kind="radial")[0, 0]) == parse_color(RED)


@pytest.mark.parametrize(
    ("colors", "positions", "words"),
    [
        (["#fff"], None, "two or more"),
        (["#fff", "white"], None, "#RRGGBB"),
        (["#fff", "#000"], [0.5, 0.2], "non-decreasing"),
        (["#fff", "#000"], [0.0, 0.5, 1.0], "one per colour"),
        (["#fff", "#000"], [0.0, 1.5], "0..1"),
    ],
)
def test_bad_stops_say_what_is_expected(colors, positions, words) -> None:
    with pytest.raises(ValueError, match=words):
        gradient(4, 4, colors, positions=positions)
