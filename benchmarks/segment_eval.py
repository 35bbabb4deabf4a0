"""Quality of product masks: a segmentation test set with exact ground truth, and the scores of a mask against it.

A benchmark module, not part of a stage: ``segment.product`` ships without it. Its tests
(``tests/benchmarks/test_segment_eval.py``) hold the model's measured quality; run it to print the scores::

    python benchmarks/segment_eval.py --n 60 --backend onnxruntime             # today's default
    python benchmarks/segment_eval.py --n 60 --tta flip --refine-radius 2     # one option
    python benchmarks/segment_eval.py --n 60 --sweep --out benchmarks/results/segment-quality-vm-20261205.json

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

    predict([testset[0][0]], stage.params.tta, stage.infer_images)  # warm-up: the backend's first call is slower
    start = time.perf_counter()
    merged = predict([image for image, _, _ in testset], stage.params.tta, infer)
    return merged, raw, time.perf_counter() - start


def _post(testset: list, merged: list[np.ndarray], **knobs: Any) -> tuple[list[np.ndarray], float]:
    from imgx_segment import SegmentProductParams, mask_from_prediction

    params = SegmentProductParams(**knobs)
    start = time.perf_counter()
    masks = [mask_from_prediction(image, pred, params) for (image, _, _), pred in zip(testset, merged, strict=True)]
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
    parser.add_argument("--out", default=None, help="--sweep: write the JSON here too")
    args = parser.parse_args(argv)

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
