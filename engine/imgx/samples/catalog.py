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

The photo packages are scikit-image (an imgx dependency) and the ``imgx[demo]`` extra; a package that is missing
(or a scikit-image sample that needs a download) is skipped and listed in the manifest's ``skipped``, and synthetic
textures fall back to procedural noise.
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

import numpy as np
from PIL import Image

from ..io.atomic import atomic_write
from .photos import REAL_CUTOUTS, REAL_PHOTOS, resize_long_side, try_load
from .products import Shot, composite_cutout, render_product_shot
from .textures import Textures, load_textures

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


#: Width:height ratios of the demo's synthetic shots (either way round).
ASPECTS = ((1, 1), (4, 5), (3, 4), (2, 3), (3, 2), (16, 9), (5, 4))


@dataclasses.dataclass(frozen=True)
class _Job:
    """One image to write: ``render`` returns the pixels (and mask) when called in a worker thread."""

    sku: str
    kind: str
    ext: str
    render: Callable[[], Shot]


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
    atomic_write(directory / image_rel, _encode(shot.image, job.ext, quality))
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
        atomic_write(directory / mask_rel, _encode(shot.mask, "png", quality))
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
    atomic_write(directory / MANIFEST_CSV, lines.getvalue().encode())
    manifest = {"generator": GENERATOR, "params": params, "sources": list(sources), "skipped": skipped,
                "images": records}  # fmt: skip
    atomic_write(directory / TRUTH_DIR / CATALOG_JSON, (json.dumps(manifest, indent=1) + "\n").encode())
    return _to_catalog_images(directory, records)


def _product_jobs(
    count: int, seed: int, sizes: Callable[[np.random.Generator], tuple[int, int]], fmt: str, textures: Textures
) -> list[_Job]:
    digits = max(4, len(str(count)))
    jobs = []
    for index in range(1, count + 1):

        def render(index: int = index) -> Shot:
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
        array, error = try_load(load)
        if array is None:
            skipped[name] = error or "failed"
            continue

        def render_photo(array: np.ndarray = array) -> Shot:
            image = resize_long_side(Image.fromarray(array[:, :, :3]).convert("RGB"), size)
            return Shot(np.asarray(image), None, {})

        jobs.append(_Job(f"real/{name}", "real", "jpg", render_photo))
    for name, load in REAL_CUTOUTS.items():
        array, error = try_load(load)
        if array is None or array.ndim != 3 or array.shape[2] != 4:
            skipped[name] = error or "not an RGBA image"
            continue
        jobs.append(_Job(f"real/{name}", "real", "jpg", functools.partial(composite_cutout, array, size)))

    def demo_size(rng: np.random.Generator) -> tuple[int, int]:
        long_side = round(size * rng.uniform(0.75, 1.0))
        a, b = ASPECTS[int(rng.integers(len(ASPECTS)))]
        if rng.random() < 0.5:
            a, b = b, a
        w, h = (long_side, round(long_side * b / a)) if a >= b else (round(long_side * a / b), long_side)
        return max(w, 16), max(h, 16)

    textures = load_textures()
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
    textures = load_textures()
    jobs = _product_jobs(count, seed, lambda rng: (size, size), fmt, textures)
    sources = [f"texture:{n}" for n in textures.names]
    return _build(directory, params, jobs, quality=quality, workers=workers, skipped={}, sources=sources)
