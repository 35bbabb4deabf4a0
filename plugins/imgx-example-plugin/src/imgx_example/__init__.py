"""imgx-example-plugin: a minimal third-party imgx plugin, written against the public ``imgx`` API only.

imgx finds this module through the ``imgx`` entry point in ``pyproject.toml`` and calls its ``imgx_stages`` hook.
"""

from __future__ import annotations

from collections.abc import Sequence

import imgx

from .border import BorderParams, BorderStage, add_border, parse_hex_color

__all__ = ["BorderParams", "BorderStage", "add_border", "imgx_stages", "parse_hex_color"]


@imgx.hookimpl
def imgx_stages() -> Sequence[type[imgx.Stage]]:
    """The stages this plugin adds to recipes."""
    return [BorderStage]
