"""Synthetic product shots with exact ground truth: shape, mask, studio background, colour cast and exposure."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .photos import resize_long_side
from .textures import Textures, noise_tile

__all__ = ["SHAPES", "Shot", "add_shadow", "composite_cutout", "render_product_shot", "studio_background"]

SHAPES = ("bottle", "box", "shoe", "mug", "ball", "bag")
_SHAPE_ASPECT = {"bottle": 0.4, "box": 0.8, "shoe": 2.1, "mug": 1.0, "ball": 1.0, "bag": 0.95}
_CASTS = {
    "neutral": (1.0, 1.0, 1.0),
    "warm": (1.0, 0.9, 0.72),
    "cool": (0.78, 0.9, 1.0),
    "green": (0.85, 1.0, 0.82),
    "magenta": (1.0, 0.8, 0.95),
}
_EXPOSURES = ("normal", "under", "low_contrast")
_PRODUCT_COLOURS = (
    (0.80, 0.12, 0.14),
    (0.10, 0.35, 0.75),
    (0.95, 0.75, 0.10),
    (0.15, 0.55, 0.25),
    (0.20, 0.20, 0.22),
    (0.85, 0.45, 0.15),
    (0.55, 0.25, 0.60),
    (0.90, 0.88, 0.82),
)


def _rounded_poly(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    r = min(r, (x1 - x0) / 2, (y1 - y0) / 2)
    corners = ((x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180), (x1 - r, y0 + r, 270))
    points = []
    for cx, cy, start in corners:
        angles = np.deg2rad(np.linspace(start, start + 90, 8))
        points.extend(zip(cx + r * np.cos(angles), cy + r * np.sin(angles), strict=True))
    return np.array(points)


def _fill(mask: np.ndarray, polygon: np.ndarray | Sequence[Sequence[float]], value: int = 255) -> None:
    cv2.fillPoly(mask, [np.round(np.asarray(polygon) * 16).astype(np.int32)], value, cv2.LINE_AA, shift=4)


def _ellipse(mask: np.ndarray, cx: float, cy: float, rx: float, ry: float, *, value: int = 255, thickness: int = -1,
             start: float = 0, end: float = 360) -> None:  # fmt: skip
    center = (round(cx * 16), round(cy * 16))
    axes = (max(1, round(rx * 16)), max(1, round(ry * 16)))
    cv2.ellipse(mask, center, axes, 0, start, end, value, thickness, cv2.LINE_AA, shift=4)


def _draw_shape(
    shape: str, w: float, h: float
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float] | None]:
    """Silhouette ``(h, w)`` uint8 (anti-aliased), facet brightness ``(h, w)`` float32 and a label box (fractions)."""
    mask = np.zeros((round(h), round(w)), np.uint8)
    facets = np.ones(mask.shape, np.float32)
    label = None
    if shape == "bottle":
        _fill(mask, _rounded_poly(0, 0.34 * h, w, h - 1, 0.14 * w))
        _ellipse(mask, w / 2, 0.36 * h, w / 2, 0.12 * h)
        _fill(mask, _rounded_poly(0.33 * w, 0.08 * h, 0.67 * w, 0.4 * h, 0.03 * w))
        _fill(mask, _rounded_poly(0.29 * w, 0, 0.71 * w, 0.12 * h, 0.05 * w))
        label = (0.04, 0.52, 0.96, 0.84)
    elif shape == "box":
        front = [(0, 0.2 * h), (0.78 * w, 0.2 * h), (0.78 * w, h - 1), (0, h - 1)]
        top = [(0, 0.2 * h), (0.22 * w, 0), (w - 1, 0), (0.78 * w, 0.2 * h)]
        side = [(0.78 * w, 0.2 * h), (w - 1, 0), (w - 1, 0.8 * h), (0.78 * w, h - 1)]
        for polygon in (front, top, side):
            _fill(mask, polygon)
        facet = np.zeros(mask.shape, np.uint8)
        _fill(facet, top, 1)
        _fill(facet, side, 2)
        facets = np.array([1.0, 1.15, 0.7], np.float32)[facet]
        label = (0.08, 0.36, 0.7, 0.84)
    elif shape == "shoe":
        _fill(mask, _rounded_poly(0, 0.8 * h, w - 1, h - 1, 0.1 * h))
        _ellipse(mask, 0.36 * w, 0.56 * h, 0.34 * w, 0.42 * h)
        _ellipse(mask, 0.72 * w, 0.74 * h, 0.27 * w, 0.2 * h)
        _ellipse(mask, 0.3 * w, 0.16 * h, 0.2 * w, 0.08 * h, value=0)
        facets[round(0.8 * h) :] = 0.82  # the sole
    elif shape == "mug":
        _fill(mask, _rounded_poly(0, 0.04 * h, 0.76 * w, h - 1, 0.08 * w))
        _ellipse(mask, 0.75 * w, 0.5 * h, 0.2 * w, 0.24 * h, thickness=max(2, round(0.07 * w)), start=-90, end=90)
        label = (0.1, 0.3, 0.66, 0.72)
    elif shape == "ball":
        _ellipse(mask, w / 2, h / 2, w / 2 - 1, h / 2 - 1)
    elif shape == "bag":
        _fill(mask, [(0.06 * w, 0.34 * h), (0.94 * w, 0.34 * h), (w - 1, h - 1), (0, h - 1)])
        _ellipse(mask, w / 2, 0.36 * h, 0.26 * w, 0.3 * h, thickness=max(2, round(0.05 * w)), start=180, end=360)
        label = (0.25, 0.5, 0.75, 0.8)
    else:
        raise ValueError(f"got shape {shape!r}; expected one of {', '.join(SHAPES)}")
    return mask, facets, label


def _shade(mask: np.ndarray, facets: np.ndarray) -> np.ndarray:
    """Lambert + specular shading of a height field grown from the silhouette: ``(h, w)`` float32."""
    inside = (mask > 127).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    radius = max(float(dist.max()) * 0.6, 1.0)
    t = np.minimum(dist / radius, 1.0)
    height = np.sqrt(1.0 - (1.0 - t) ** 2) * radius
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    light = np.array([-0.45, -0.55, 0.70], np.float32)
    light /= np.linalg.norm(light)
    diffuse = np.maximum((-gx * light[0] - gy * light[1] + light[2]) / norm, 0.0)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    specular = np.maximum((-gx * half[0] - gy * half[1] + half[2]) / norm, 0.0) ** 40
    return ((0.3 + 0.75 * diffuse) * facets + 0.35 * specular).astype(np.float32)


def studio_background(h: int, w: int, colour: np.ndarray, falloff: float) -> np.ndarray:
    """Light studio sweep: a vertical gradient times a separable vignette, ``(H, W, 3)`` float32."""
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
    vertical = 1.0 - falloff * (0.5 + 0.5 * y) - 0.02 * y * y
    horizontal = 1.0 - 0.05 * x * x
    return (vertical[:, None] * horizontal[None, :])[:, :, None] * colour[None, None, :]


def add_shadow(image: np.ndarray, cx: float, bottom: float, rx: float, ry: float, strength: float) -> None:
    """Darken a soft contact shadow under the product, in place (computed at 1/8 resolution, then upsampled)."""
    h, w = image.shape[:2]
    small = np.zeros((max(1, h // 8), max(1, w // 8)), np.uint8)
    _ellipse(small, cx / 8, bottom / 8, rx / 8, max(ry / 8, 1.0))
    soft = cv2.GaussianBlur(small, (0, 0), max(rx / 8 * 0.25, 1.0))
    soft = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    image *= (1.0 - strength * soft)[:, :, None]


@dataclasses.dataclass(frozen=True)
class Shot:
    """One rendered catalog image.

    :param image: ``(H, W, 3)`` uint8 RGB.
    :param mask: the ground-truth product mask, ``(H, W)`` uint8 (255 = product); ``None`` for a plain photo.
    :param truth: what was rendered (shape, bounding box, background, cast, exposure), JSON-serialisable.
    """

    image: np.ndarray
    mask: np.ndarray | None
    truth: dict[str, Any]


def render_product_shot(
    width: int, height: int, rng: np.random.Generator, textures: Textures, *, variant: int = 0
) -> Shot:
    """One synthetic product shot: ``(H, W, 3)`` uint8 RGB, its ``(H, W)`` uint8 mask and ground truth.

    ``variant`` cycles the shape, the cast and the exposure so that any dozen shots cover them all; ``rng`` draws the
    rest (placement, colours, textures, strengths).
    """
    shape = SHAPES[variant % len(SHAPES)]
    aspect = _SHAPE_ASPECT[shape]
    fill = float(rng.uniform(0.5, 0.78))
    oh = fill * height
    ow = oh * aspect
    if ow > 0.86 * width:
        ow = 0.86 * width
        oh = ow / aspect
    cx = width / 2 + float(rng.uniform(-0.04, 0.04)) * width
    bottom = min(height - 2.0, height * (0.5 + fill / 2 + 0.06) + float(rng.uniform(-0.02, 0.02)) * height)
    x0, y0 = round(cx - ow / 2), round(bottom - oh)
    obj_mask, facets, label = _draw_shape(shape, ow, oh)
    oh_i, ow_i = obj_mask.shape

    # the product: base colour x real material texture x shading, with a real photo as its label
    base = np.array(_PRODUCT_COLOURS[int(rng.integers(len(_PRODUCT_COLOURS)))], np.float32)
    material = textures.materials[int(rng.integers(len(textures.materials)))]
    material = cv2.resize(material, (ow_i, oh_i), interpolation=cv2.INTER_LINEAR)
    albedo = base[None, None, :] * (1.0 + 0.1 * material)[:, :, None]
    if label is not None:
        lx0, ly0, lx1, ly1 = (round(f * d) for f, d in zip(label, (ow_i, oh_i, ow_i, oh_i), strict=True))
        photo = textures.labels[int(rng.integers(len(textures.labels)))]
        albedo[ly0:ly1, lx0:lx1] = cv2.resize(photo, (lx1 - lx0, ly1 - ly0), interpolation=cv2.INTER_AREA)
    product = albedo * _shade(obj_mask, facets)[:, :, None]

    background_colour = np.float32(rng.uniform(0.84, 0.95)) * (1.0 + rng.uniform(-0.02, 0.02, 3)).astype(np.float32)
    image = studio_background(height, width, background_colour, float(rng.uniform(0.04, 0.12)))
    add_shadow(image, cx, bottom, ow * 0.55, oh * 0.05, float(rng.uniform(0.25, 0.45)))

    # paste the product (its mask is its alpha), clipped to the canvas
    mask = np.zeros((height, width), np.uint8)
    ys, xs = slice(max(y0, 0), min(y0 + oh_i, height)), slice(max(x0, 0), min(x0 + ow_i, width))
    crop = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    mask[ys, xs] = obj_mask[crop]
    alpha = obj_mask[crop].astype(np.float32)[:, :, None] / 255.0
    region = image[ys, xs]
    region += alpha * (product[crop] - region)

    noise = noise_tile(height + 32, width + 32)
    oy, ox = int(rng.integers(32)), int(rng.integers(32))
    image += noise[oy : oy + height, ox : ox + width] * np.float32(1.2 / 255.0)

    # the degradations colour enhancement should undo: a cast and an exposure/contrast change
    cast_name = tuple(_CASTS)[variant % len(_CASTS)]
    strength = 1.0 if cast_name == "neutral" else float(rng.uniform(0.6, 1.0))
    cast = 1.0 - strength * (1.0 - np.array(_CASTS[cast_name], np.float32))
    exposure = _EXPOSURES[variant % len(_EXPOSURES)]
    gain = {"normal": rng.uniform(0.93, 1.0), "under": rng.uniform(0.5, 0.7), "low_contrast": 1.0}[exposure]
    contrast = float(rng.uniform(0.5, 0.68)) if exposure == "low_contrast" else 1.0
    pivot = 0.5
    image *= (cast * np.float32(gain))[None, None, :]
    if contrast != 1.0:
        image -= pivot
        image *= contrast
        image += pivot
    image *= 255.0
    image += 0.5
    np.clip(image, 0.0, 255.0, out=image)
    cast_values = tuple(round(float(c), 6) for c in cast)
    truth = {
        "shape": shape,
        "bbox": [max(x0, 0), max(y0, 0), min(x0 + ow_i, width), min(y0 + oh_i, height)],
        "background": [round(float(c), 6) for c in background_colour],
        "cast_name": cast_name,
        "cast": list(cast_values),
        "exposure": exposure,
        "gain": round(float(gain), 6),
        "contrast": round(contrast, 6),
        "pivot": pivot,
    }
    return Shot(image.astype(np.uint8), mask, truth)


def composite_cutout(rgba: np.ndarray, long_side: int) -> Shot:
    """A real ``(h, w, 4)`` uint8 RGBA cut-out composited onto a studio background, 4:5, ``long_side`` high; its alpha
    is the ground-truth mask."""
    width, height = round(long_side * 4 / 5), long_side
    cutout = resize_long_side(Image.fromarray(rgba, "RGBA"), round(long_side * 0.55))
    ow, oh = cutout.size
    x0, y0 = (width - ow) // 2, round(height * 0.82) - oh
    image = studio_background(height, width, np.array([0.92, 0.91, 0.89], np.float32), 0.08)
    add_shadow(image, width / 2, y0 + oh * 0.97, ow * 0.5, oh * 0.05, 0.35)
    array = np.asarray(cutout).astype(np.float32) / 255.0
    alpha = array[:, :, 3:]
    region = image[y0 : y0 + oh, x0 : x0 + ow]
    region += alpha * (array[:, :, :3] - region)
    mask = np.zeros((height, width), np.uint8)
    mask[y0 : y0 + oh, x0 : x0 + ow] = np.asarray(cutout)[:, :, 3]
    pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Shot(pixels, mask, {"bbox": [x0, y0, x0 + ow, y0 + oh], "background": [0.92, 0.91, 0.89]})
