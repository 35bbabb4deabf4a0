"""``imgx audit`` throughput: images per second over a catalog of real photos at 2000 px, with and without the OCR
(``text``) rule, alternated in one session.

The catalog is product-like shots made from scikit-image's real photos: a photo pasted on a white 2000 px square at a
fill between 60 % and 95 %, a quarter of them with a caption drawn over the white background (the ``text`` rule's
target). Each audit is the installed ``imgx audit`` in a subprocess, timed from start to exit (start-up, catalog
listing, U2-Netp cut-outs, the rules, the JSON report), as a catalog team runs it. ``with_ocr`` audits with
``amazon-main``; ``without_ocr`` with the same pack less ``text`` (a user pack: ``extends: amazon-main``,
``drop: [text]``). The two alternate (with, without, with, ...) so drift on a shared machine hits both; the ratio is
taken from medians of the same session.

Example (what ``benchmarks/results/audit-*.json`` was made with)::

    python benchmarks/bench_audit.py --items 1000 --size 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CAPTIONS = ("SALE -50%", "NEW", "FREE SHIPPING", "BEST PRICE")


def write_catalog(folder: Path, items: int, size: int) -> int:
    """``items`` JPEG product shots of ``size`` px (see the module's docstring); returns how many carry a caption."""
    import cv2
    import numpy as np
    from PIL import Image
    from skimage import data

    photos = [np.asarray(getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    captioned = 0
    for index in range(items):
        rng = np.random.default_rng(index)
        photo = photos[index % len(photos)]
        fill = float(rng.uniform(0.6, 0.95))
        scale = fill * size / max(photo.shape[:2])
        piece = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), cv2.INTER_AREA)
        canvas = np.full((size, size, 3), 255, np.uint8)
        top, left = (size - piece.shape[0]) // 2, (size - piece.shape[1]) // 2
        canvas[top : top + piece.shape[0], left : left + piece.shape[1]] = piece
        if index % 4 == 3:
            text = CAPTIONS[index % len(CAPTIONS)]
            cv2.putText(canvas, text, (size // 20, size // 14), cv2.FONT_HERSHEY_SIMPLEX, size / 700, (20, 20, 20), 4)
            captioned += 1
        target = folder / f"cat{index % 10}" / f"SKU-{index:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(target, quality=90)
    return captioned


def audit(catalog: Path, pack: str, workers: int, report: Path) -> float:
    imgx = shutil.which("imgx", path=str(Path(sys.executable).parent)) or "imgx"
    command = [imgx, "audit", str(catalog), "-r", pack, "--workers", str(workers), "--json", str(report)]
    start = time.perf_counter()
    proc = subprocess.run([*command, "--no-progress"], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--size", type=int, default=2000, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON to write (default: results/audit-vm-<date>)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="imgx-bench-audit-"))
    try:
        catalog = work / "catalog"
        start = time.perf_counter()
        captioned = write_catalog(catalog, args.items, args.size)
        print(f"catalog: {args.items} images of {args.size} px in {time.perf_counter() - start:.1f} s", flush=True)
        no_ocr = work / "no-ocr.yaml"
        no_ocr.write_text("name: amazon-main-no-ocr\nextends: amazon-main\ndrop: [text]\n")
        packs = {"with_ocr": "amazon-main", "without_ocr": str(no_ocr)}
        seconds: dict[str, list[float]] = {kind: [] for kind in packs}
        found: dict[str, dict[str, Any]] = {}
        for repeat in range(args.repeats):
            for kind, pack in packs.items():
                report = work / f"{kind}.json"
                seconds[kind].append(audit(catalog, pack, args.workers, report))
                summary = json.loads(report.read_text())["summary"]
                found[kind] = {"images": summary["images"], "violations": summary["violations"]}
                print(f"repeat {repeat + 1}: {kind} {seconds[kind][-1]:.1f} s {found[kind]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    medians = {kind: statistics.median(values) for kind, values in seconds.items()}
    result: dict[str, Any] = {
        "benchmark": "audit",
        "command": " ".join(["python", "benchmarks/bench_audit.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "items": args.items,
        "size": args.size,
        "workers": args.workers,
        "captioned": captioned,
        "seconds": seconds,
        "median_seconds": medians,
        "images_per_second": {kind: args.items / median for kind, median in medians.items()},
        "ocr_over_no_ocr_time": medians["with_ocr"] / medians["without_ocr"],
        "found": found,
    }
    sys.path.insert(0, str(REPO / "engine"))
    from imgx.machine import machine_info

    result["machine"] = machine_info("cpu")
    target = args.out or REPO / "benchmarks" / "results" / f"audit-vm-{dt.date.today():%Y%m%d}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("images_per_second", "ocr_over_no_ocr_time")}, indent=2))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
