"""The standard set every colour stage passes: function == stage, odd sizes, alpha carried, inputs untouched, params
validated, discovered through the entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import imgx
from imgx import Item, Stage
from imgx.registry import load_registry
from imgx_color import (
    STAGES,
    Contrast,
    Denoise,
    Enhance,
    EnhanceParams,
    Gamma,
    Saturation,
    Sharpen,
    WhiteBalance,
    adjust_gamma,
    adjust_saturation,
    auto_contrast,
    denoise,
    enhance,
    unsharp_mask,
    white_balance,
)

# (stage class, with: params, the same work as a plain function call); params chosen so that every op does work.
CASES: list[tuple[type[Stage], dict[str, Any], Callable[[np.ndarray], np.ndarray]]] = [
    (WhiteBalance, {"method": "gray_world"}, lambda im: white_balance(im, "gray_world")),
    (
        WhiteBalance,
        {"method": "white_patch", "percentile": 98},
        lambda im: white_balance(im, "white_patch", percentile=98),
    ),
    (WhiteBalance, {"method": "learned"}, lambda im: white_balance(im, "learned")),
    (Contrast, {"clip_limit": 3.0, "tile_grid": 4}, lambda im: auto_contrast(im, clip_limit=3.0, tile_grid=4)),
    (Gamma, {"gamma": 1.8}, lambda im: adjust_gamma(im, 1.8)),
    (Saturation, {"saturation": 1.3, "vibrance": 0.4}, lambda im: adjust_saturation(im, 1.3, 0.4)),
    (Saturation, {"saturation": 0.7}, lambda im: adjust_saturation(im, 0.7)),
    (Sharpen, {"amount": 0.8, "radius": 1.5, "threshold": 3}, lambda im: unsharp_mask(im, 0.8, 1.5, 3)),
    (Denoise, {"strength": 8, "search_window": 11}, lambda im: denoise(im, 8, search_window=11)),
    (Denoise, {"strength": 8, "method": "bilateral"}, lambda im: denoise(im, 8, "bilateral")),
    (Enhance, {}, lambda im: enhance(im)),
    (
        Enhance,
        {"white_balance": "gray_world", "auto_contrast": True, "saturation": 1.1, "denoise": 5, "gamma": 1.2},
        lambda im: enhance(im, EnhanceParams(white_balance="gray_world", saturation=1.1, denoise=5, gamma=1.2)),
    ),
]
IDS = [f"{cls.name}-{i}" for i, (cls, _, _) in enumerate(CASES)]


def _run(cls: type[Stage], params: dict[str, Any], item: Item) -> Item:
    stage = cls(cls.Params.model_validate(params))
    (out,) = stage([item])
    return out


@pytest.mark.parametrize(("cls", "params", "function"), CASES, ids=IDS)
def test_stage_equals_function_and_keeps_input(cls, params, function, coffee) -> None:
    before = coffee.copy()
    item = Item(sku="coffee", source="skimage:coffee", image=coffee)
    out = _run(cls, params, item)
    expected = function(coffee)
    assert out.image.shape == coffee.shape and out.image.dtype == np.uint8
    np.testing.assert_array_equal(out.image, expected)
    assert not np.array_equal(out.image, coffee), "params were chosen so that the op changes the photo"
    np.testing.assert_array_equal(coffee, before)
    assert out.sku == item.sku and out.source == item.source and out.alpha is None


@pytest.mark.parametrize(("cls", "params", "function"), CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (1001, 17), (17, 1001), (2, 2)])
def test_odd_sizes_keep_shape(cls, params, function, shape, coffee) -> None:
    height, width = shape
    # A real-photo crop, tiled where the photo is smaller than the shape.
    reps = (-(-height // coffee.shape[0]), -(-width // coffee.shape[1]), 1)
    image = np.tile(coffee, reps)[:height, :width].copy()
    image.flags.writeable = False
    out = _run(cls, params, Item(sku="odd", source="mem", image=image))
    assert out.image.shape == (height, width, 3) and out.image.dtype == np.uint8


@pytest.mark.parametrize(("cls", "params", "function"), CASES, ids=IDS)
def test_alpha_carried_through_unchanged(cls, params, function, rgba_pack) -> None:
    rgb, alpha = rgba_pack
    out = _run(cls, params, Item(sku="pack", source="matplotlib:Minduka_Present_Blue_Pack.png", image=rgb, alpha=alpha))
    assert out.alpha is alpha
    assert out.image.shape == rgb.shape


def test_functions_reject_wrong_layout(coffee) -> None:
    for bad in (coffee[..., 0], coffee.astype(np.float32), np.dstack([coffee, coffee[..., :1]])):
        for function in (
            lambda im: white_balance(im),
            auto_contrast,
            lambda im: adjust_gamma(im, 2.0),
            lambda im: adjust_saturation(im, 2.0),
            unsharp_mask,
            denoise,
            enhance,
        ):
            with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB array"):
                function(bad)


@pytest.mark.parametrize("cls", STAGES, ids=[cls.name for cls in STAGES])
def test_params_reject_unknown_keys(cls) -> None:
    with pytest.raises(ValidationError, match="strenght"):
        cls.Params.model_validate({"strenght": 1})


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (WhiteBalance, {"method": "grey_world"}),
        (WhiteBalance, {"percentile": 101}),
        (WhiteBalance, {"max_gain": 0.5}),
        (Contrast, {"clip_limit": 0}),
        (Contrast, {"tile_grid": 0}),
        (Gamma, {"gamma": 0}),
        (Gamma, {"gamma": "bright"}),
        (Saturation, {"saturation": -0.1}),
        (Saturation, {"vibrance": 2}),
        (Sharpen, {"amount": -1}),
        (Sharpen, {"radius": 0}),
        (Sharpen, {"threshold": 256}),
        (Denoise, {"strength": -1}),
        (Denoise, {"method": "median"}),
        (Denoise, {"window": 8}),
        (Denoise, {"search_window": 20}),
        (Enhance, {"white_balance": "shades_of_gray"}),
        (Enhance, {"saturation": 9}),
        (Enhance, {"sharpen": -0.5}),
        (Enhance, {"auto_contrast": "maybe"}),
    ],
    ids=lambda v: v.name if isinstance(v, type) else next(iter(v)),
)
def test_params_reject_bad_values_naming_the_field(cls, bad) -> None:
    (field,) = bad
    with pytest.raises(ValidationError, match=field) as info:
        cls.Params.model_validate(bad)
    assert info.value.errors()[0]["loc"] == (field,)


def test_odd_window_message_says_how_to_fix() -> None:
    with pytest.raises(ValidationError, match="got 8; expected an odd number of pixels"):
        Denoise.Params(window=8)


def test_demo_recipe_params_and_defaults() -> None:
    params = Enhance.Params.model_validate({"white_balance": "gray_world", "auto_contrast": True, "saturation": 1.1})
    assert (params.white_balance, params.auto_contrast, params.saturation) == ("gray_world", True, 1.1)
    for cls in STAGES:
        cls()  # every stage builds with its defaults
        described = cls.describe()
        assert described["summary"] and all(p["description"] for p in described["params"])


def test_discovered_through_entry_points() -> None:
    registry = load_registry()
    assert not [f for f in registry.failures if "color" in f.plugin]
    for cls in STAGES:
        assert registry.get_stage(cls.name) is cls
        assert registry.stage_plugin(cls.name).startswith("color")
    assert registry.get_stage("color.enhance") is Enhance
    assert imgx.Stage in Enhance.__mro__
