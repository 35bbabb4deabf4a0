"""``center_fit``: the fill geometry.center reaches and why it falls short, the numbers it writes to the ledger."""

from __future__ import annotations

import numpy as np
import pytest

from _support import real_photo
from imgx_geometry.center import center_fit, center_product


def test_a_small_source_is_held_back_by_the_enlargement_cap() -> None:
    fit = center_fit((300, 200), size=1600, fill=0.85, max_upscale=2.0)
    assert fit.canvas == (1600, 1600) and fit.scale == 2.0 and fit.limited_by == "max_upscale"
    assert fit.fill == pytest.approx(600 / 1600)
    shrunk = center_fit((300, 200), size=1600, fill=0.85, max_upscale=2.0, min_size=1000)
    assert shrunk.canvas == (1000, 1000) and shrunk.fill == pytest.approx(0.6) and shrunk.limited_by == "max_upscale"


def test_a_large_source_reaches_its_fill_and_a_margin_can_stop_it() -> None:
    fit = center_fit((1500, 1000), size=1600, fill=0.85)
    assert fit.fill == pytest.approx(0.85) and fit.limited_by == ""
    tight = center_fit((1500, 1000), size=1000, fill=1.0, margin=100)
    assert tight.fill == pytest.approx(0.8) and tight.limited_by == "margin"


def test_center_product_uses_the_same_canvas() -> None:
    image = np.ascontiguousarray(real_photo("coffee", 120))
    out, _ = center_product(image, size=600, fill=0.85, min_size=400)
    fit = center_fit((image.shape[1], image.shape[0]), size=600, fill=0.85, min_size=400)
    assert (out.shape[1], out.shape[0]) == fit.canvas
