"""Real photos for the geometry tests, read-only, as the engine hands them to stages."""

from __future__ import annotations

import numpy as np
import pytest

from _support import frozen, load_photo, load_rgba_pack


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """``name -> (H, W, 3)`` uint8 RGB, read-only, at their shipped sizes: coffee 600 x 400 (landscape), astronaut
    512 x 512 (square), rocket 640 x 427, grace_hopper 512 x 600 (portrait), china 640 x 427."""
    return {name: frozen(load_photo(name)) for name in ("coffee", "astronaut", "rocket", "grace_hopper", "china")}


@pytest.fixture(scope="session")
def rgba_pack() -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's product-like RGBA sample (a gift pack, 128 x 128): ``(H, W, 3)`` uint8 RGB and its ``(H, W)`` uint8
    alpha, a real matte."""
    image, alpha = load_rgba_pack()
    return frozen(image), frozen(alpha)
