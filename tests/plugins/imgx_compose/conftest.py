"""Real product cut-outs with ground-truth masks for the compose tests, read-only as the engine hands them over.

- ``pack``: matplotlib's gift-box RGBA sample (128 x 128); its alpha is a real matte with soft edges.
- ``pack_on_photo``: the gift box composited onto a real photo (coffee), 160 x 120, with the matte as the mask:
  what ``segment.product`` hands to ``compose.background`` on a catalog photo.
- ``demo_shots``: synthetic product shots of :mod:`imgx.samples` (studio background, shadow) with their known masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import frozen, load_rgba_pack, real_photo
from imgx.samples import build_demo_catalog


@pytest.fixture(scope="session")
def pack() -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 alpha of the gift box, 128 x 128."""
    image, alpha = load_rgba_pack()
    return frozen(image), frozen(alpha)


@pytest.fixture(scope="session")
def pack_on_photo(pack) -> tuple[np.ndarray, np.ndarray]:
    """The gift box (scaled to 80 px) pasted at (50, 25) onto coffee (160 x 107 -> padded to 160 x 120); its mask."""
    image, alpha = pack
    small = Image.fromarray(np.dstack([image, alpha]), "RGBA").convert("RGBa").resize((80, 80), Image.LANCZOS)
    rgba = np.asarray(small.convert("RGBA"))
    photo = np.zeros((120, 160, 3), np.uint8)
    coffee = real_photo("coffee", 160)
    photo[: coffee.shape[0]] = coffee
    photo[coffee.shape[0] :] = coffee[-1]
    mask = np.zeros((120, 160), np.uint8)
    mask[25:105, 50:130] = rgba[..., 3]
    a = rgba[..., 3:].astype(np.float32) / 255.0
    region = photo[25:105, 50:130].astype(np.float32)
    photo[25:105, 50:130] = np.clip(region + a * (rgba[..., :3] - region) + 0.5, 0, 255).astype(np.uint8)
    return frozen(photo), frozen(mask)


@pytest.fixture(scope="session")
def demo_shots(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[np.ndarray, np.ndarray]]:
    """Four synthetic product shots (long side 96..128 px, mixed aspect ratios) and their ground-truth masks."""
    folder: Path = tmp_path_factory.mktemp("compose-demo")
    shots = []
    for entry in build_demo_catalog(folder, synthetic=4, size=128):
        if entry.kind == "synthetic" and entry.mask_path is not None:
            image = np.asarray(Image.open(entry.path).convert("RGB"))
            mask = np.asarray(Image.open(entry.mask_path).convert("L"))
            shots.append((frozen(image), frozen(mask)))
    assert len(shots) == 4
    return shots
