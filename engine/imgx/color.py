"""Colour values as recipes and stages write them: ``"#RRGGBB"`` / ``"#RGB"`` strings to ``(r, g, b)`` tuples.

One parser for the whole engine (recipe validation, the encoder's background, every plugin's colour parameters), so
a colour a recipe accepts means the same pixels in every stage.
"""

from __future__ import annotations

import re

__all__ = ["COLOR_FORMS", "TRANSPARENT", "parse_color", "parse_color_or_transparent"]

#: The forms :func:`parse_color` accepts, for messages and parameter descriptions.
COLOR_FORMS = "'#RRGGBB' or '#RGB', e.g. '#FFFFFF'"
#: The word :func:`parse_color_or_transparent` reads as "no colour: keep an alpha channel".
TRANSPARENT = "transparent"

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_color(value: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` or ``"#RGB"`` (case-insensitive, surrounding spaces ignored) -> ``(r, g, b)`` ints in 0..255.

    :raises ValueError: anything else (names like ``"white"`` included), with the forms it accepts.
    """
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _HEX.fullmatch(text):
        raise ValueError(f"got {value!r} for a colour; expected {COLOR_FORMS}")
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def parse_color_or_transparent(value: str) -> tuple[int, int, int] | None:
    """A background that may be see-through: ``"transparent"`` (any case) -> ``None``, a colour as
    :func:`parse_color` reads it -> ``(r, g, b)``.

    :raises ValueError: anything else, naming the three forms.
    """
    if isinstance(value, str) and value.strip().lower() == TRANSPARENT:
        return None
    try:
        return parse_color(value)
    except ValueError:
        raise ValueError(f"got {value!r} for a colour; expected '#RRGGBB', '#RGB' or '{TRANSPARENT}'") from None
