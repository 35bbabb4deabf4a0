"""Output encoders side by side: every PNG, JPEG and WebP encoder at hand, on real photos, in one session.

Contenders per format: Pillow and OpenCV (both always installed), fpng for PNG (an imgx dependency: what
``output.png_compression: fast`` uses), and imagecodecs' libpng, libspng, libjpeg-turbo and libwebp encoders when
imagecodecs is installed (it is not an imgx dependency: ``pip install imagecodecs`` to include it; the JSON lists
what was missing). Each gets the same ``(H, W, 3)`` uint8 photos (scikit-image's astronaut, coffee, chelsea, rocket
resized to ``--size``), alternated photo by photo so drift on a shared machine hits all alike; the time is the median
over photos and repeats. PNG is lossless, so every PNG encoder's decoded pixels must equal the photo (checked);
JPEG and WebP record the largest pixel difference from Pillow's file at the same settings. ``imgx.io.encode`` uses
the fastest encoder per format whose pixels agree (fpng for PNG by default, OpenCV at a zlib level; Pillow for JPEG
and WebP).

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


def _fpng(fmt: str, quality: int, level: int) -> Callable[[np.ndarray], bytes] | None:
    if fmt != "png":
        return None
    import fpng

    return lambda image: fpng.from_ndarray(np.ascontiguousarray(image))


def _imagecodecs(codec: str) -> Callable[[str, int, int], Callable[[np.ndarray], bytes] | None]:
    def make(fmt: str, quality: int, level: int) -> Callable[[np.ndarray], bytes] | None:
        import imagecodecs

        if not getattr(imagecodecs, codec.upper()).available:
            return None
        encode = getattr(imagecodecs, f"{codec}_encode")
        if codec in ("png", "spng"):
            return lambda image: bytes(encode(image, level=level))
        if codec == "jpeg8":
            return lambda image: bytes(encode(image, level=quality, subsampling="444"))
        return lambda image: bytes(encode(image, level=quality, method=4, lossless=False))

    return make


#: Format -> contender name -> factory (``None`` from a factory: it does not write that format).
CONTENDERS: dict[str, dict[str, Callable[[str, int, int], Callable[[np.ndarray], bytes] | None]]] = {
    "png": {
        "pillow": _pillow,
        "opencv": _opencv,
        "fpng": _fpng,
        "imagecodecs-png": _imagecodecs("png"),
        "imagecodecs-spng": _imagecodecs("spng"),
    },
    "jpeg": {"pillow": _pillow, "opencv": _opencv, "imagecodecs-jpeg8": _imagecodecs("jpeg8")},
    "webp": {"pillow": _pillow, "opencv": _opencv, "imagecodecs-webp": _imagecodecs("webp")},
}


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
    missing: list[str] = []
    for fmt, contenders in CONTENDERS.items():
        encoders: dict[str, Callable[[np.ndarray], bytes]] = {}
        for name, factory in contenders.items():
            try:
                encode = factory(fmt, args.quality, args.png_level)
            except ImportError:
                missing.append(name)
                continue
            if encode is not None:
                encoders[name] = encode
        seconds: dict[str, list[float]] = {name: [] for name in encoders}
        sizes: dict[str, list[int]] = {name: [] for name in encoders}
        worst = dict.fromkeys(encoders, 0)
        for _ in range(args.repeats):
            for photo in photos:
                files = {}
                for name, encode in encoders.items():
                    start = time.perf_counter()
                    files[name] = encode(photo)
                    seconds[name].append(time.perf_counter() - start)
                    sizes[name].append(len(files[name]))
                reference = _pixels(files["pillow"])
                for name, encoded in files.items():
                    pixels = _pixels(encoded)
                    worst[name] = max(worst[name], int(np.abs(pixels - reference).max()))
                    if fmt == "png":
                        assert np.array_equal(pixels, photo), f"{name}'s PNG changed the pixels"
        ms = {name: 1000 * statistics.median(values) for name, values in seconds.items()}
        formats[fmt] = {
            "ms_per_image": ms,
            "time_over_pillow": {name: value / ms["pillow"] for name, value in ms.items()},
            "mean_bytes": {name: statistics.mean(values) for name, values in sizes.items()},
            "bytes_over_pillow": {
                name: statistics.mean(values) / statistics.mean(sizes["pillow"]) for name, values in sizes.items()
            },
            "max_pixel_difference_from_pillow": worst,
            "fastest": min(ms, key=ms.__getitem__),
        }
        print(
            f"{fmt}: "
            + ", ".join(
                f"{name} {value:.1f} ms ({formats[fmt]['bytes_over_pillow'][name]:.2f}x bytes)"
                for name, value in ms.items()
            )
        )

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
        "versions": _versions(),
        "not_installed": sorted(set(missing)),
        "formats": formats,
        "machine": machine_info("cpu"),
    }
    target = args.out or REPO / "benchmarks" / "results" / f"encode-vm-{dt.date.today():%Y%m%d}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")
    return 0


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("pillow", "opencv-contrib-python-headless", "fpng", "imagecodecs"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
