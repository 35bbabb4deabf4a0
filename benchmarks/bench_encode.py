"""Output encoders side by side: Pillow and OpenCV for PNG, JPEG and WebP on real photos, in one session.

For each format the two encoders get the same ``(H, W, 3)`` uint8 photos (scikit-image's astronaut, coffee, chelsea,
rocket resized to ``--size``), alternated photo by photo so drift on a shared machine hits both; the time is the
median over photos and repeats. PNG is lossless, so its decoded pixels must be identical from both encoders (checked
and recorded); JPEG and WebP record the largest pixel difference between the two encoders' files at the same
settings. ``imgx.io.encode`` uses the faster one per format where the pixels agree (OpenCV for PNG without an ICC
profile; Pillow for JPEG and WebP).

Example (what ``benchmarks/results/encode-*.json`` was made with)::

    python benchmarks/bench_encode.py --size 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _pillow(fmt: str, quality: int, level: int) -> Callable[[np.ndarray], bytes]:
    def encode(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        if fmt == "png":
            Image.fromarray(image).save(buffer, "PNG", compress_level=level, optimize=False)
        elif fmt == "jpeg":
            Image.fromarray(image).save(buffer, "JPEG", quality=quality, optimize=False, subsampling=0)
        else:
            Image.fromarray(image).save(buffer, "WEBP", quality=quality, method=4)
        return buffer.getvalue()

    return encode


def _opencv(fmt: str, quality: int, level: int) -> Callable[[np.ndarray], bytes]:
    params = {
        "png": (".png", [cv2.IMWRITE_PNG_COMPRESSION, level]),
        "jpeg": (
            ".jpg",
            [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
        ),
        "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, quality]),
    }[fmt]

    def encode(image: np.ndarray) -> bytes:
        ok, buffer = cv2.imencode(params[0], np.ascontiguousarray(image[..., ::-1]), params[1])
        assert ok
        return buffer.tobytes()

    return encode


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--png-level", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None, help="JSON to write (default: results/encode-vm-<date>)")
    args = parser.parse_args(argv)

    from skimage import data

    photos = [cv2.resize(np.asarray(getattr(data, n)()), (args.size, args.size), cv2.INTER_CUBIC) for n in PHOTOS]
    formats: dict[str, Any] = {}
    for fmt in ("png", "jpeg", "webp"):
        encoders = {
            "pillow": _pillow(fmt, args.quality, args.png_level),
            "opencv": _opencv(fmt, args.quality, args.png_level),
        }
        seconds: dict[str, list[float]] = {name: [] for name in encoders}
        sizes: dict[str, list[int]] = {name: [] for name in encoders}
        worst = 0
        for _ in range(args.repeats):
            for photo in photos:
                files = {}
                for name, encode in encoders.items():
                    start = time.perf_counter()
                    files[name] = encode(photo)
                    seconds[name].append(time.perf_counter() - start)
                    sizes[name].append(len(files[name]))
                worst = max(worst, int(np.abs(_pixels(files["pillow"]) - _pixels(files["opencv"])).max()))
                if fmt == "png":
                    assert np.array_equal(_pixels(files["opencv"]), photo), "OpenCV's PNG changed the pixels"
        ms = {name: 1000 * statistics.median(values) for name, values in seconds.items()}
        formats[fmt] = {
            "ms_per_image": ms,
            "opencv_over_pillow_time": ms["opencv"] / ms["pillow"],
            "mean_bytes": {name: statistics.mean(values) for name, values in sizes.items()},
            "max_pixel_difference_between_encoders": worst,
        }
        print(f"{fmt}: pillow {ms['pillow']:.1f} ms, opencv {ms['opencv']:.1f} ms, max pixel difference {worst}")

    sys.path.insert(0, str(REPO / "engine"))
    from imgx.machine import machine_info

    result = {
        "benchmark": "encode",
        "command": " ".join(["python", "benchmarks/bench_encode.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "size": args.size,
        "photos": list(PHOTOS),
        "repeats": args.repeats,
        "quality": args.quality,
        "png_level": args.png_level,
        "pillow": Image.__version__,
        "opencv": cv2.__version__,
        "formats": formats,
        "machine": machine_info("cpu"),
    }
    target = args.out or REPO / "benchmarks" / "results" / f"encode-vm-{dt.date.today():%Y%m%d}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
