"""Recipe-level benchmark of ``segment.product``: ``imgx run`` against a hand-written ONNX Runtime loop, same machine.

The catalog: ``--count`` ``--size`` x ``--size`` JPEGs (quality 90), each a random crop of a real photo shipped with
scikit-image, matplotlib or scikit-learn (built once and reused; see ``bench_style.build_catalog``).

Contenders, each a real command in a child process, timed wall-clock around the whole command:

- ``loop``: this file with ``--loop``: one process, rembg's original ``u2netp.onnx`` (the verified registry copy) in
  an ONNX Runtime session with its default threads, and per image: decode (Pillow), resize to 320 x 320 (bicubic),
  divide by the max, ImageNet-normalise, run, min-max normalise the first output (an empty mask for a flat image or a
  peak saliency under 0.1, the stage's default ``min_confidence``), upsample to the image size
  (Pillow bicubic on floats), round to uint8, RGBA PNG encode (zlib level 6) and write: what the stage and the
  engine do, written by hand.
- ``imgx run RECIPE``: a recipe of ``segment.product`` with default parameters but ``matting: none`` (the stage's
  default since version 2 re-estimates a 3 px edge band by closed-form matting, ~30-50 ms per image, which the loop's
  plain mask does not; ``--matting`` keeps the default and gives up the same-mask check) (with ``--cutout``, then
  ``segment.cutout`` with its defaults: edges decontaminated, hidden pixels cleared), PNG out, per backend
  (``--backends``), per PNG setting (``--png``: ``fast``, imgx's default, and zlib level 6, the loop's), ``--workers``
  workers (default 2), FP32 on the CPU. The loop does no more with ``--cutout`` (rembg's cut-out is the mask put in
  the alpha channel), so there imgx does more work per image than its contender; and where no product is found the
  cut-out fails the item (no empty cut-out is written: ``items_without_output``) while the loop writes a clear PNG.

Each configuration gets an untimed warm-up run on a few images (ONNX export, compile caches, page cache), then all
run in turn ``--repeats`` times, the order rotated every repeat. Same masks: the alpha of every imgx PNG is compared
with the loop's (max absolute difference in uint8 levels; the port is within 2e-4 of the original, so <= 1).
Target: imgx >= 1.5x the loop's masks per second.

Run ``python benchmarks/bench_segment.py --help``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_style import build_catalog, imgx_command, png_settings, timed_rounds, warm_up  # noqa: E402

SCHEMA = 1
TARGET_RATIO = 1.5
MIN_CONFIDENCE = 0.1  # segment.product's default min_confidence: below this peak saliency the mask is empty
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def jpeg_catalog(folder: Path, count: int, size: int, seed: int = 7) -> list[Path]:
    """``count`` JPEGs (quality 90) converted from ``bench_style``'s real-photo PNG crops. Idempotent."""
    from PIL import Image

    paths = [folder / f"sku-{i:03d}.jpg" for i in range(count)]
    if all(p.is_file() for p in paths):
        return paths
    pngs = build_catalog(folder / "_png", count, size, seed)
    for png, path in zip(pngs, paths, strict=True):
        with Image.open(png) as image:
            image.convert("RGB").save(path.with_suffix(".tmp.jpg"), quality=90)
        os.replace(path.with_suffix(".tmp.jpg"), path)
    shutil.rmtree(folder / "_png", ignore_errors=True)
    return paths


# ---------------------------------------------------------------------------------------------------------------------
# The hand-written loop (runs in a child process: ``--loop CATALOG OUT``)


