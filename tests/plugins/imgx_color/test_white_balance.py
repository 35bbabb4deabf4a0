"""White balance removes a known colour cast from real photos and from the demo catalog's studio shots (whose cast
and background colour are known), and ``auto`` leaves photos without a cast alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgx import Item
from imgx_color import WhiteBalance, white_balance
from imgx_color.white_balance import estimate_illuminant

CAST_NAMES = ("neutral", "warm", "cool", "green", "magenta", "cutout")


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


# --- auto: bright near-neutral pixels --------------------------------------------------------------------------------


@pytest.mark.parametrize("cast_name", CAST_NAMES)
def test_auto_neutralises_the_studio_background_of_every_cast(cast_name, catalog_shots, background_cast) -> None:
    """Residual cast of the background against its true colour, in % between channels. Measured (size 256): input
    warm 14-22, cool 16-23, green 15-16, magenta 14-25, neutral/cutout <= 0.8; after auto: warm <= 2.3, cool <= 3.9,
    green <= 0.9, magenta <= 1.7, neutral <= 2.9, cutout 3.3. What is left is the background's own tint (the true
    backgrounds are up to 3.4 % off grey, and auto makes them grey: against grey every shot is within 0.8 %)."""
    shots = [s for s in catalog_shots if s["cast_name"] == cast_name]
    assert shots
    for shot in shots:
        image, background, truth = shot["image"], shot["background"], shot["true_background"]
        out = white_balance(image, "auto")
        residual = background_cast(out, background, truth)
        assert residual < 5.0, (shot["sku"], residual)
        assert background_cast(out, background, (1.0, 1.0, 1.0)) < 1.5, shot["sku"]
        if cast_name not in ("neutral", "cutout"):
            assert residual < 0.3 * background_cast(image, background, truth), shot["sku"]


def test_auto_beats_gray_world_and_capped_white_patch_on_the_catalog(catalog_shots, background_cast) -> None:
    """gray_world tints light backgrounds with the complement of the product (worst 15.8 % measured); white patch
    (before its cap was fixed: 24.7 % on the under-exposed magenta shot) brightens and is worst on low-contrast
    shots (6.2 %). auto: worst 3.9 %, mean 1.9 %."""
    worst = {}
    for method in ("auto", "gray_world", "white_patch"):
        worst[method] = max(
            background_cast(white_balance(s["image"], method), s["background"], s["true_background"])
            for s in catalog_shots
        )
    assert worst["auto"] < 5.0 and worst["auto"] < worst["gray_world"] / 2 and worst["auto"] < worst["white_patch"]


@pytest.mark.parametrize(("name", "max_abs_diff"), [("coffee", 0.5), ("astronaut", 4.0)])
def test_auto_barely_changes_photos_without_a_cast(name, max_abs_diff, photos) -> None:
    """Measured: coffee is left as it is (too few near-neutral pixels: confidence 0); astronaut moves 2.4 grey levels
    on average (a ~3 % correction of its slightly warm whites), its mean Lab a*b* by 2.2. gray_world moves them by 37
    and 17 grey levels."""
    image = photos[name]
    out = white_balance(image, "auto")
    assert np.abs(out.astype(np.int16) - image).mean() <= max_abs_diff
    assert _mean_ab_shift(out, image) < 3.5


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "flower", "grace_hopper", "china"])
def test_auto_keeps_legitimately_dominant_colours(name, photos) -> None:
    """A warm drink, a ginger cat, a dusk sky, an orange flower: measured a*b* shift 0 (coffee, rocket, flower,
    grace_hopper: left alone), chelsea 2.3, china 1.0; gray_world shifts them by 8..37."""
    image = photos[name]
    assert _mean_ab_shift(white_balance(image, "auto"), image) < 3.5


@pytest.mark.parametrize(("name", "gains"), [("astronaut", (1.0, 1.0, 0.75)), ("astronaut", (0.85, 0.95, 1.0))])
def test_auto_removes_a_cast_from_a_real_photo(name, gains, photos, with_cast) -> None:
    clean = photos[name]
    whites = clean.min(axis=2) > 190
    cast = with_cast(clean, gains)
    before, after = _near_white_chroma(cast, whites), _near_white_chroma(white_balance(cast, "auto"), whites)
    assert after < 0.5 * before and after < _near_white_chroma(clean, whites) + 3, (before, after)
    # measured: 62 -> 8.2 and 25 -> 7.8 (the clean photo: 11.5)


def test_auto_leaves_an_image_without_near_neutral_pixels_as_it_is(photos) -> None:
    red = np.full((64, 48, 3), (200, 40, 40), np.uint8)
    assert estimate_illuminant(red) == (pytest.approx([1.0, 1.0, 1.0]), 0.0)
    assert white_balance(red, "auto") is red
    assert white_balance(photos["flower"], "auto") is photos["flower"]
    for empty in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)):
        assert white_balance(empty, "auto") is empty


def test_auto_caps_the_correction_keeping_its_direction() -> None:
    """A flat magenta-cast grey: fully corrected at the default cap; with a low cap every gain shrinks together."""
    grey = np.full((32, 32, 3), (200, 160, 190), np.uint8)
    np.testing.assert_allclose(white_balance(grey, "auto")[0, 0], [175, 175, 175], atol=1)  # its luma, 175.4
    capped = white_balance(grey, "auto", max_gain=1.05).astype(np.float64)[0, 0]
    gains = capped / (200, 160, 190)
    assert gains.max() <= 1.05 + 1 / 160 and gains.min() >= 1 / 1.05 - 1 / 160
    assert capped[0] > capped[2] > capped[1]  # still magenta, less so: the direction is kept


def test_auto_is_deterministic_and_keeps_luma(catalog_shots) -> None:
    image = next(s["image"] for s in catalog_shots if s["cast_name"] == "magenta")
    out = white_balance(image, "auto")
    np.testing.assert_array_equal(out, white_balance(image.copy(), "auto"))
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean()
    assert abs(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).mean() - luma) < 0.02 * luma  # no brightening, unlike white patch


def test_auto_stage_equals_function(catalog_shots) -> None:
    image = next(s["image"] for s in catalog_shots if s["cast_name"] == "cool")
    (out,) = WhiteBalance()([Item(sku="cool", source="demo", image=image)])  # auto is the stage default
    np.testing.assert_array_equal(out.image, white_balance(image, "auto"))
    assert not np.array_equal(out.image, image)


def test_white_patch_still_corrects_colour_when_its_brightening_is_capped() -> None:
    """An under-exposed magenta-cast grey needs gains (1.8, 2.3, 1.9). The old per-channel cap clipped them all to
    max_gain alike, which brightened and kept the cast (the demo's sku-0005 went pinker after enhance). Now the common
    brightening and the colour correction are capped separately."""
    dim = np.full((16, 16, 3), (140, 112, 133), np.uint8)
    out = white_balance(dim, "white_patch", max_gain=1.5)[0, 0].astype(int)
    assert out.max() - out.min() <= 2 and out.min() >= 200, out


def _mean_ab_shift(a: np.ndarray, b: np.ndarray) -> float:
    def ab(image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3)[:, 1:].astype(np.float64).mean(axis=0)

    return float(np.linalg.norm(ab(a) - ab(b)))
