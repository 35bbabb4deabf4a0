"""Quality of product masks: a segmentation test set with exact ground truth, and the scores of a mask against it.

A benchmark module, not part of a stage: ``segment.product`` ships without it. Its tests
(``tests/benchmarks/test_segment_eval.py``) hold the model's measured quality; run it to print the scores::

    python benchmarks/segment_eval.py --n 16 --backend onnxruntime

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
recall of boundary pixels matched within a pixel tolerance).
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

__all__ = ["BACKGROUNDS", "OBJECTS", "boundary_f", "build_testset", "iou", "score"]

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


def _composite(name: str, background: str, rng: np.random.Generator, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    aspect = (1.0, 0.75, 0.8, 1.25, 4 / 3)[int(rng.integers(5))]
    h, w = (long_side, round(long_side * aspect)) if aspect < 1 else (round(long_side / aspect), long_side)
    canvas = _background(background, h, w, rng)
    rgb, alpha = _object(name, rng)
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
    if rng.random() < 0.75:
        _shadow(canvas, x0 + ow / 2, y0 + oh * 0.98, ow * 0.5, float(rng.uniform(0.2, 0.5)))
    region = canvas[y0 : y0 + oh, x0 : x0 + ow]
    region *= 1.0 - alpha[:, :, None]
    region += pre
    canvas += rng.normal(0.0, 1.0 / 255.0, canvas.shape).astype(np.float32)
    mask = np.zeros((h, w), np.uint8)
    mask[y0 : y0 + oh, x0 : x0 + ow] = (alpha * 255.0 + 0.5).astype(np.uint8)
    return (np.clip(canvas, 0, 1) * 255.0 + 0.5).astype(np.uint8), mask


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


def main(argv: list[str] | None = None) -> int:
    """Score ``segment.product`` (default parameters) on :func:`build_testset` and print the scores as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the test set (default 0)")
    parser.add_argument("--n", type=int, default=16, help="images in the test set (default 16)")
    parser.add_argument("--long-side", type=int, default=256, help="long side of each image in pixels (default 256)")
    parser.add_argument("--backend", default="onnxruntime", help="model backend (default onnxruntime)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    args = parser.parse_args(argv)

    from imgx import Item, StageContext, load_registry
    from imgx_segment import SegmentProduct, SegmentProductParams

    testset = build_testset(args.seed, args.n, args.long_side)
    stage = SegmentProduct(
        SegmentProductParams(), StageContext(backend=args.backend, batch_size=args.batch_size, registry=load_registry())
    )
    out = stage([Item(name, "testset", image) for image, _, name in testset])
    result = score([o.alpha for o in out], [mask for _, mask, _ in testset])
    print(json.dumps({"parameters": vars(args), **{k: round(v, 4) for k, v in result.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
