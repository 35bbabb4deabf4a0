"""imgx.color: the one colour parser of recipes, the encoder and every plugin."""

from __future__ import annotations

import pytest

import imgx.recipe
from imgx.color import parse_color, parse_color_or_transparent


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("#ffffff", (255, 255, 255)),
        ("#FFF", (255, 255, 255)),
        ("#000", (0, 0, 0)),
        ("#ff8800", (255, 136, 0)),
        ("#08f", (0, 136, 255)),
        ("#A1b2C3", (161, 178, 195)),
        ("  #e8e8e8\n", (232, 232, 232)),
    ],
)
def test_parse_color_reads_both_hex_forms_in_any_case(text, rgb) -> None:
    assert parse_color(text) == rgb
    assert all(type(c) is int for c in parse_color(text))
    assert parse_color_or_transparent(text) == rgb


@pytest.mark.parametrize("value", ["white", "#ffff", "#fffffff", "ffffff", "#ggg", "", "# fff", "#12345", 255, None])
def test_parse_color_rejects_anything_else_naming_the_forms(value) -> None:
    with pytest.raises(
        ValueError, match=rf"^got {value!r} for a colour; expected '#RRGGBB' or '#RGB', e\.g\. '#FFFFFF'$"
    ):
        parse_color(value)


@pytest.mark.parametrize("text", ["transparent", "Transparent", " TRANSPARENT "])
def test_transparent_is_none(text) -> None:
    assert parse_color_or_transparent(text) is None


@pytest.mark.parametrize("value", ["none", "clear", "#12", 0])
def test_parse_color_or_transparent_names_all_three_forms(value) -> None:
    with pytest.raises(ValueError, match=rf"^got {value!r} for a colour; expected '#RRGGBB', '#RGB' or 'transparent'$"):
        parse_color_or_transparent(value)
    with pytest.raises(ValueError):
        parse_color("transparent")


def test_the_recipe_layer_re_exports_the_same_parser() -> None:
    assert imgx.recipe.parse_color is parse_color
