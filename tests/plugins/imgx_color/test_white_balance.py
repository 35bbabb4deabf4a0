"""White balance removes a known colour cast from real photos."""

from __future__ import annotations

import numpy as np
import pytest

from imgx_color import white_balance


def _mean_spread(image: np.ndarray) -> float:
    means = image.reshape(-1, 3).mean(axis=0)
    return float(means.max() - means.min())


def _near_white_chroma(image: np.ndarray, where: np.ndarray) -> float:
    pixels = image[where].astype(np.int16)
    return float((pixels.max(axis=1) - pixels.min(axis=1)).mean())


@pytest.mark.parametrize(("method", "min_drop"), [("gray_world", 0.70), ("learned", 0.70)])
def test_cast_channel_means_converge(method, min_drop, coffee, with_cast) -> None:
    cast = with_cast(coffee)  # (1.25, 1.0, 0.75): a strong warm cast
    before, after = _mean_spread(cast), _mean_spread(white_balance(cast, method))
    assert after < (1 - min_drop) * before, (method, before, after)  # measured: gray_world 154 -> 32, learned -> 23


@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_white_patch_makes_whites_neutral_again(name, photos, with_cast) -> None:
    clean = photos[name]
    whites = clean.min(axis=2) > 190  # the saucer / the spacesuit
    assert whites.mean() > 0.01
    cast = with_cast(clean, (1.0, 1.0, 0.75))
    before = _near_white_chroma(cast, whites)
    after = _near_white_chroma(white_balance(cast, "white_patch"), whites)
    assert after < 0.25 * before, (before, after)  # measured: coffee 81 -> 10, astronaut 62 -> 9


def test_white_patch_ignores_a_few_hot_pixels(coffee, with_cast) -> None:
    """A single-max white patch would take these pure-white specks as white and correct nothing."""
    cast = with_cast(coffee, (1.0, 1.0, 0.75))
    specked = cast.copy()
    rng = np.random.default_rng(0)
    flat = specked.reshape(-1, 3)
    flat[rng.choice(len(flat), size=len(flat) // 500, replace=False)] = 255  # 0.2 % hot pixels
    robust = white_balance(specked, "white_patch", percentile=99)
    clean = white_balance(cast, "white_patch", percentile=99)
    assert abs(robust[..., 2].mean() - clean[..., 2].mean()) < 2.0
    assert robust[..., 2].mean() > cast[..., 2].mean() + 15  # blue really was lifted
    naive = white_balance(specked, "white_patch", percentile=100)
    assert abs(naive[..., 2].mean() - cast[..., 2].mean()) < 1.0  # ... where the plain max does nothing


def test_gray_world_keeps_brightness_and_caps_gain(photos) -> None:
    chelsea = photos["chelsea"]
    out = white_balance(chelsea, "gray_world")
    assert abs(out.mean() - chelsea.mean()) < 2.0
    assert _mean_spread(out) < 1.5
    # A nearly single-coloured image cannot be pushed further than max_gain per channel.
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0], red[..., 1], red[..., 2] = 200, 40, 40
    capped = white_balance(red, "gray_world", max_gain=1.25)
    np.testing.assert_array_equal(capped[0, 0], [160, 50, 50])


def test_none_is_identity(coffee) -> None:
    assert white_balance(coffee, "none") is coffee
