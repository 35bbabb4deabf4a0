"""Textures for synthetic product shots: real material textures and photo labels, loaded once."""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

from .photos import LABEL_PHOTOS, MATERIAL_TEXTURES, REAL_PHOTOS, try_load

__all__ = ["Textures", "load_textures", "noise_tile"]


@dataclasses.dataclass(frozen=True)
class Textures:
    """Textures of the synthetic product shots (read-only arrays, shared between callers).

    :param materials: grey material textures, each ``(T, T)`` float32 with zero mean and unit std.
    :param labels: photo labels, each ``(T, T, 3)`` float32 RGB in [0, 1] (a centre square crop of a real photo).
    :param names: the source of each material, then of each label (``"gravel"``, ``"coffee"``, ...; ``"procedural-*"``
        for a fallback).
    """

    materials: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    names: tuple[str, ...]


@functools.lru_cache(maxsize=2)
def load_textures(tile: int = 512) -> Textures:
    """The real material textures (:data:`MATERIAL_TEXTURES`) and photo labels (:data:`LABEL_PHOTOS`) at ``tile`` x
    ``tile`` pixels, loaded once per ``tile``; procedural noise and stripes stand in where the photo packages are
    missing, so the result is never empty."""
    names = []
    materials = []
    for name, load in MATERIAL_TEXTURES.items():
        image, _ = try_load(load)
        if image is None:
            continue
        gray = cv2.resize(image.astype(np.float32), (tile, tile), interpolation=cv2.INTER_AREA)
        materials.append(((gray - gray.mean()) / max(float(gray.std()), 1e-6)).astype(np.float32))
        names.append(name)
    labels = []
    for name in LABEL_PHOTOS:
        image, _ = try_load(REAL_PHOTOS[name])
        if image is None:
            continue
        h, w = image.shape[:2]
        side = min(h, w)
        crop = image[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side, :3]
        labels.append(cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
        names.append(name)
    rng = np.random.default_rng(20240601)
    if not materials:
        noise = cv2.GaussianBlur(rng.standard_normal((tile, tile), dtype=np.float32), (0, 0), 2.0)
        materials.append(noise / noise.std())
        names.append("procedural-noise")
    if not labels:
        stripes = np.linspace(0, 6 * np.pi, tile, dtype=np.float32)
        hue = 0.5 + 0.4 * np.sin(stripes[None, :, None] + np.array([0, 2.1, 4.2], np.float32))
        labels.append(np.broadcast_to(hue, (tile, tile, 3)).copy())
        names.append("procedural-stripes")
    for array in (*materials, *labels):
        array.setflags(write=False)  # cached and shared: nobody may change another caller's textures
    return Textures(tuple(materials), tuple(labels), tuple(names))


@functools.lru_cache(maxsize=4)
def noise_tile(height: int, width: int) -> np.ndarray:
    """Sensor-like noise, ``(H, W, 3)`` float32 with std 1, reused (rolled) across images to keep builds fast."""
    return np.random.default_rng(7).standard_normal((height, width, 3), dtype=np.float32)
