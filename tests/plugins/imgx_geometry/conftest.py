"""Real photos for the geometry tests, read-only, as the engine hands them to stages."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from matplotlib import cbook
from PIL import Image
from sklearn.datasets import load_sample_images


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """``name -> (H, W, 3)`` uint8 RGB, read-only, at their shipped sizes (up to 640 px)."""
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.asarray(Image.open(fh).convert("RGB"))
    china, _ = load_sample_images().images
    return {
        "coffee": _frozen(skimage.data.coffee()),  # 600 x 400, landscape
        "astronaut": _frozen(skimage.data.astronaut()),  # 512 x 512, square
        "rocket": _frozen(skimage.data.rocket()),  # 640 x 427
        "grace_hopper": _frozen(hopper),  # 512 x 600, portrait
        "china": _frozen(china),
    }


@pytest.fixture(scope="session")
def rgba_pack() -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's product-like RGBA sample (a gift pack, 128 x 128): ``(H, W, 3)`` uint8 RGB and its ``(H, W)`` uint8
    alpha, a real matte."""
    with cbook.get_sample_data("Minduka_Present_Blue_Pack.png") as fh:
        rgba = np.asarray(Image.open(fh).convert("RGBA"))
    return _frozen(rgba[..., :3]), _frozen(rgba[..., 3])
