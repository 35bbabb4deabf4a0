"""A marketplace test catalog built from real photos, each file with exactly one known violation, plus compliant ones.

The product is a real photo (scikit-image, matplotlib) composited as an opaque rectangle on a canvas; its mask is
known exactly and travels as the file's alpha (PNG/TIFF), as ``segment.product`` would give it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from _support import load_photo

WHITE = (255, 255, 255)


def product_on_canvas(
    photo: str | list[str],
    size: int = 1200,
    fill: float = 0.9,
    background: tuple[int, int, int] = WHITE,
    shift: int = 0,
    blur: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 alpha: the photo(s) side by side spanning ``fill`` of a square
    canvas, centred (moved ``shift`` px right), optionally blurred (the product only)."""
    names = [photo] if isinstance(photo, str) else photo
    gap = size // 60 if len(names) > 1 else 0
    each = (round(size * fill) - gap * (len(names) - 1)) // len(names)
    pieces = []
    for name in names:
        img = Image.fromarray(load_photo(name))
        scale = each / img.width
        img = img.resize((each, round(img.height * scale)), Image.Resampling.LANCZOS)
        if blur:
            img = img.filter(ImageFilter.GaussianBlur(blur))
        pieces.append(img)
    canvas = Image.new("RGB", (size, size), background)
    alpha = Image.new("L", (size, size), 0)
    x = (size - (each * len(pieces) + gap * (len(pieces) - 1))) // 2 + shift
    for piece in pieces:
        y = (size - piece.height) // 2
        canvas.paste(piece, (x, y))
        alpha.paste(255, (x, y, x + piece.width, y + piece.height))
        x += piece.width + gap
    return np.asarray(canvas), np.asarray(alpha)


def save_rgba(path: Path, rgb: np.ndarray, alpha: np.ndarray, **options: object) -> Path:
    Image.fromarray(np.dstack([rgb, alpha])).save(path, **options)
    return path


def build_catalog(folder: Path) -> Path:
    """Write the catalog (one known violation per file, see test_catalog.EXPECTED) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    save_rgba(folder / "ok-coffee.png", *product_on_canvas("coffee"))
    save_rgba(folder / "ok-rocket.png", *product_on_canvas("rocket", fill=0.92))
    save_rgba(folder / "ok-chelsea.tif", *product_on_canvas("chelsea", size=1000), compression="tiff_lzw")
    save_rgba(folder / "grey-background.png", *product_on_canvas("coffee", background=(236, 236, 236)))
    save_rgba(folder / "fill-50.png", *product_on_canvas("coffee", fill=0.5))
    save_rgba(folder / "small-600.png", *product_on_canvas("coffee", size=600))
    rgb, alpha = product_on_canvas("astronaut", fill=0.88)
    framed = rgb.copy()
    framed[:20], framed[-20:], framed[:, :20], framed[:, -20:] = 40, 40, 40, 40
    save_rgba(folder / "border-20.png", framed, alpha)
    save_rgba(folder / "cropped.png", *product_on_canvas("coffee", shift=100))
    save_rgba(folder / "two-products.png", *product_on_canvas(["coffee", "chelsea"]))
    save_rgba(folder / "blurred.png", *product_on_canvas("coffee", blur=4.0))
    rgb, _ = product_on_canvas("rocket")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95, subsampling=0)
    save_rgba(folder / "too-large.tif", *product_on_canvas("chelsea", size=2400))  # uncompressed: 23 MB > 16 MB
    return folder


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("compliance") / "catalog")


@pytest.fixture
def compose():
    """:func:`product_on_canvas`, for tests that build their own images."""
    return product_on_canvas
