"""Real photos that ship with scientific packages: loaders for the sample catalogs and the segmentation test set.

Every loader returns the photo as a numpy array (``(H, W, 3)`` uint8 RGB, ``(H, W, 4)`` RGBA for a cut-out, ``(H, W)``
uint8 for a grey texture) and imports its package only when called: scikit-image is a dependency of imgx, matplotlib
and scikit-learn are the ``demo`` extra (``pip install 'imgx[demo]'``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

__all__ = ["LABEL_PHOTOS", "MATERIAL_TEXTURES", "REAL_CUTOUTS", "REAL_PHOTOS", "resize_long_side", "try_load"]


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if isinstance(image, tuple) else image  # stereo_motorcycle -> (left, right, disparity)

    return load


def _matplotlib(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook

        with cbook.get_sample_data(filename) as file:
            return np.asarray(Image.open(file).convert("RGBA" if filename.endswith(".png") else "RGB"))

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


#: Colour photos that load offline (scikit-image's ``lily``, ``skin`` and ``kidney`` need a pooch download: not used).
REAL_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "motorcycle": _skimage("stereo_motorcycle"),
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}
#: A real RGBA product cut-out (matplotlib's gift box) whose alpha is a ground-truth matte.
REAL_CUTOUTS: dict[str, Callable[[], np.ndarray]] = {"present": _matplotlib("Minduka_Present_Blue_Pack.png")}
#: Real grey textures for product materials and colour photos for product labels.
MATERIAL_TEXTURES: dict[str, Callable[[], np.ndarray]] = {
    "gravel": _skimage("gravel"),
    "brick": _skimage("brick"),
    "grass": _skimage("grass"),
}
LABEL_PHOTOS = ("coffee", "china", "flower", "chelsea", "astronaut", "rocket")


def try_load(load: Callable[[], np.ndarray]) -> tuple[np.ndarray | None, str | None]:
    try:
        return np.ascontiguousarray(load()), None
    except Exception as exc:  # a missing package, or a sample that needs a download
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    w, h = image.size
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if image.mode == "RGBA":  # resample premultiplied so transparent pixels do not bleed into the edges
        return image.convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    return image.resize(size, Image.Resampling.LANCZOS)
