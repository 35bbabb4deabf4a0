"""Real photos and the demo catalog's studio shots (with their ground truth) for the colour-stage tests, downscaled
(the effects do not need full size) and read-only, as the engine hands them to stages."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from _support import frozen, load_photo, load_rgba_pack


def _small(image: np.ndarray, long_side: int = 320) -> np.ndarray:
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return frozen(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """``name -> (H, W, 3)`` uint8 RGB, read-only, long side 320."""
    names = ("coffee", "astronaut", "chelsea", "rocket", "grace_hopper", "china", "flower")
    return {name: _small(load_photo(name)) for name in names}


@pytest.fixture(scope="session")
def coffee(photos: dict[str, np.ndarray]) -> np.ndarray:
    return photos["coffee"]


@pytest.fixture(scope="session")
def rgba_pack() -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's product-like RGBA sample (a gift pack): ``(H, W, 3)`` uint8 RGB and its ``(H, W)`` uint8 alpha."""
    image, alpha = load_rgba_pack()
    return frozen(image), frozen(alpha)


@pytest.fixture(scope="session")
def with_cast():
    """Multiply the channels by gains (a colour cast), saturating: ``(H, W, 3)`` uint8 RGB -> same."""

    def cast(image: np.ndarray, gains: tuple[float, float, float] = (1.25, 1.0, 0.75)) -> np.ndarray:
        return frozen(np.clip(image.astype(np.float32) * np.float32(gains), 0, 255).astype(np.uint8))

    return cast


@pytest.fixture(scope="session")
def catalog_shots(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The demo catalog's studio shots with their ground truth (small: 12 synthetic shots, long side 256): per shot
    ``sku``, ``cast_name`` (``neutral``, ``warm``, ..., ``cutout`` for the real gift box on a neutral background),
    ``image`` ``(H, W, 3)`` uint8 RGB read-only, ``background`` ``(H, W)`` bool (outside the product mask, eroded away
    from its edge) and ``true_background`` (RGB before the cast)."""
    import imgx.samples

    directory = tmp_path_factory.mktemp("demo-catalog")
    shots = []
    for entry in imgx.samples.build_demo_catalog(directory, synthetic=12, size=256):
        if entry.mask_path is None:
            continue
        mask = cv2.imread(str(entry.mask_path), cv2.IMREAD_GRAYSCALE)
        background = cv2.erode((mask < 8).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        shots.append({"sku": entry.sku, "image": frozen(cv2.cvtColor(cv2.imread(str(entry.path)), cv2.COLOR_BGR2RGB)),
                      "background": background})  # fmt: skip
    truth = {r["sku"]: r["truth"] for r in json.loads((directory / "_truth" / "catalog.json").read_text())["images"]}
    for shot in shots:
        shot["cast_name"] = truth[shot["sku"]].get("cast_name", "cutout")
        shot["true_background"] = tuple(truth[shot["sku"]]["background"])
    return shots


@pytest.fixture(scope="session")
def background_cast():
    """The colour cast left on a studio background, in percent: the spread (max / min - 1) of the background's mean
    channel ratios to ``reference`` (its true colour: 0 after a perfect correction; ``(1, 1, 1)``: how far from grey
    it is)."""

    def spread(image: np.ndarray, background: np.ndarray, reference: tuple[float, float, float]) -> float:
        ratios = image[background].reshape(-1, 3).mean(axis=0) / np.asarray(reference)
        return float(100.0 * (ratios.max() / ratios.min() - 1.0))

    return spread
