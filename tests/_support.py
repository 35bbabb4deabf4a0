"""Helpers shared by the tests (importable as ``_support``; fixtures live in conftest.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# Real photos shipped with scikit-image, matplotlib and scikit-learn; small so the suite stays fast on 2 cores.
REAL_PHOTOS = ("coffee", "astronaut", "chelsea", "rocket", "motorcycle", "grace_hopper", "china", "flower")


def load_photo(name: str) -> np.ndarray:
    """A real photo at its shipped size, ``(H, W, 3)`` uint8 RGB: scikit-image's ``coffee``, ``astronaut``,
    ``chelsea``, ``rocket``, ``motorcycle``; matplotlib's ``grace_hopper``; scikit-learn's ``china``, ``flower``."""
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        images = load_sample_images()
        return images.images[[Path(f).stem for f in images.filenames].index(name)]
    from skimage import data

    return data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()


def load_rgba_pack() -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's product-like RGBA sample (a gift pack, 128 x 128): ``(H, W, 3)`` uint8 RGB and its ``(H, W)``
    uint8 alpha, a real matte."""
    from matplotlib import cbook

    with cbook.get_sample_data("Minduka_Present_Blue_Pack.png") as handle:
        rgba = np.asarray(Image.open(handle).convert("RGBA"))
    return rgba[..., :3], rgba[..., 3]


def frozen(array: np.ndarray) -> np.ndarray:
    """A contiguous read-only copy, as the engine hands images to stages."""
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def real_photo(name: str, long_side: int = 160) -> np.ndarray:
    """A real photo ``(H, W, 3)`` uint8 RGB, resized (Lanczos) so its long side is ``long_side``."""
    image = Image.fromarray(load_photo(name))
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def write_recipe(folder: Path, body: dict[str, Any] | str, name: str = "recipe.yaml") -> Path:
    """Write a recipe (a dict or YAML text) into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    text = textwrap.dedent(body) if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def basic_recipe(catalog: Path, out: Path, **execution: Any) -> dict[str, Any]:
    """The demo's two-stage DAG (enhance -> square) over ``catalog`` into ``out``, PNG so bytes compare exactly."""
    return {
        "version": 1,
        "name": "test",
        "input": {"path": str(catalog), "pattern": "**/*.jpg"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 3, **execution},
        "stages": [
            {"id": "enhanced", "uses": "color.enhance", "with": {"white_balance": "gray_world", "saturation": 1.1}},
            {"id": "square", "uses": "geometry.fit", "needs": ["enhanced"], "with": {"size": 96}},
        ],
        "outputs": ["enhanced", "square"],
    }
