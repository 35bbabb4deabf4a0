"""Quality of product masks: a segmentation test set with exact ground truth, and the scores of a mask against it.

A benchmark module, not part of a stage: ``segment.product`` ships without it. Its tests
(``tests/benchmarks/test_segment_eval.py``) hold the model's measured quality; run it to print the scores::

    python benchmarks/segment_eval.py --n 60 --backend onnxruntime             # today's default
    python benchmarks/segment_eval.py --n 60 --tta flip --refine-radius 2     # one option
    python benchmarks/segment_eval.py --n 60 --sweep --out benchmarks/results/segment-quality-vm-20261205.json
    python benchmarks/segment_eval.py --quality --out benchmarks/results/segment-quality-vm-20261205b.json

``--quality`` scores every option of :data:`QUALITY_OPTIONS` on :func:`build_quality_set` (72 composites in six
categories: studio, busy, white-on-white, glass, thin parts, soft edges) for IoU, boundary F, alpha error and the
halo of ``segment.cutout``'s cut-out, overall and per category, and prints them as Markdown tables.

:func:`build_testset` composites real and synthetic cut-out objects onto varied backgrounds:

- objects: matplotlib's ``Minduka_Present_Blue_Pack.png`` gift box (a real RGBA photo cut-out, its alpha a real
  matte), scikit-image's ``horse`` silhouette textured with a real photo (a figurine), and the synthetic products of
  :func:`imgx.samples.render_product_shot` (bottle, box, shoe, mug, ball, bag: shaded real-texture materials with real
  photo labels, cut out by their exact anti-aliased masks);
- backgrounds: near-white studio, two-colour gradients, tinted real material textures (scikit-image's gravel, brick,
  grass), real photos blurred like an out-of-focus backdrop;
- a soft contact shadow under the object (random strength, sometimes none), random scale (object 35..80 % of the
  canvas's short side) and position, random canvas aspect, sensor noise.

The ground truth is the object's composited alpha (``(H, W)`` uint8); scores binarise both masks at 128. The photos
and textures come from :mod:`imgx.samples` (scikit-image and matplotlib, the ``demo`` extra), loaded only when the set
is built.

Metrics: :func:`iou` and :func:`boundary_f` (the boundary F-measure of Perazzi et al. 2016, DAVIS: precision and
recall of boundary pixels matched within a pixel tolerance). With each option the command also reports ms/image (the
network's views, batched, and the post-processing; the machine's load is recorded with ``--sweep``) and how well
``segment.product``'s ``confidence`` ranks the masks by their true IoU (:func:`spearman`). ``--sweep`` runs every
``tta`` with a grid of post-processing knobs (``min_island``, ``fill_holes``, ``refine_radius``) on the same network
outputs and writes a JSON with the machine's description.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["BACKGROUNDS", "OBJECTS", "boundary_f", "build_testset", "evaluate", "iou", "score", "spearman", "sweep"]

OBJECTS = ("present", "horse", "bottle", "box", "shoe", "mug", "ball", "bag")
BACKGROUNDS = ("white", "gradient", "texture", "photo")
LEVEL = 128  # masks are binarised at alpha >= LEVEL


def _binary(mask: np.ndarray) -> np.ndarray:
    if mask.ndim != 2:
        raise ValueError(f"got mask of shape {mask.shape}; expected (H, W)")
    return mask >= LEVEL if mask.dtype == np.uint8 else mask >= 0.5


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two ``(H, W)`` masks (uint8 alpha binarised at 128, or bool/float at 0.5); 1.0
    when both are empty."""
    p, t = _binary(pred), _binary(truth)
    if p.shape != t.shape:
        raise ValueError(f"got masks {p.shape} and {t.shape}; expected the same shape")
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a bool mask that touch the outside (4-neighbourhood)."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (m - eroded).astype(bool)