def hand_loop(catalog: Path, out: Path) -> None:
    import onnxruntime as ort
    from PIL import Image

    from imgx import load_registry
    from imgx.models import ensure_files, get_spec

    registry = load_registry()
    onnx = ensure_files(get_spec("u2netp", registry), registry=registry)["onnx"]
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(catalog.glob("*.jpg")):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        small = np.asarray(image.resize((320, 320), Image.Resampling.BICUBIC), dtype=np.float32)
        small *= np.float32(1.0 / max(float(small.max()), 1e-6))
        x = ((small - MEAN) / STD).transpose(2, 0, 1)[None]
        pred = session.run(None, {"input.1": np.ascontiguousarray(x)})[0][0, 0]
        low, high = float(pred.min()), float(pred.max())
        pixels = np.asarray(image)
        if pixels.min() == pixels.max() or high < MIN_CONFIDENCE:  # the stage's rule: no product -> an empty mask
            mask = np.zeros_like(pred)
        else:
            mask = (pred - low) / (high - low)
        full = Image.fromarray(mask.astype(np.float32), "F").resize(image.size, Image.Resampling.BICUBIC)
        alpha = (np.clip(np.asarray(full), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        image.putalpha(Image.fromarray(alpha))
        tmp = out / f".{path.stem}.png.tmp"
        image.save(tmp, "PNG", compress_level=6)
        os.replace(tmp, out / f"{path.stem}.png")


# ---------------------------------------------------------------------------------------------------------------------
# imgx


def write_recipe(
    path: Path,
    catalog: Path,
    out: Path,
    backend: str,
    workers: int,
    batch_size: int,
    png: str | int = 6,
    cutout: bool = False,
    matting: bool = False,
) -> Path:
    import yaml

    product = {} if matting else {"matting": "none"}
    stages: list[dict[str, Any]] = [{"id": "masked", "uses": "segment.product", "with": product}]
    if cutout:
        stages.append({"id": "cutout", "uses": "segment.cutout", "needs": ["masked"], "with": {}})
    recipe = {
        "version": 1,
        "name": f"bench-segment-{backend}-w{workers}",
        "input": {"path": str(catalog), "pattern": "*.jpg"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}.{ext}", "png_compression": png},
        "execution": {
            "executor": "local",
            "workers": workers,
            "batch_size": batch_size,
            "device": "cpu",
            "backend": backend,
            "precision": "fp32",
            # segment.cutout fails an item whose mask is empty (no product found: the loop writes a clear PNG)
            "max_failures": "99%" if cutout else 0,
        },
        "stages": stages,
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def mask_diff(a: Path, b: Path) -> int:
    """Max absolute difference of the alpha channels of two PNGs, in uint8 levels."""
    from PIL import Image

    with Image.open(a) as x, Image.open(b) as y:
        ax, ay = np.asarray(x.getchannel("A"), np.int16), np.asarray(y.getchannel("A"), np.int16)
    if ax.shape != ay.shape:
        raise SystemExit(f"got masks {ax.shape} from {a} and {ay.shape} from {b}; expected the same size")
    return int(np.abs(ax - ay).max())


# ---------------------------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64, help="images in the catalog (default 64)")
    parser.add_argument("--size", type=int, default=1024, help="side of the square JPEGs (default 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (default 3)")
    parser.add_argument("--backends", default="onnxruntime,eager,compile", help="imgx backends to time")
    parser.add_argument("--workers", type=int, default=2, help="imgx workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=4, help="imgx execution.batch_size (default 4)")
    parser.add_argument(
        "--png",
        default="fast,6",
        help="imgx output.png_compression settings to time, comma-separated (default fast,6; the loop writes level 6)",
    )
    parser.add_argument(
        "--cutout", action="store_true", help="imgx runs segment.cutout after segment.product (the loop: putalpha)"
    )
    parser.add_argument(
        "--matting",
        action="store_true",
        help="imgx keeps segment.product's default closed-form matting (masks then differ from the loop's)",
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / "build", help="catalog and run folders")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/segment-<host>-<date>.json)")
    parser.add_argument("--loop", nargs=2, type=Path, metavar=("CATALOG", "OUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.loop:
        hand_loop(*args.loop)
        return 0
    from imgx.machine import machine_info

    machine = machine_info("cpu")
    machine["load_average_at_start"] = list(os.getloadavg())
    catalog = args.work_dir / f"bench-segment-catalog-{args.count}-{args.size}"
    paths = jpeg_catalog(catalog, args.count, args.size)
    warm = args.work_dir / f"bench-segment-warm-{args.size}"
    jpeg_catalog(warm, 4, args.size, seed=11)
    for path in paths:  # page cache
        path.read_bytes()
    runs = args.work_dir / f"bench-segment-runs-{os.getpid()}"
    runs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    configs: list[dict[str, Any]] = [{"label": "onnxruntime loop", "kind": "loop"}]
    pngs = png_settings(args.png)
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        for png in pngs:
            label = f"imgx {backend} w{args.workers} png {png}"
            configs.append({"label": label, "kind": "imgx", "backend": backend, "png": png})

    def command(config: dict[str, Any], source: Path, out: Path) -> list[str]:
        if config["kind"] == "loop":
            return [sys.executable, str(Path(__file__).resolve()), "--loop", str(source), str(out)]
        name = f"{config['label'].replace(' ', '-')}-{out.name}.yaml"
        recipe = write_recipe(
            runs / name,
            source,
            out,
            config["backend"],
            args.workers,
            args.batch_size,
            config["png"],
            args.cutout,
            args.matting,
        )
        return imgx_command(recipe)

    failed = warm_up(configs, command, warm, runs, env)
    if "error" in configs[0]:
        raise SystemExit(f"the hand-written loop failed: {configs[0]['error']}")
    configs = [config for config in configs if "error" not in config]
    started = time.perf_counter()
    outputs = timed_rounds(configs, command, catalog, runs, env, args.repeats)

    reference = outputs["onnxruntime loop"]
    loop_median = statistics.median(configs[0]["raw_seconds"])
    for config in configs:
        median = statistics.median(config["raw_seconds"])
        config["median_seconds"] = round(median, 3)
        config["masks_per_second"] = round(args.count / median, 4)
        config["megapixels_per_second"] = round(args.count * args.size**2 / 1e6 / median, 3)
        config["ratio_vs_loop"] = round(loop_median / median, 3)
        if config["kind"] == "imgx":
            folder = outputs[config["label"]]
            written = [p for p in paths if (folder / f"{p.stem}.png").is_file()]
            config["items_without_output"] = [p.name for p in paths if p not in written]
            diffs = [mask_diff(folder / f"{p.stem}.png", reference / f"{p.stem}.png") for p in written]
            config["mask_max_abs_diff_vs_loop"] = max(diffs)
            config["images_with_mask_diff_over_1"] = [p.name for p, d in zip(written, diffs, strict=True) if d > 1]
            same = args.matting or max(diffs) <= 1  # matted masks differ from the loop's plain ones on purpose
            config["meets_target"] = bool(config["ratio_vs_loop"] >= TARGET_RATIO and same)
    shutil.rmtree(runs, ignore_errors=True)
    machine["load_average_at_end"] = list(os.getloadavg())

    result = {
        "schema": SCHEMA,
        "benchmark": "segment",
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "timed_seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "parameters": {
            "count": args.count,
            "size": args.size,
            "repeats": args.repeats,
            "workers": args.workers,
            "batch_size": args.batch_size,
            "precision": "fp32",
            "stages": {
                "segment.product": {} if args.matting else {"matting": "none"},
                **({"segment.cutout": {}} if args.cutout else {}),
            },
            "png": pngs,
            "target_ratio": TARGET_RATIO,
        },
        "configs": configs,
        "failed_configs": failed,
    }
    out = args.out or REPO / "benchmarks" / "results" / f"segment-{socket.gethostname()}-{dt.date.today():%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    what = "segment.product + segment.cutout" if args.cutout else "segment.product"
    print(f"\n{args.count} x {args.size}px JPEG -> RGBA PNG, {what}, FP32, {machine.get('cpu_model', '?')}")
    print(f"{'configuration':<32} {'median s':>9} {'masks/s':>9} {'vs loop':>9} {'mask diff':>9}")
    for config in configs:
        print(
            f"{config['label']:<32} {config['median_seconds']:>9.2f} {config['masks_per_second']:>9.3f} "
            f"{config['ratio_vs_loop']:>8.2f}x {config.get('mask_max_abs_diff_vs_loop', 0):>9}"
        )
    for config in failed:
        print(f"{config['label']:<32} failed: {config['error']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
