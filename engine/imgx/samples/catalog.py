"""Demo and benchmark catalogs: real photos shipped with scientific packages plus synthetic product shots.

:func:`build_demo_catalog` writes the small catalog the README's first command runs ``recipes/demo.yaml`` on;
:func:`build_synthetic_catalog` writes the larger benchmark catalog. Both are deterministic (same ``seed`` and
parameters give the same bytes) and idempotent (a folder that already holds a complete catalog built with the same
parameters is returned as it is, without rewriting anything).

Layout of a catalog folder::

    real/coffee.jpg ...            real photos (scikit-image, matplotlib, scikit-learn sample data)
    products/sku-0001.jpg ...      synthetic product shots on a studio background
    manifest.csv                   ``sku,image`` for manifest-based recipes (paths relative to the manifest)
    _truth/products/sku-0001.png   ground-truth product mask, ``(H, W)`` uint8, 255 = product
    _truth/catalog.json            what was built, with its parameters and the per-image ground truth

Ground truth of a synthetic shot (in ``_truth/catalog.json``, per image ``truth``): the studio ``background`` colour
(RGB in [0, 1], before the cast), the ``cast`` (per-channel multiplier, max channel 1.0), the exposure ``gain``,
``contrast`` and ``pivot``. Pixel values ``x`` in [0, 1] of the clean shot became
``pivot + (x * cast * gain - pivot) * contrast`` (clipped, then 8-bit encoded).

The photo packages are the ``imgx[demo]`` extra; a package that is missing (or a scikit-image sample that needs a
download) is skipped and listed in the manifest's ``skipped``, and synthetic textures fall back to procedural noise.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import functools
import io
import json
import os
import pathlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

__all__ = ["CatalogImage", "build_demo_catalog", "build_synthetic_catalog"]

GENERATOR = "imgx.demo/1"  # the manifest format's name, kept from before imgx.samples so built catalogs stay valid
TRUTH_DIR = "_truth"
CATALOG_JSON = "catalog.json"
MANIFEST_CSV = "manifest.csv"


@dataclasses.dataclass(frozen=True)
class CatalogImage:
    """One image of a built catalog.

    :param sku: the path relative to the catalog folder without extension, posix (``"real/coffee"``).
    :param path: where the image file is.
    :param size: ``(W, H)`` of the image.
    :param kind: ``"real"`` (a photo) or ``"synthetic"`` (a generated product shot).
    :param cast: for synthetic shots, the per-channel colour cast multiplied in (ground truth); else ``None``.
    :param mask_path: ground-truth product mask PNG (``(H, W)`` uint8, 255 = product) outside the image folders, for
        synthetic shots and real cut-outs composited onto a background; else ``None``.
    """

    sku: str
    path: pathlib.Path
    size: tuple[int, int]
    kind: str
    cast: tuple[float, float, float] | None
    mask_path: pathlib.Path | None


# ---------------------------------------------------------------------------------------------------------------------
# Real photos


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


def _try_load(load: Callable[[], np.ndarray]) -> tuple[np.ndarray | None, str | None]:
    try:
        return np.ascontiguousarray(load()), None
    except Exception as exc:  # a missing package, or a sample that needs a download
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def _resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    w, h = image.size
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if image.mode == "RGBA":  # resample premultiplied so transparent pixels do not bleed into the edges
        return image.convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    return image.resize(size, Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------------------------------------------------
# Textures


@dataclasses.dataclass(frozen=True)
class _Textures:
    materials: tuple[np.ndarray, ...]  # (T, T) float32, zero mean, unit std
    labels: tuple[np.ndarray, ...]  # (T, T, 3) float32 RGB in [0, 1]
    names: tuple[str, ...]


@functools.lru_cache(maxsize=2)
def _textures(tile: int = 512) -> _Textures:
    """A few real textures, loaded once; procedural noise where the photo packages are missing."""
    names = []
    materials = []
    for name, load in MATERIAL_TEXTURES.items():
        image, _ = _try_load(load)
        if image is None:
            continue
        gray = cv2.resize(image.astype(np.float32), (tile, tile), interpolation=cv2.INTER_AREA)
        materials.append(((gray - gray.mean()) / max(float(gray.std()), 1e-6)).astype(np.float32))
        names.append(name)
    labels = []
    for name in LABEL_PHOTOS:
        image, _ = _try_load(REAL_PHOTOS[name])
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
    return _Textures(tuple(materials), tuple(labels), tuple(names))


@functools.lru_cache(maxsize=4)
def _noise_tile(height: int, width: int) -> np.ndarray:
    """Sensor-like noise, ``(H, W, 3)`` float32 with std 1, reused (rolled) across images to keep builds fast."""
    return np.random.default_rng(7).standard_normal((height, width, 3), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic product shots

SHAPES = ("bottle", "box", "shoe", "mug", "ball", "bag")
_SHAPE_ASPECT = {"bottle": 0.4, "box": 0.8, "shoe": 2.1, "mug": 1.0, "ball": 1.0, "bag": 0.95}
_ASPECTS = ((1, 1), (4, 5), (3, 4), (2, 3), (3, 2), (16, 9), (5, 4))
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


def _studio_background(h: int, w: int, colour: np.ndarray, falloff: float) -> np.ndarray:
    """Light studio sweep: a vertical gradient times a separable vignette, ``(H, W, 3)`` float32."""
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
    vertical = 1.0 - falloff * (0.5 + 0.5 * y) - 0.02 * y * y
    horizontal = 1.0 - 0.05 * x * x
    return (vertical[:, None] * horizontal[None, :])[:, :, None] * colour[None, None, :]


def _add_shadow(image: np.ndarray, cx: float, bottom: float, rx: float, ry: float, strength: float) -> None:
    """Darken a soft contact shadow under the product, in place (computed at 1/8 resolution, then upsampled)."""
    h, w = image.shape[:2]
    small = np.zeros((max(1, h // 8), max(1, w // 8)), np.uint8)
    _ellipse(small, cx / 8, bottom / 8, rx / 8, max(ry / 8, 1.0))
    soft = cv2.GaussianBlur(small, (0, 0), max(rx / 8 * 0.25, 1.0))
    soft = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    image *= (1.0 - strength * soft)[:, :, None]


@dataclasses.dataclass(frozen=True)
class _Shot:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8
    truth: dict[str, Any]


def render_product_shot(
    width: int, height: int, rng: np.random.Generator, textures: _Textures, *, variant: int = 0
) -> _Shot:
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
    image = _studio_background(height, width, background_colour, float(rng.uniform(0.04, 0.12)))
    _add_shadow(image, cx, bottom, ow * 0.55, oh * 0.05, float(rng.uniform(0.25, 0.45)))

    # paste the product (its mask is its alpha), clipped to the canvas
    mask = np.zeros((height, width), np.uint8)
    ys, xs = slice(max(y0, 0), min(y0 + oh_i, height)), slice(max(x0, 0), min(x0 + ow_i, width))
    crop = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    mask[ys, xs] = obj_mask[crop]
    alpha = obj_mask[crop].astype(np.float32)[:, :, None] / 255.0
    region = image[ys, xs]
    region += alpha * (product[crop] - region)

    noise = _noise_tile(height + 32, width + 32)
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
    return _Shot(image.astype(np.uint8), mask, truth)


def _cutout_shot(rgba: np.ndarray, long_side: int, rng: np.random.Generator) -> _Shot:
    """A real RGBA cut-out composited onto a studio background (its alpha is the ground-truth mask)."""
    width, height = round(long_side * 4 / 5), long_side
    cutout = _resize_long_side(Image.fromarray(rgba, "RGBA"), round(long_side * 0.55))
    ow, oh = cutout.size
    x0, y0 = (width - ow) // 2, round(height * 0.82) - oh
    image = _studio_background(height, width, np.array([0.92, 0.91, 0.89], np.float32), 0.08)
    _add_shadow(image, width / 2, y0 + oh * 0.97, ow * 0.5, oh * 0.05, 0.35)
    array = np.asarray(cutout).astype(np.float32) / 255.0
    alpha = array[:, :, 3:]
    region = image[y0 : y0 + oh, x0 : x0 + ow]
    region += alpha * (array[:, :, :3] - region)
    mask = np.zeros((height, width), np.uint8)
    mask[y0 : y0 + oh, x0 : x0 + ow] = np.asarray(cutout)[:, :, 3]
    del rng  # the composite is fixed; the parameter keeps the renderers' signatures alike
    pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _Shot(pixels, mask, {"bbox": [x0, y0, x0 + ow, y0 + oh], "background": [0.92, 0.91, 0.89]})


# ---------------------------------------------------------------------------------------------------------------------
# Writing and the manifest


@dataclasses.dataclass(frozen=True)
class _Job:
    """One image to write: ``render`` returns the pixels (and mask) when called in a worker thread."""

    sku: str
    kind: str
    ext: str
    render: Callable[[], _Shot]


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _encode(array: np.ndarray, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    elif fmt == "png":
        Image.fromarray(array).save(buffer, "PNG", compress_level=1)
    elif fmt == "webp":
        Image.fromarray(array).save(buffer, "WEBP", quality=quality, method=0)
    else:
        raise ValueError(f"got fmt={fmt!r} for a catalog image; expected 'jpg', 'png' or 'webp'")
    return buffer.getvalue()


def _write_job(directory: pathlib.Path, job: _Job, quality: int) -> dict[str, Any]:
    shot = job.render()
    image_rel = f"{job.sku}.{job.ext}"
    _atomic_write(directory / image_rel, _encode(shot.image, job.ext, quality))
    record: dict[str, Any] = {
        "sku": job.sku,
        "image": image_rel,
        "size": [shot.image.shape[1], shot.image.shape[0]],
        "kind": job.kind,
        "cast": shot.truth.get("cast"),
        "mask": None,
        "truth": shot.truth,
    }
    if shot.mask is not None and shot.mask.any():
        mask_rel = f"{TRUTH_DIR}/{job.sku}.png"
        _atomic_write(directory / mask_rel, _encode(shot.mask, "png", quality))
        record["mask"] = mask_rel
    return record


def _to_catalog_images(directory: pathlib.Path, records: Iterable[dict[str, Any]]) -> list[CatalogImage]:
    return [
        CatalogImage(
            sku=r["sku"],
            path=directory / r["image"],
            size=(int(r["size"][0]), int(r["size"][1])),
            kind=r["kind"],
            cast=tuple(r["cast"]) if r["cast"] is not None else None,  # type: ignore[arg-type]
            mask_path=directory / r["mask"] if r["mask"] else None,
        )
        for r in records
    ]


def _existing(directory: pathlib.Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of a complete catalog built with ``params`` in ``directory``, else ``None``."""
    try:
        manifest = json.loads((directory / TRUTH_DIR / CATALOG_JSON).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("generator") != GENERATOR or manifest.get("params") != params:
        return None
    for record in manifest.get("images", []):
        for key in ("image", "mask"):
            if record.get(key) and record.get(f"{key}_bytes") != _file_size(directory / record[key]):
                return None
    if not (directory / MANIFEST_CSV).is_file():
        return None
    return manifest


def _file_size(path: pathlib.Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _build(
    directory: pathlib.Path,
    params: dict[str, Any],
    jobs: Sequence[_Job],
    *,
    quality: int,
    workers: int | None,
    skipped: dict[str, str],
    sources: Sequence[str],
) -> list[CatalogImage]:
    directory = pathlib.Path(directory)
    old = None
    with contextlib.suppress(OSError, ValueError):
        old = json.loads((directory / TRUTH_DIR / CATALOG_JSON).read_text())
    (directory / TRUTH_DIR / CATALOG_JSON).unlink(missing_ok=True)  # the catalog is incomplete until rewritten

    workers = workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        records = list(pool.map(lambda job: _write_job(directory, job, quality), jobs))
    for record in records:
        for key in ("image", "mask"):
            record[f"{key}_bytes"] = _file_size(directory / record[key]) if record[key] else None

    if old and isinstance(old.get("images"), list):  # files of a previous build with other parameters
        kept = {r[k] for r in records for k in ("image", "mask") if r[k]}
        for record in old["images"]:
            for key in ("image", "mask"):
                rel = record.get(key)
                if not isinstance(rel, str) or rel in kept:
                    continue
                parts = pathlib.PurePosixPath(rel)
                if not parts.is_absolute() and ".." not in parts.parts:  # never delete outside the catalog
                    (directory / rel).unlink(missing_ok=True)

    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(["sku", "image"])
    writer.writerows((r["sku"], r["image"]) for r in records)
    _atomic_write(directory / MANIFEST_CSV, lines.getvalue().encode())
    manifest = {"generator": GENERATOR, "params": params, "sources": list(sources), "skipped": skipped,
                "images": records}  # fmt: skip
    _atomic_write(directory / TRUTH_DIR / CATALOG_JSON, (json.dumps(manifest, indent=1) + "\n").encode())
    return _to_catalog_images(directory, records)


def _product_jobs(
    count: int, seed: int, sizes: Callable[[np.random.Generator], tuple[int, int]], fmt: str, textures: _Textures
) -> list[_Job]:
    digits = max(4, len(str(count)))
    jobs = []
    for index in range(1, count + 1):

        def render(index: int = index) -> _Shot:
            rng = np.random.default_rng([seed, index])
            width, height = sizes(rng)
            return render_product_shot(width, height, rng, textures, variant=index - 1)

        jobs.append(_Job(f"products/sku-{index:0{digits}d}", "synthetic", fmt, render))
    return jobs


def build_demo_catalog(
    directory: pathlib.Path, *, synthetic: int = 12, size: int = 640, seed: int = 0, workers: int | None = None
) -> list[CatalogImage]:
    """Build the demo catalog: real photos (long side ``size``) and ``synthetic`` product shots of mixed sizes.

    Real photos are JPEG (quality 92) under ``real/``; a real RGBA cut-out (matplotlib's gift box) is composited onto
    a studio background with its alpha as the ground-truth mask. Synthetic shots (``products/sku-NNNN.jpg``) have a
    long side between 0.75 and 1.0 times ``size`` and one of several aspect ratios. Returns without writing anything
    when ``directory`` already holds this catalog.

    :param directory: the catalog folder (created if missing).
    :param synthetic: how many synthetic product shots.
    :param size: the long side of real photos and the largest long side of synthetic shots, in pixels.
    :param seed: the seed of the synthetic shots; the same seed gives the same bytes.
    :param workers: threads that render and encode (default: up to 8, the CPU count).
    """
    directory = pathlib.Path(directory)
    params = {"kind": "demo", "synthetic": synthetic, "size": size, "seed": seed, "fmt": "jpg", "quality": 92}
    existing = _existing(directory, params)
    if existing is not None:
        return _to_catalog_images(directory, existing["images"])

    jobs: list[_Job] = []
    skipped: dict[str, str] = {}
    for name, load in REAL_PHOTOS.items():
        array, error = _try_load(load)
        if array is None:
            skipped[name] = error or "failed"
            continue

        def render_photo(array: np.ndarray = array) -> _Shot:
            image = _resize_long_side(Image.fromarray(array[:, :, :3]).convert("RGB"), size)
            return _Shot(np.asarray(image), None, {})  # type: ignore[arg-type]

        jobs.append(_Job(f"real/{name}", "real", "jpg", render_photo))
    for name, load in REAL_CUTOUTS.items():
        array, error = _try_load(load)
        if array is None or array.ndim != 3 or array.shape[2] != 4:
            skipped[name] = error or "not an RGBA image"
            continue
        jobs.append(_Job(f"real/{name}", "real", "jpg", functools.partial(_cutout_shot, array, size, None)))  # type: ignore[arg-type]

    def demo_size(rng: np.random.Generator) -> tuple[int, int]:
        long_side = round(size * rng.uniform(0.75, 1.0))
        a, b = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
        if rng.random() < 0.5:
            a, b = b, a
        w, h = (long_side, round(long_side * b / a)) if a >= b else (round(long_side * a / b), long_side)
        return max(w, 16), max(h, 16)

    textures = _textures()
    jobs.extend(_product_jobs(synthetic, seed, demo_size, "jpg", textures))
    sources = [j.sku for j in jobs if j.kind == "real"] + [f"texture:{n}" for n in textures.names]
    return _build(directory, params, jobs, quality=92, workers=workers, skipped=skipped, sources=sources)


def build_synthetic_catalog(
    directory: pathlib.Path,
    *,
    count: int,
    size: int = 1024,
    seed: int = 0,
    fmt: str = "jpg",
    quality: int = 92,
    workers: int | None = None,
) -> list[CatalogImage]:
    """Build the benchmark catalog: ``count`` synthetic product shots of ``size`` x ``size`` pixels.

    Same generator as the demo's products (known cast, exposure and mask per shot), written as
    ``products/sku-NNNN.<fmt>`` with masks under ``_truth/``. Returns without writing anything when ``directory``
    already holds this catalog.

    :param directory: the catalog folder (created if missing).
    :param count: how many images.
    :param size: width and height in pixels.
    :param seed: the seed; the same seed gives the same bytes.
    :param fmt: ``"jpg"``, ``"png"`` or ``"webp"``.
    :param quality: JPEG/WebP quality.
    :param workers: threads that render and encode (default: up to 8, the CPU count).
    """
    if count < 0 or size < 16:
        raise ValueError(f"got count={count}, size={size} for a synthetic catalog; expected count >= 0 and size >= 16")
    fmt = "jpg" if fmt == "jpeg" else fmt
    if fmt not in ("jpg", "png", "webp"):
        raise ValueError(f"got fmt={fmt!r} for a synthetic catalog; expected 'jpg', 'png' or 'webp'")
    directory = pathlib.Path(directory)
    params = {"kind": "synthetic", "count": count, "size": size, "seed": seed, "fmt": fmt, "quality": quality}
    existing = _existing(directory, params)
    if existing is not None:
        return _to_catalog_images(directory, existing["images"])
    textures = _textures()
    jobs = _product_jobs(count, seed, lambda rng: (size, size), fmt, textures)
    sources = [f"texture:{n}" for n in textures.names]
    return _build(directory, params, jobs, quality=quality, workers=workers, skipped={}, sources=sources)