def boundary_f(pred: np.ndarray, truth: np.ndarray, tolerance: int = 2) -> float:
    """Boundary F-score: precision (predicted boundary pixels within ``tolerance`` pixels of the true boundary) and
    recall (true boundary pixels within ``tolerance`` of the predicted one), combined harmonically. 1.0 when both
    masks are empty, 0.0 when only one is."""
    p, t = _boundary(_binary(pred)), _boundary(_binary(truth))
    if p.shape != t.shape:
        raise ValueError(f"got masks {p.shape} and {t.shape}; expected the same shape")
    if not p.any() and not t.any():
        return 1.0
    if not p.any() or not t.any():
        return 0.0
    dist_to_t = cv2.distanceTransform((~t).astype(np.uint8), cv2.DIST_L2, 5)
    dist_to_p = cv2.distanceTransform((~p).astype(np.uint8), cv2.DIST_L2, 5)
    precision = float((dist_to_t[p] <= tolerance).mean())
    recall = float((dist_to_p[t] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score(preds: list[np.ndarray], truths: list[np.ndarray], tolerance: int = 2) -> dict[str, float]:
    """Mean and worst IoU and boundary F over a set: ``{"iou_mean", "iou_min", "bf_mean", "bf_min"}``."""
    ious = [iou(p, t) for p, t in zip(preds, truths, strict=True)]
    bfs = [boundary_f(p, t, tolerance) for p, t in zip(preds, truths, strict=True)]
    return {
        "iou_mean": float(np.mean(ious)),
        "iou_min": float(np.min(ious)),
        "bf_mean": float(np.mean(bfs)),
        "bf_min": float(np.min(bfs)),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Objects: (h, w, 3) float32 RGB 0..1 and (h, w) float32 alpha 0..1


def _present() -> tuple[np.ndarray, np.ndarray]:
    from imgx.samples import REAL_CUTOUTS

    rgba = REAL_CUTOUTS["present"]().astype(np.float32) / 255.0
    return rgba[:, :, :3], rgba[:, :, 3]


def _horse(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's horse silhouette (anti-aliased by a 4x supersampled reduction) covered with a real photo."""
    import skimage.data

    from imgx.samples import REAL_PHOTOS

    shape = ~skimage.data.horse()
    h, w = shape.shape
    alpha = cv2.resize(shape.astype(np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    name = ("coffee", "chelsea", "astronaut", "china")[int(rng.integers(4))]
    photo = REAL_PHOTOS[name]().astype(np.float32) / 255.0
    texture = cv2.resize(photo, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return texture, alpha


def _synthetic(shape: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A product of :func:`imgx.samples.render_product_shot` cut out of its shot by its exact mask (cropped to it)."""
    from imgx.samples import SHAPES, load_textures, render_product_shot

    shot = render_product_shot(320, 320, rng, load_textures(256), variant=SHAPES.index(shape))
    ys, xs = np.nonzero(shot.mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb = shot.image[y0:y1, x0:x1].astype(np.float32) / 255.0
    return rgb, shot.mask[y0:y1, x0:x1].astype(np.float32) / 255.0


def _object(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if name == "present":
        return _present()
    if name == "horse":
        return _horse(rng)
    return _synthetic(name, rng)


# ---------------------------------------------------------------------------------------------------------------------
# Backgrounds: (H, W, 3) float32 RGB 0..1


def _background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    from imgx.samples import MATERIAL_TEXTURES, REAL_PHOTOS

    if kind == "white":
        level = rng.uniform(0.93, 1.0, 3).astype(np.float32)
        return np.broadcast_to(level, (h, w, 3)).copy()
    if kind == "gradient":
        a, b = rng.uniform(0.3, 1.0, 3), rng.uniform(0.3, 1.0, 3)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.cos(angle) * x / w + np.sin(angle) * y / h) * 0.5 + 0.5
        return (a[None, None] * (1 - t[:, :, None]) + b[None, None] * t[:, :, None]).astype(np.float32)
    if kind == "texture":
        name = tuple(MATERIAL_TEXTURES)[int(rng.integers(len(MATERIAL_TEXTURES)))]
        gray = MATERIAL_TEXTURES[name]().astype(np.float32) / 255.0
        gray = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
        tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
        return np.clip(0.35 + 0.6 * gray[:, :, None] * tint[None, None], 0, 1).astype(np.float32)
    if kind == "photo":
        name = ("coffee", "chelsea", "china", "flower", "rocket")[int(rng.integers(5))]
        photo = cv2.resize(REAL_PHOTOS[name](), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return cv2.GaussianBlur(photo, (0, 0), float(rng.uniform(3.0, 6.0)))
    raise ValueError(f"got background {kind!r}; expected one of {', '.join(BACKGROUNDS)}")


def _shadow(canvas: np.ndarray, cx: float, bottom: float, rx: float, strength: float) -> None:
    """Darken a soft elliptic contact shadow under the object, in place."""
    h, w = canvas.shape[:2]
    shade = np.zeros((h, w), np.float32)
    cv2.ellipse(shade, (round(cx), round(bottom)), (max(1, round(rx)), max(1, round(rx * 0.12))), 0, 0, 360, 1.0, -1)
    shade = cv2.GaussianBlur(shade, (0, 0), max(1.0, rx * 0.2))
    canvas *= (1.0 - strength * shade)[:, :, None]


def _layers(
    rgb: np.ndarray, alpha: np.ndarray, h: int, w: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """The object scaled and placed on an ``(h, w)`` canvas: premultiplied ``(h, w, 3)`` colour, ``(h, w)`` alpha
    (float32 0..1, zero off the object) and its box ``(y0, y1, x0, x1)``."""
    oh, ow = alpha.shape
    scale = float(rng.uniform(0.35, 0.8)) * min(h, w) / max(oh, ow)
    size = (max(2, round(ow * scale)), max(2, round(oh * scale)))
    # premultiplied resize so no colour bleeds from transparent pixels into the edge
    pre = cv2.resize(rgb * alpha[:, :, None], size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    alpha = np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC), 0, 1)
    pre = np.clip(pre, 0, alpha[:, :, None])
    oh, ow = alpha.shape
    y0 = int(rng.integers(max(1, h // 20), max(2, h - oh - h // 20 + 1)))
    x0 = int(rng.integers(max(1, w // 20), max(2, w - ow - w // 20 + 1)))
    y0, x0 = min(y0, h - oh), min(x0, w - ow)
    full_pre = np.zeros((h, w, 3), np.float32)
    full_alpha = np.zeros((h, w), np.float32)
    full_pre[y0 : y0 + oh, x0 : x0 + ow] = pre
    full_alpha[y0 : y0 + oh, x0 : x0 + ow] = alpha
    return full_pre, full_alpha, (y0, y0 + oh, x0, x0 + ow)


def _compose(
    name: str,
    background: str,
    rng: np.random.Generator,
    long_side: int,
    obj: tuple[np.ndarray, np.ndarray] | None = None,
    extra: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A composite: ``(H, W, 3)`` uint8 image, ``(H, W)`` float32 true alpha and ``(H, W, 3)`` float32
    premultiplied true colour of the object. ``obj`` replaces the named object; ``extra(pre, alpha, box, rng)``
    adds to the placed object's layers in place (straps, fur, feathering) before it is composited."""
    aspect = (1.0, 0.75, 0.8, 1.25, 4 / 3)[int(rng.integers(5))]
    h, w = (long_side, round(long_side * aspect)) if aspect < 1 else (round(long_side / aspect), long_side)
    canvas = _background(background, h, w, rng)
    rgb, alpha = _object(name, rng) if obj is None else obj
    pre, alpha, (y0, y1, x0, x1) = _layers(rgb, alpha, h, w, rng)
    if rng.random() < 0.75:
        _shadow(canvas, (x0 + x1) / 2, y0 + (y1 - y0) * 0.98, (x1 - x0) * 0.5, float(rng.uniform(0.2, 0.5)))
    if extra is not None:
        extra(pre, alpha, (y0, y1, x0, x1), rng)
    canvas *= 1.0 - alpha[:, :, None]
    canvas += pre
    canvas += rng.normal(0.0, 1.0 / 255.0, canvas.shape).astype(np.float32)
    return (np.clip(canvas, 0, 1) * 255.0 + 0.5).astype(np.uint8), alpha, pre


def _composite(name: str, background: str, rng: np.random.Generator, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    image, alpha, _ = _compose(name, background, rng, long_side)
    return image, (alpha * 255.0 + 0.5).astype(np.uint8)


def build_testset(seed: int = 0, n: int = 32, long_side: int = 256) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``n`` composites ``(image (H, W, 3) uint8 RGB, mask (H, W) uint8 ground-truth alpha, name)``.

    Object and background kinds cycle (every object on every background kind within 32 items); the rest (scale,
    position, canvas aspect, shadow, colours, which texture or photo) is drawn from ``seed``. The same arguments
    give the same set. ``name`` reads ``"{index:03d}-{object}-{background}"``.
    """
    if n < 1:
        raise ValueError(f"got n={n}; expected at least 1 item")
    rng = np.random.default_rng(seed)
    items = []
    for index in range(n):
        name = OBJECTS[index % len(OBJECTS)]
        background = BACKGROUNDS[(index // len(OBJECTS) + index) % len(BACKGROUNDS)]
        image, mask = _composite(name, background, rng, long_side)
        items.append((image, mask, f"{index:03d}-{name}-{background}"))
    return items


# ---------------------------------------------------------------------------------------------------------------------
# The harder set: categories of what goes wrong in a catalog (white on white, glass, thin parts, soft edges, busy)

CATEGORIES = ("studio", "busy", "white", "glass", "thin", "soft")
"""Categories of :func:`build_quality_set`: ``studio`` and ``busy`` are :func:`build_testset`'s objects on white or
gradient and on texture or photo backgrounds; ``white`` whitened objects on near-white; ``glass`` synthetic glassware
(alpha 0.2..0.5 inside, ~1 at the rim) the background shows through; ``thin`` objects with 1..4 px straps, cables
and handles, and matplotlib's logo (a real matte with thin strokes); ``soft`` feathered (defocused) alpha or a
fur-like fringe of strands."""


@dataclass(frozen=True)
class Composite:
    """One composite of :func:`build_quality_set` with everything the scores need."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    alpha: np.ndarray  # (H, W) uint8 true alpha (the matte the object was composited with)
    shape: np.ndarray  # (H, W) uint8 true product mask for IoU / boundary F: the alpha, or a glass's silhouette
    name: str  # "{index:03d}-{category}-{object}-{background}"
    category: str
    foreground: np.ndarray  # (H, W, 3) float32 0..1 premultiplied true object colour (alpha * F)


def _supersampled(draw: Any, h: int, w: int, factor: int = 4) -> np.ndarray:
    """An anti-aliased ``(h, w)`` float32 coverage: ``draw(canvas, factor)`` paints 1s on a ``factor`` times
    larger uint8 canvas, reduced by area."""
    big = np.zeros((h * factor, w * factor), np.uint8)
    draw(big, factor)
    return cv2.resize(big.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


def _over(pre: np.ndarray, alpha: np.ndarray, colour: np.ndarray, cover: np.ndarray) -> None:
    """Put a layer of ``(3,)`` or ``(H, W, 3)`` ``colour`` with ``(H, W)`` coverage *behind* the object, in place
    (the strap or strand disappears behind the product where they overlap)."""
    add = cover * (1.0 - alpha)
    pre += (colour * add[:, :, None]).astype(np.float32)
    alpha += add.astype(np.float32)


def _whitened(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An object repainted white or near-white (88..99 %), keeping a weak copy of its shading and texture."""
    rgb, alpha = _object(name, rng)
    lum = rgb.mean(axis=2)
    lum = lum / max(float(lum[alpha > 0.5].max(initial=1e-3)), 1e-3)
    level = float(rng.uniform(0.88, 0.99))
    tint = rng.uniform(0.97, 1.0, 3).astype(np.float32)
    shade = 0.86 + 0.14 * np.clip(lum, 0, 1)
    return np.clip(level * shade[:, :, None] * tint[None, None], 0, 1).astype(np.float32), alpha


def _glass(variant: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic glassware (tumbler, bottle, vase): alpha 0.2..0.5 inside rising to ~1 at a rim a few pixels wide,
    a tinted body, a darker rim and a bright vertical highlight."""
    h = 240
    w = (150, 110, 160)[variant % 3]

    def draw(canvas: np.ndarray, f: int) -> None:
        if variant % 3 == 0:  # tumbler: a trapezoid with a rounded foot
            pts = np.array([[4, 4], [w - 4, 4], [w - 16, h - 10], [16, h - 10]], np.float32) * f
            cv2.fillPoly(canvas, [pts.astype(np.int32)], 1)
            cv2.ellipse(canvas, (w * f // 2, (h - 12) * f), ((w // 2 - 16) * f, 8 * f), 0, 0, 360, 1, -1)
        elif variant % 3 == 1:  # bottle: body, shoulder, neck
            cv2.rectangle(canvas, (4 * f, 100 * f), ((w - 4) * f, (h - 4) * f), 1, -1)
            cv2.ellipse(canvas, (w * f // 2, 100 * f), ((w // 2 - 4) * f, 40 * f), 0, 180, 360, 1, -1)
            cv2.rectangle(canvas, ((w // 2 - 14) * f, 6 * f), ((w // 2 + 14) * f, 80 * f), 1, -1)
        else:  # vase: an ellipse body with a flared neck
            cv2.ellipse(canvas, (w * f // 2, 150 * f), ((w // 2 - 4) * f, 86 * f), 0, 0, 360, 1, -1)
            pts = np.array([[w / 2 - 30, 4], [w / 2 + 30, 4], [w / 2 + 16, 80], [w / 2 - 16, 80]], np.float32) * f
            cv2.fillPoly(canvas, [pts.astype(np.int32)], 1)

    silhouette = _supersampled(draw, h, w)
    depth = cv2.distanceTransform((silhouette >= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    rim = np.clip(1.0 - depth / float(rng.uniform(2.5, 5.0)), 0, 1)
    inside, edge = float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.9, 1.0))
    x = np.arange(w, dtype=np.float32)[None, :]
    centre, width = float(rng.uniform(0.2, 0.35)) * w, float(rng.uniform(0.03, 0.07)) * w
    highlight = np.exp(-0.5 * ((x - centre) / width) ** 2) * np.ones((h, 1), np.float32)
    alpha = silhouette * np.maximum(inside + (edge - inside) * rim, 0.75 * highlight)
    tint = np.array([(0.75, 0.92, 0.85), (0.82, 0.88, 1.0), (0.75, 0.52, 0.25), (0.9, 0.9, 0.9)][int(rng.integers(4))])
    body = np.broadcast_to(tint.astype(np.float32), (h, w, 3)) * (1.0 - 0.5 * rim)[:, :, None]
    colour = body * (1.0 - highlight[:, :, None]) + highlight[:, :, None]
    return np.clip(colour, 0, 1).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32)


def _logo() -> tuple[np.ndarray, np.ndarray]:
    """matplotlib's logo (``logo2.png``): a real RGBA matte of thin strokes and text."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("logo2.png") as file:
        rgba = np.asarray(Image.open(file).convert("RGBA")).astype(np.float32) / 255.0
    return rgba[:, :, :3], rgba[:, :, 3]


_THIN_COLOURS = np.array([(0.1, 0.1, 0.1), (0.55, 0.3, 0.12), (0.8, 0.1, 0.1), (0.1, 0.2, 0.6), (0.85, 0.85, 0.85)])


def _thin_parts(kind: int) -> Any:
    """An ``extra`` for :func:`_compose` drawing 1..4 px parts attached to the object: a strap loop above it, a
    cable leaving one side, or a handle loop on one side (``kind`` cycles them)."""

    def extra(pre: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
        h, w = alpha.shape
        y0, y1, x0, x1 = box
        thickness = float(rng.uniform(1.0, 4.0))
        colour = _THIN_COLOURS[int(rng.integers(len(_THIN_COLOURS)))].astype(np.float32)
        top = max(3.0, y0 - (y1 - y0) * float(rng.uniform(0.25, 0.5)))
        if kind % 3 == 0:  # strap: a half ellipse rising from inside the top third (drawn behind the object)
            anchor = y0 + (y1 - y0) * 0.35
            centre, axes, start, end = ((x0 + x1) / 2, anchor), ((x1 - x0) * 0.35, anchor - top), 180, 360
        elif kind % 3 == 1:  # handle: a loop leaving the right side, its ends behind the object
            reach = min(w - 3.0 - x1, (x1 - x0) * 0.25)
            centre, axes = (x1 - (x1 - x0) * 0.2, (y0 + y1) / 2), ((x1 - x0) * 0.2 + reach, (y1 - y0) * 0.25)
            start, end = 270, 450
        else:
            centre = None
        thick = max(1, round(thickness))

        def draw(canvas: np.ndarray, f: int) -> None:
            line = max(1, round(thickness * f))
            if centre is not None:
                ax = (max(1, round(axes[0] * f)), max(1, round(axes[1] * f)))
                cv2.ellipse(canvas, (round(centre[0] * f), round(centre[1] * f)), ax, 0, start, end, 1, line)
                return
            # cable: a bezier from the object's left side sagging towards the lower-left corner
            p0 = np.array([x0 + 2.0, (y0 + y1) / 2])
            p2 = np.array([max(4.0, x0 - (x1 - x0) * 0.6), min(h - 5.0, y1 + 4.0)])
            p1 = np.array([(p0[0] + p2[0]) / 2, min(h - 5.0, p2[1] + 10.0)])
            t = np.linspace(0, 1, 64)[:, None]
            pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            cv2.polylines(canvas, [(pts * f).round().astype(np.int32)], False, 1, line)

        cover = _supersampled(draw, h, w)
        cover[: max(1, h // 40)] = 0  # keep inside the frame
        _over(pre, alpha, colour, np.clip(cover, 0, 1) * (1.0 if thick > 1 else 0.95))

    return extra


def _soft_edge(kind: int) -> Any:
    """An ``extra`` for :func:`_compose`: a feathered (defocused) object, its alpha and colour blurred by 1.5..4 px,
    or a fur-like fringe of short strands in the object's edge colour (``kind`` alternates)."""

    def extra(pre: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
        h, w = alpha.shape
        if kind % 2 == 0:
            sigma = float(rng.uniform(1.5, 4.0))
            pre[:] = cv2.GaussianBlur(pre, (0, 0), sigma)
            alpha[:] = cv2.GaussianBlur(alpha, (0, 0), sigma)
            return
        smooth = cv2.GaussianBlur(alpha, (0, 0), 3.0)
        gy, gx = np.gradient(smooth)
        edge = (alpha > 0.4) & (alpha < 0.95)
        ys, xs = np.nonzero(edge)
        pick = rng.choice(len(ys), size=min(len(ys), int(len(ys) * 0.6)), replace=False)
        colour_at = cv2.blur(pre, (9, 9)) / np.maximum(cv2.blur(alpha, (9, 9)), 1e-3)[:, :, None]
        strands = np.zeros((h, w), np.float32)
        colour = np.zeros((h, w, 3), np.float32)
        for i in pick:
            y, x = ys[i], xs[i]
            normal = -np.array([gx[y, x], gy[y, x]])
            normal = normal / max(float(np.hypot(*normal)), 1e-6)
            angle = float(rng.uniform(-0.6, 0.6))
            c, s_ = np.cos(angle), np.sin(angle)
            d = np.array([c * normal[0] - s_ * normal[1], s_ * normal[0] + c * normal[1]])
            length = float(rng.uniform(3.0, 10.0))
            end = (np.array([x, y]) + d * length).round().astype(int)
            end = np.clip(end, 2, [w - 3, h - 3])
            # drawn 4x supersampled in a window around the strand (a strand is at most 10 px long)
            wy0, wy1 = max(0, min(y, int(end[1])) - 2), min(h, max(y, int(end[1])) + 3)
            wx0, wx1 = max(0, min(x, int(end[0])) - 2), min(w, max(x, int(end[0])) + 3)
            one = np.zeros(((wy1 - wy0) * 4, (wx1 - wx0) * 4), np.uint8)
            start, stop = (
                ((x - wx0) * 4 + 2, (y - wy0) * 4 + 2),
                ((int(end[0]) - wx0) * 4 + 2, (int(end[1]) - wy0) * 4 + 2),
            )
            cv2.line(one, start, stop, 1, 3, cv2.LINE_8)
            size = (wx1 - wx0, wy1 - wy0)
            cover = cv2.resize(one.astype(np.float32), size, interpolation=cv2.INTER_AREA) * rng.uniform(0.5, 0.9)
            win = (slice(wy0, wy1), slice(wx0, wx1))
            colour[win] += colour_at[y, x][None, None] * (cover * (1 - strands[win]))[:, :, None]
            strands[win] += cover * (1 - strands[win])
        colour = colour / np.maximum(strands, 1e-6)[:, :, None]
        _over(pre, alpha, np.clip(colour, 0, 1), strands)

    return extra


def _quality_item(category: str, k: int, rng: np.random.Generator, long_side: int) -> tuple[Any, ...]:
    """``(image, alpha float32, foreground, shape or None, object name, background)`` of the ``k``-th item of a
    category."""
    shape = None
    if category in ("studio", "busy"):
        name = OBJECTS[k % len(OBJECTS)]
        background = (("white", "gradient") if category == "studio" else ("texture", "photo"))[
            (k // len(OBJECTS) + k) % 2
        ]
        image, alpha, pre = _compose(name, background, rng, long_side)
    elif category == "white":
        name, background = OBJECTS[k % len(OBJECTS)], "white"
        image, alpha, pre = _compose(name, background, rng, long_side, obj=_whitened(name, rng))
    elif category == "glass":
        name = ("tumbler", "bottle", "vase")[k % 3]
        background = BACKGROUNDS[k % len(BACKGROUNDS)]
        image, alpha, pre = _compose(name, background, rng, long_side, obj=_glass(k, rng))
        shape = alpha > 0.05  # the glass's silhouette: its alpha is >= 0.2 everywhere inside
    elif category == "thin":
        background = BACKGROUNDS[(k // 4 + k) % len(BACKGROUNDS)]
        if k % 4 == 3:
            name = "logo"
            image, alpha, pre = _compose(name, background, rng, long_side, obj=_logo())
        else:
            name = ("bag", "mug", "box")[k % 4 % 3]
            extra = _thin_parts(k % 4)
            image, alpha, pre = _compose(name, background, rng, long_side, extra=extra)
            name += ("-strap", "-handle", "-cable")[k % 4 % 3]
    elif category == "soft":
        name = ("horse", "ball", "bag", "present", "shoe", "bottle")[k % 6]
        background = BACKGROUNDS[(k // 2 + k) % len(BACKGROUNDS)]
        image, alpha, pre = _compose(name, background, rng, long_side, extra=_soft_edge(k))
        name += ("-feathered", "-fur")[k % 2]
    else:
        raise ValueError(f"got category {category!r}; expected one of {', '.join(CATEGORIES)}")
    return image, alpha, pre, shape, name, background


def build_quality_set(seed: int = 0, per_category: int = 12, long_side: int = 256) -> list[Composite]:
    """``per_category`` composites of every :data:`CATEGORIES` (interleaved: item ``i`` is of category
    ``CATEGORIES[i % 6]``, so any prefix of ``6 k`` items holds ``k`` of each). The same arguments give the same set.

    ``shape`` (what IoU and boundary F score against) is the true alpha, except for glass, whose product is its
    whole silhouette though its alpha is 0.2..0.5 inside."""
    if per_category < 1:
        raise ValueError(f"got per_category={per_category}; expected at least 1")
    rng = np.random.default_rng(seed)
    items = []
    for index in range(per_category * len(CATEGORIES)):
        category = CATEGORIES[index % len(CATEGORIES)]
        image, alpha, pre, shape, name, background = _quality_item(category, index // len(CATEGORIES), rng, long_side)
        alpha8 = (alpha * 255.0 + 0.5).astype(np.uint8)
        shape8 = alpha8 if shape is None else np.where(shape, np.uint8(255), np.uint8(0))
        items.append(Composite(image, alpha8, shape8, f"{index:03d}-{category}-{name}-{background}", category, pre))
    return items


# ---------------------------------------------------------------------------------------------------------------------
# Alpha and halo


def edge_band(alpha: np.ndarray, width: int = 3) -> np.ndarray:
    """``(H, W)`` bool: where a true ``(H, W)`` uint8 alpha is strictly between 0 and 255, or within ``width``
    pixels of its 128 boundary: where a matte or a cut-out's edge colour can be wrong."""
    hard = (alpha >= LEVEL).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    near = cv2.dilate(hard, kernel) != cv2.erode(hard, kernel)
    return near | ((alpha > 0) & (alpha < 255))


def alpha_error(pred: np.ndarray, truth: np.ndarray, band: np.ndarray | None = None) -> float:
    """Mean absolute difference of two ``(H, W)`` uint8 alphas on the 0..1 scale, over ``band`` (bool) or the whole
    image; 0.0 for an empty band."""
    diff = np.abs(pred.astype(np.float32) - truth.astype(np.float32)) / 255.0
    if band is not None:
        diff = diff[band]
    return float(diff.mean()) if diff.size else 0.0


NEW_BACKGROUNDS = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.1, 0.6, 0.3))
"""The backgrounds a cut-out is put on for :func:`halo`: black, white and a green none of the old ones is close to."""


def halo(rgb: np.ndarray, alpha: np.ndarray, item: Composite, width: int = 3) -> float:
    """How much a cut-out's edge differs from the true object on a new background: the cut-out ``(H, W, 3)`` uint8
    RGB with its ``(H, W)`` uint8 alpha and the true object (premultiplied colour and alpha) are each composited on
    every :data:`NEW_BACKGROUNDS`, and the mean CIEDE2000 colour difference in :func:`edge_band` is returned (about 1
    is a just-noticeable difference; the old background bleeding into the edge, or a wrong alpha, raises it)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    band = edge_band(item.alpha, width)
    if not band.any():
        return 0.0
    a = alpha.astype(np.float32)[band][:, None] / 255.0
    cut = rgb.astype(np.float32)[band] / 255.0
    true_a = item.alpha.astype(np.float32)[band][:, None] / 255.0
    true_pre = item.foreground[band]
    errors = []
    for colour in NEW_BACKGROUNDS:
        new = np.array(colour, np.float32)[None]
        ours = np.clip(cut * a + new * (1 - a), 0, 1)
        truth = np.clip(true_pre + new * (1 - true_a), 0, 1)
        errors.append(deltaE_ciede2000(rgb2lab(ours[None]), rgb2lab(truth[None])).mean())
    return float(np.mean(errors))


def spearman(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    """Spearman's rank correlation of two equally long sequences (ties get their average rank); 0.0 when either is
    constant."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"got shapes {x.shape} and {y.shape}; expected two 1-D sequences of the same length")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v), np.float64)
        r[order] = np.arange(len(v), dtype=np.float64)
        for value in np.unique(v):  # average rank of ties
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


POST_GRID = {"min_island": (0.0, 0.05), "fill_holes": (False, True), "refine_radius": (0, 2, 4)}
"""The post-processing knobs ``--sweep`` tries with every ``tta`` (their product: 12 combinations)."""


def _stage(tta: str, backend: str, batch_size: int) -> Any:
    from imgx import StageContext, load_registry
    from imgx_segment import SegmentProduct, SegmentProductParams

    return SegmentProduct(
        SegmentProductParams(tta=tta), StageContext(backend=backend, batch_size=batch_size, registry=load_registry())
    )


def _network(testset: list, stage: Any) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Merged predictions, the raw per-view outputs (flat, view order of :func:`imgx_segment.tta.views`) and the
    seconds the network's views took (prepared, batched, run, merged)."""
    from imgx_segment.tta import predict

    raw: list[np.ndarray] = []

    def infer(inputs: list[np.ndarray]) -> list[np.ndarray]:
        out = stage.infer_images(inputs)
        raw.extend(out)
        return out

    images = [item[0] if isinstance(item, tuple) else item for item in testset]
    predict(images[:1], stage.params.tta, stage.infer_images)  # warm-up: the backend's first call is slower
    start = time.perf_counter()
    merged = predict(images, stage.params.tta, infer)
    return merged, raw, time.perf_counter() - start


def _post(testset: list, merged: list[np.ndarray], **knobs: Any) -> tuple[list[np.ndarray], float]:
    from imgx_segment import SegmentProductParams, mask_from_prediction

    params = SegmentProductParams(**knobs)
    start = time.perf_counter()
    images = [item[0] if isinstance(item, tuple) else item for item in testset]
    masks = [mask_from_prediction(image, pred, params) for image, pred in zip(images, merged, strict=True)]
    return masks, time.perf_counter() - start


def evaluate(
    testset: list, tta: str = "none", backend: str = "onnxruntime", batch_size: int = 8, **knobs: Any
) -> dict[str, Any]:
    """Scores of ``segment.product`` with ``tta`` and post-processing ``knobs`` on ``testset``: :func:`score`'s keys,
    ``ms_per_image`` (network views and post-processing) and ``confidence_spearman`` (the stage's confidence against
    the true IoU), plus per item ``ious`` and ``confidences``."""
    from imgx_segment.tta import mask_confidence

    merged, _, seconds = _network(testset, _stage(tta, backend, batch_size))
    masks, post_seconds = _post(testset, merged, **knobs)
    truths = [mask for _, mask, _ in testset]
    ious = [iou(m, t) for m, t in zip(masks, truths, strict=True)]
    confidences = [mask_confidence(p) if m.any() else 0.0 for p, m in zip(merged, masks, strict=True)]
    return {
        **score(masks, truths),
        "ms_per_image": 1000.0 * (seconds + post_seconds) / len(testset),
        "confidence_spearman": spearman(confidences, ious),
        "ious": ious,
        "confidences": confidences,
    }


def sweep(testset: list, backend: str = "onnxruntime", batch_size: int = 8) -> dict[str, Any]:
    """Every ``tta`` with every :data:`POST_GRID` combination, the network run once per ``tta`` (``summary``: per
    ``tta`` the default post-processing and the combination of best mean IoU, then boundary F); per ``tta`` also
    how well confidences rank the masks (default post-processing) by their true IoU: ``segment.product``'s
    (:func:`imgx_segment.tta.mask_confidence`), the decided share in the grown bounding box and, with a mirrored view,
    the plain/mirrored mask agreement."""
    from imgx_segment.tta import TTA_MODES, decided_share, flip_agreement, mask_confidence

    truths = [mask for _, mask, _ in testset]
    rows, correlation = [], {}
    for tta in TTA_MODES:
        load_before = os.getloadavg()
        merged, raw, seconds = _network(testset, _stage(tta, backend, batch_size))
        load_after = os.getloadavg()
        names = list(POST_GRID)
        for values in itertools.product(*POST_GRID.values()):
            knobs = dict(zip(names, values, strict=True))
            masks, post_seconds = _post(testset, merged, **knobs)
            rows.append(
                {
                    "tta": tta,
                    **knobs,
                    **{k: round(v, 4) for k, v in score(masks, truths).items()},
                    "ms_per_image": round(1000.0 * (seconds + post_seconds) / len(testset), 1),
                    "network_ms_per_image": round(1000.0 * seconds / len(testset), 1),
                    "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
                }
            )
        masks, _ = _post(testset, merged)
        ious = [iou(m, t) for m, t in zip(masks, truths, strict=True)]
        decided = [mask_confidence(p) if m.any() else 0.0 for p, m in zip(merged, masks, strict=True)]
        box = [decided_share(p) if m.any() else 0.0 for p, m in zip(merged, masks, strict=True)]
        entry = {
            "mask_confidence": round(spearman(decided, ious), 3),
            "decided_share_in_box": round(spearman(box, ious), 3),
        }
        if tta != "none":
            views = len(raw) // len(testset)
            agree = [flip_agreement(raw[i * views][:, :, 0], raw[i * views + 1][:, ::-1, 0]) for i in range(len(ious))]
            entry["flip_agreement"] = round(spearman(agree, ious), 3)
        correlation[tta] = entry
        correlation[tta]["per_item"] = [
            {"name": name, "iou": round(v, 4), "confidence": round(c, 4)}
            for (_, _, name), v, c in zip(testset, ious, decided, strict=True)
        ]
    best = {}
    for tta in TTA_MODES:
        mine = [row for row in rows if row["tta"] == tta]
        best[tta] = {
            "default": next(r for r in mine if not (r["min_island"] or r["fill_holes"] or r["refine_radius"])),
            "best": max(mine, key=lambda r: (r["iou_mean"], r["bf_mean"], -r["min_island"], -r["refine_radius"])),
        }
    return {"summary": best, "rows": rows, "confidence_spearman": correlation}


RECIPE_KNOBS = {"min_island": 0.05, "refine_radius": 4}  # segment.product in the shipped recipes (marketplace-white)
QUALITY_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("u2netp plain (rembg's post-processing)", "none", {"matting": "none"}),
    ("default (matting closed_form band 3)", "none", {}),
    ("refine_radius 2", "none", {"matting": "none", "refine_radius": 2}),
    ("refine_radius 4, eps 1e-3", "none", {"matting": "none", "refine_radius": 4, "refine_eps": 1e-3}),
    ("min_island 0.05 + fill_holes", "none", {"matting": "none", "min_island": 0.05, "fill_holes": True}),
    ("recipes' min_island 0.05 + refine_radius 4, no matting", "none", {"matting": "none", **RECIPE_KNOBS}),
    ("recipes' min_island 0.05 + refine_radius 4 + default", "none", dict(RECIPE_KNOBS)),
    ("matting closed_form band 6", "none", {"matting": "closed_form", "matting_band": 6}),
    ("matting closed_form band 12", "none", {"matting": "closed_form", "matting_band": 12}),
    ("matting knn band 3", "none", {"matting": "knn"}),
    ("grabcut 3, no matting", "none", {"matting": "none", "grabcut": 3}),
    ("grabcut 3 + default", "none", {"grabcut": 3}),
    ("tta flip, no matting", "flip", {"matting": "none"}),
    ("tta flip + default", "flip", {}),
    ("tta flip + refine_radius 2, no matting", "flip", {"matting": "none", "refine_radius": 2}),
    ("tta flip_scales, no matting", "flip_scales", {"matting": "none"}),
    ("tta flip_scales + refine_radius 2, no matting", "flip_scales", {"matting": "none", "refine_radius": 2}),
)
"""The rows of ``--quality``: a label, the ``tta`` and the other ``segment.product`` parameters."""


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("iou", "bf", "alpha_mae_band", "alpha_mae", "halo", "halo_no_decontaminate")
    out: dict[str, Any] = {"n": len(rows)}
    for key in keys:
        out[f"{key}_mean"] = round(float(np.mean([r[key] for r in rows])), 4)
    out["iou_min"] = round(float(np.min([r["iou"] for r in rows])), 4)
    out["worst"] = min(rows, key=lambda r: r["iou"])["name"]
    return out


def score_composites(items: list[Composite], masks: list[np.ndarray]) -> list[dict[str, Any]]:
    """Per composite: ``iou`` and ``bf`` (2 px) against its ``shape``, ``alpha_mae`` (whole image) and
    ``alpha_mae_band`` (:func:`edge_band`) against its true alpha, and :func:`halo` of ``segment.cutout``'s cut-out
    with ``decontaminate`` on (``halo``) and off (``halo_no_decontaminate``)."""
    from imgx_segment import CutoutParams, cutout_array

    on, off = CutoutParams(), CutoutParams(decontaminate=False)
    rows = []
    for item, mask in zip(items, masks, strict=True):
        row: dict[str, Any] = {"name": item.name, "category": item.category}
        row["iou"] = iou(mask, item.shape)
        row["bf"] = boundary_f(mask, item.shape)
        row["alpha_mae"] = alpha_error(mask, item.alpha)
        row["alpha_mae_band"] = alpha_error(mask, item.alpha, edge_band(item.alpha))
        if mask.max() >= 8:
            row["halo"] = halo(*cutout_array(item.image, mask, on), item)
            row["halo_no_decontaminate"] = halo(*cutout_array(item.image, mask, off), item)
        else:  # no product found: the cut-out fails; score the empty cut-out
            empty = np.zeros_like(mask)
            row["halo"] = row["halo_no_decontaminate"] = halo(item.image, empty, item)
        rows.append(row)
    return rows


def quality(
    items: list[Composite],
    options: tuple[tuple[str, str, dict[str, Any]], ...] = QUALITY_OPTIONS,
    backend: str = "onnxruntime",
    batch_size: int = 8,
) -> dict[str, Any]:
    """Every option of ``options`` on the composites: overall and per-category means (IoU, boundary F, alpha error,
    halo with and without decontamination), worst IoU and ms/image (the network's views, batched, and the
    post-processing; the network runs once per ``tta``); and the halo of ``segment.cutout`` given the *true* alpha,
    which isolates its decontamination from the mask's errors."""
    images = [item.image for item in items]
    cache: dict[str, tuple[list[np.ndarray], float, list[float]]] = {}
    table = []
    for label, tta, knobs in options:
        if tta not in cache:
            load_before = os.getloadavg()[0]
            merged, _, seconds = _network(images, _stage(tta, backend, batch_size))
            cache[tta] = (merged, seconds, [round(load_before, 2), round(os.getloadavg()[0], 2)])
        merged, seconds, load = cache[tta]
        if knobs.get("matting", "none") != "none":  # JIT warm-up outside the timing (the first call compiles)
            _post(images[:1], merged[:1], **knobs)
        masks, post_seconds = _post(images, merged, **knobs)
        rows = score_composites(items, masks)
        table.append(
            {
                "option": label,
                "tta": tta,
                **knobs,
                "ms_per_image": round(1000.0 * (seconds + post_seconds) / len(items), 1),
                "post_ms_per_image": round(1000.0 * post_seconds / len(items), 1),
                "load_average_1min": load,
                **_summary(rows),
                "per_category": {c: _summary([r for r in rows if r["category"] == c]) for c in CATEGORIES},
                "per_item": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
            }
        )
    true_alpha = []
    from imgx_segment import CutoutParams, cutout_array

    for item in items:
        true_alpha.append(
            {
                "category": item.category,
                "halo": halo(*cutout_array(item.image, item.alpha, CutoutParams()), item),
                "halo_no_decontaminate": halo(
                    *cutout_array(item.image, item.alpha, CutoutParams(decontaminate=False)), item
                ),
            }
        )
    cut = {
        c: {
            k: round(float(np.mean([r[k] for r in true_alpha if c in ("all", r["category"])])), 3)
            for k in ("halo", "halo_no_decontaminate")
        }
        for c in ("all", *CATEGORIES)
    }
    return {"options": table, "cutout_with_true_alpha": cut}


def _print_table(result: dict[str, Any]) -> str:
    lines = [
        "| option | mean IoU | worst IoU | BF 2px | alpha MAE band | halo dE (decont. on / off) | ms/image |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["options"]:
        lines.append(
            f"| {row['option']} | {row['iou_mean']:.4f} | {row['iou_min']:.4f} | {row['bf_mean']:.4f} | "
            f"{row['alpha_mae_band_mean']:.4f} | {row['halo_mean']:.2f} / {row['halo_no_decontaminate_mean']:.2f} | "
            f"{row['ms_per_image']:.0f} |"
        )
    lines.append("")
    lines.append("| option | " + " | ".join(f"{c} IoU / worst / alpha MAE / halo" for c in CATEGORIES) + " |")
    lines.append("|---" * (len(CATEGORIES) + 1) + "|")
    for row in result["options"]:
        cells = [
            f"{p['iou_mean']:.3f} / {p['iou_min']:.3f} / {p['alpha_mae_band_mean']:.3f} / {p['halo_mean']:.1f}"
            for p in (row["per_category"][c] for c in CATEGORIES)
        ]
        lines.append(f"| {row['option']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Score ``segment.product`` on :func:`build_testset` and print the scores as JSON (``--sweep``: every option,
    written to ``--out`` with the machine's description)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the test set (default 0)")
    parser.add_argument("--n", type=int, default=60, help="images in the test set (default 60)")
    parser.add_argument("--long-side", type=int, default=256, help="long side of each image in pixels (default 256)")
    parser.add_argument("--backend", default="onnxruntime", help="model backend (default onnxruntime)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    parser.add_argument("--tta", default="none", choices=("none", "flip", "flip_scales"), help="test-time augmentation")
    parser.add_argument("--min-island", type=float, default=0.0, help="segment.product's min_island (default 0)")
    parser.add_argument("--fill-holes", action="store_true", help="segment.product's fill_holes")
    parser.add_argument("--refine-radius", type=int, default=0, help="segment.product's refine_radius (default 0)")
    parser.add_argument("--sweep", action="store_true", help="every tta with a grid of post-processing knobs")
    parser.add_argument("--quality", action="store_true", help="the harder per-category set with every option")
    parser.add_argument("--per-category", type=int, default=12, help="--quality: composites per category (default 12)")
    parser.add_argument(
        "--options",
        default=None,
        help="--quality: only the rows whose label contains one of these comma-separated words (the default's row "
        "is always kept)",
    )
    parser.add_argument("--out", default=None, help="--sweep / --quality: write the JSON here too")
    args = parser.parse_args(argv)

    if args.quality:
        from imgx.machine import machine_info

        items = build_quality_set(args.seed, args.per_category, args.long_side)
        options = QUALITY_OPTIONS
        if args.options:
            words = [w.strip() for w in args.options.split(",") if w.strip()]
            options = tuple(o for i, o in enumerate(options) if i < 2 or any(w in o[0] for w in words))
        result = {
            "parameters": vars(args),
            **quality(items, options, backend=args.backend, batch_size=args.batch_size),
        }
        result["machine"] = machine_info("cpu")
        result["table"] = _print_table(result)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(result, indent=1) + "\n")
        print(result["table"])
        return 0

    testset = build_testset(args.seed, args.n, args.long_side)
    if args.sweep:
        from imgx.machine import machine_info

        result = {"parameters": vars(args), **sweep(testset, args.backend, args.batch_size)}
        result["machine"] = machine_info("cpu")
        text = json.dumps(result, indent=1)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        print(text)
        return 0
    knobs = {"min_island": args.min_island, "fill_holes": args.fill_holes, "refine_radius": args.refine_radius}
    result = evaluate(testset, args.tta, args.backend, args.batch_size, **knobs)
    shown = {k: round(v, 4) for k, v in result.items() if k not in ("ious", "confidences")}
    print(json.dumps({"parameters": vars(args), **shown}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
