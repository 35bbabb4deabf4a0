"""The Ray executor against a hand-written ``multiprocessing.Pool`` and the local executor, and its driver memory.

Two measurements (``--only throughput|memory``; both by default):

- **throughput**: a CPU recipe over ``--count`` synthetic JPEGs of ``--size`` x ``--size`` pixels: decode,
  ``geometry.resize`` to a long side of 512, ``color.contrast`` (CLAHE), encode as JPEG q90, write. Three contenders
  in one process, interleaved ``--repeats`` times in rotating order after an untimed warm-up: a hand-written
  ``multiprocessing.Pool(--workers)`` (fork, ``imap_unordered``, chunksize = the recipe's ``batch_size``) calling
  the stages' plain functions and imgx's I/O functions; ``run_recipe`` with the local executor (``workers``); and
  ``run_recipe`` with the Ray executor on a local Ray of ``--workers`` CPUs. Ray is started once, before the
  repeats: its start-up (``ray.init``) and the first run's worker start are reported separately, not in the runs.
  Targets: Ray >= 0.9x and local >= 0.97x the pool's throughput (medians of the same run).
  With ``--via cli`` each run is a fresh process, as a user runs it: ``imgx run --executor local|ray`` against a
  script around the same hand pool, each over the whole catalog and over ``--small`` images (default 8), whose time
  (interpreter, imports, forking or starting a local Ray, the count pass, the ledger's last compaction) is subtracted
  for the ratio; the ratio of whole runs is reported too.
- **memory**: manifests of ``--memory-rows`` rows (default 10k, 50k, 100k) of small images (``--memory-size`` px;
  the rows point at a few hundred distinct files, every SKU unique), each run by ``imgx run --executor ray`` in a
  fresh process that starts its own local Ray. The driver's peak RSS (``ru_maxrss``) and its RSS sampled during the
  run show whether driver memory grows with the catalog (peak: ``VmHWM``, the process's own high-water mark;
  ``ru_maxrss`` would carry the harness's across ``exec``).

Run ``python benchmarks/bench_ray.py --help``; results go to ``benchmarks/results/ray-<host>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine

from imgx.machine import package_version

REPO = bench_engine.REPO
SCHEMA = 1
TARGETS = {"ray": 0.9, "local": 0.97}  # throughput / the hand-written pool's, at least
RESIZE_LONG_SIDE = 512
CLAHE = {"clip_limit": 2.0, "tile_grid": 8}
QUALITY = 90


# ---------------------------------------------------------------------------------------------------------------------
# The work, by hand (module level: the pool's forked workers call it)

_OUT: Path | None = None


def hand_process(task: tuple[str, str]) -> int:
    """Read, decode, resize, CLAHE, encode and write one image with imgx's own functions; the bytes written."""
    from imgx.io.atomic import atomic_write
    from imgx.io.decode import decode_image
    from imgx.io.encode import encode_image
    from imgx.io.source import read_source
    from imgx_color.contrast import auto_contrast
    from imgx_geometry import resize_image

    assert _OUT is not None
    sku, source = task
    item = decode_image(read_source(source), sku=sku, source=source, max_pixels=100_000_000)
    image, alpha = resize_image(item.image, item.alpha, long_side=RESIZE_LONG_SIDE)
    item = item.replace(image=auto_contrast(image, **CLAHE), alpha=alpha)
    data = encode_image(item, format="jpeg", quality=QUALITY, background=(255, 255, 255))
    atomic_write(_OUT / sku / "out.jpg", data, tmp_dir=_OUT / "_tmp")
    return len(data)


def _pool_init(out_dir: Path) -> None:
    global _OUT
    import cv2

    cv2.setNumThreads(1)  # as imgx's workers do
    _OUT = out_dir


def hand_pool(catalog: Path, out_dir: Path, workers: int, chunksize: int, limit: int | None = None) -> dict[str, Any]:
    import cv2

    tasks = bench_engine.list_catalog(catalog)[:limit]
    # A child forked from a process whose OpenCV thread pool has run hangs in its first OpenCV call (building the
    # catalog in this process on a fresh machine does that): with one thread the pool holds none (imgx's local
    # executor does the same around its own fork)
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_pool_init, initargs=(out_dir,)) as pool:
            for _ in pool.imap_unordered(hand_process, tasks, chunksize=chunksize):
                pass
            pool.close()
            pool.join()
    finally:
        cv2.setNumThreads(previous)
    return {"images": len(tasks)}


def write_recipe(folder: Path, catalog: Path, batch_size: int) -> Path:
    recipe = {
        "version": 1,
        "name": "bench-ray",
        "input": {"path": str(catalog), "pattern": ["**/*.jpg", "**/*.png"], "exclude": ["_truth/**"]},
        "output": {"dir": "out/", "format": "jpeg", "quality": QUALITY, "naming": "{sku}/{output}.{ext}"},
        "execution": {"batch_size": batch_size, "max_failures": 0},
        "stages": [
            {"id": "small", "uses": "geometry.resize", "with": {"long_side": RESIZE_LONG_SIDE}},
            {"id": "out", "uses": "color.contrast", "needs": ["small"], "with": CLAHE},
        ],
        "outputs": ["out"],
    }
    path = folder / "bench-ray.yaml"
    path.write_text(json.dumps(recipe, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def run_imgx(recipe: Path, executor: str, workers: int, limit: int | None = None) -> Callable[[Path], dict]:
    def run(out_dir: Path) -> dict[str, Any]:
        from imgx.runner import RunOptions, run_recipe

        overrides = [f"output.dir={out_dir}"] + ([f"input.limit={limit}"] if limit else [])
        options = RunOptions(executor=executor, workers=workers, overrides=tuple(overrides))
        summary = run_recipe(recipe, options)
        if summary.items_failed or summary.exit_code:
            raise SystemExit(f"{executor} run failed: {summary.items_failed} failed items")
        return {"images": summary.items_done, "executor_seconds": round(summary.seconds, 3)}

    return run


# ---------------------------------------------------------------------------------------------------------------------
# Throughput


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and every process under it, live or reaped: the pool's and the
    local executor's workers (reaped at the end of a run) and Ray's GCS, raylet and workers (alive across runs).
    Unlike wall time this does not depend on what else the machine runs, so it is comparable under load."""
    parents: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {os.getpid()}, {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    ticks = 0
    for pid in tree:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


_POOL_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[1])
    import bench_ray

    catalog, out, workers, chunksize, limit = sys.argv[2:7]
    bench_ray.hand_pool(Path(catalog), Path(out), int(workers), int(chunksize), int(limit) or None)
    """
)


def _setup(args: argparse.Namespace, folder: str) -> tuple[dict[str, Any], Path, Path, Path]:
    """The throughput catalog (built once, in the page cache), the runs' folder and the recipe in it."""
    work = Path(args.work_dir)
    catalog_info = bench_engine.build_catalog(work, args.count, args.size, seed=0)
    catalog = Path(catalog_info["dir"])
    bench_engine.warm_page_cache(catalog)
    runs_dir = work / folder
    runs_dir.mkdir(parents=True, exist_ok=True)
    return catalog_info, catalog, runs_dir, write_recipe(runs_dir, catalog, args.batch_size)


def cli_command(name: str, recipe: Path, catalog: Path, out: Path, args: argparse.Namespace, limit: int) -> list[str]:
    """The command line a user would type: ``imgx run`` for imgx's executors, a script around ``hand_pool`` for the
    pool; each in a fresh process, so every run pays its own start-up (interpreter, imports, workers, Ray)."""
    if name == "pool":
        bench_dir = str(Path(__file__).resolve().parent)
        return [sys.executable, "-c", _POOL_CHILD, bench_dir, str(catalog), str(out), str(args.workers),
                str(args.batch_size), str(limit)]  # fmt: skip
    imgx = str(Path(sys.executable).with_name("imgx"))
    command = [imgx, "run", str(recipe), "--executor", name, "--workers", str(args.workers), "--no-progress"]
    command += ["--set", f"output.dir={out}"] + (["--set", f"input.limit={limit}"] if limit else [])
    return command


def throughput_cli(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Each contender as a user runs it, in a fresh process per run: the whole catalog, and ``--small`` images to
    measure its start-up and end (interpreter, imports, forking or starting Ray, the count pass, the ledger's last
    compaction). The ratio compares the whole run less the small one, as the issue measured it; the plain ratio of
    whole runs (start-up included) is reported next to it."""
    catalog_info, catalog, runs_dir, recipe = _setup(args, "bench-ray-cli-runs")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    names = ["pool", *args.executors]

    def timed(name: str, limit: int, tag: str) -> tuple[float, float]:
        out = runs_dir / f"{name}-{tag}"
        bench_engine._settle(out)
        before = tree_cpu_seconds()
        start = time.perf_counter()
        done = subprocess.run(cli_command(name, recipe, catalog, out, args, limit), capture_output=True, text=True,
                              env=env)  # fmt: skip
        seconds = time.perf_counter() - start
        cpu_seconds = tree_cpu_seconds() - before
        if done.returncode != 0:
            raise SystemExit(f"{name} ({tag}) failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
        written = sum(1 for _ in out.rglob("out.jpg"))
        expected = limit or catalog_info["images"]
        if written != expected:
            raise SystemExit(f"{name} ({tag}) wrote {written} of {expected} outputs")
        return seconds, cpu_seconds

    for name in names:  # untimed: page cache, Python's bytecode cache, Ray's first start on this machine
        timed(name, args.small, "warm")
    raw: dict[str, dict[str, list[float]]] = {n: {"whole": [], "small": [], "cpu": [], "small_cpu": []} for n in names}
    digests: dict[str, dict[str, str]] = {}
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            small, small_cpu = timed(name, args.small, f"small-{repeat}")
            whole, cpu_seconds = timed(name, 0, f"whole-{repeat}")
            if repeat == 0:
                digests[name] = bench_engine._digest_outputs(runs_dir / f"{name}-whole-{repeat}")
            for key, value in (("whole", whole), ("small", small), ("cpu", cpu_seconds), ("small_cpu", small_cpu)):
                raw[name][key].append(round(value, 3))
            log(
                f"repeat {repeat + 1}/{args.repeats} {name:5s} whole {whole:7.2f} s  {args.small} images {small:5.2f} s"
                f"  net {whole - small:7.2f} s  {cpu_seconds:6.2f} CPU s"
            )
            bench_engine._settle(runs_dir / f"{name}-whole-{repeat}")
            bench_engine._settle(runs_dir / f"{name}-small-{repeat}")

    def net(name: str) -> list[float]:
        return [w - s for w, s in zip(raw[name]["whole"], raw[name]["small"], strict=True)]

    result: dict[str, Any] = {
        "catalog": catalog_info,
        "via": "cli",
        "small": args.small,
        "cpu_note": "CPU seconds of the processes this harness reaps: a local Ray's raylet and workers are left to "
        "init when the driver shuts Ray down, so the ray contender's CPU seconds leave them out",
        "contenders": {},
    }
    pool_net, pool_whole = statistics.median(net("pool")), statistics.median(raw["pool"]["whole"])
    for name in names:
        entry: dict[str, Any] = {
            "raw": raw[name],
            "median_whole_seconds": round(statistics.median(raw[name]["whole"]), 3),
            "median_small_seconds": round(statistics.median(raw[name]["small"]), 3),
            "median_net_seconds": round(statistics.median(net(name)), 3),
            "median_cpu_seconds": round(statistics.median(raw[name]["cpu"]), 3),
        }
        if name != "pool":
            entry["ratio_to_pool_net"] = round(pool_net / statistics.median(net(name)), 4)
            entry["paired_net_ratios"] = [round(p / s, 4) for p, s in zip(net("pool"), net(name), strict=True)]
            entry["ratio_to_pool_whole"] = round(pool_whole / statistics.median(raw[name]["whole"]), 4)
            entry["target"] = TARGETS[name]
            entry["pass"] = entry["ratio_to_pool_net"] >= TARGETS[name]
        result["contenders"][name] = entry
    result["outputs_identical"] = all(digests[name] == digests["pool"] for name in names)
    return result


def throughput(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    catalog_info, catalog, runs_dir, recipe = _setup(args, "bench-ray-runs")

    start = time.perf_counter()
    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    startup = {"ray_init_seconds": round(time.perf_counter() - start, 3)}
    contenders: dict[str, Callable[[Path], dict]] = {
        "pool": lambda out: hand_pool(catalog, out, args.workers, args.batch_size),
        "local": run_imgx(recipe, "local", args.workers),
        "ray": run_imgx(recipe, "ray", args.workers),
    }
    warm: dict[str, float] = {}
    for name, limit in (("pool", 8), ("local", 8), ("ray", 8)):
        out = runs_dir / f"warm-{name}"
        t = time.perf_counter()
        if name == "pool":
            hand_pool(catalog, out, args.workers, args.batch_size, limit=8)
        else:
            run_imgx(recipe, name, args.workers, limit)(out)
        warm[name] = round(time.perf_counter() - t, 3)
        bench_engine._settle(out)
    startup["first_ray_run_8_images_seconds"] = warm["ray"]
    log(f"ray start-up {startup['ray_init_seconds']:.2f} s; first ray run of 8 images {warm['ray']:.2f} s")

    raw: dict[str, list[float]] = {name: [] for name in contenders}
    details: dict[str, list[dict]] = {name: [] for name in contenders}
    digests: dict[str, dict[str, str]] = {}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for repeat in range(args.repeats):
        for name in order[repeat % 3 :] + order[: repeat % 3]:
            out = runs_dir / f"{name}-{repeat}"
            bench_engine._settle(out)
            before = tree_cpu_seconds()
            t = time.perf_counter()
            info = contenders[name](out)
            seconds = time.perf_counter() - t
            after = tree_cpu_seconds()
            if info["images"] != catalog_info["images"]:
                raise SystemExit(f"{name} processed {info['images']} of {catalog_info['images']} images")
            info["cpu_seconds"] = round(after - before, 3)
            cpu[name].append(after - before)
            if repeat == 0:
                digests[name] = bench_engine._digest_outputs(out)
            raw[name].append(round(seconds, 3))
            details[name].append(info)
            log(
                f"repeat {repeat + 1}/{args.repeats} {name:5s} {seconds:7.2f} s  {info['images'] / seconds:6.2f} img/s"
                f"  {after - before:6.2f} CPU s"
            )
            bench_engine._settle(out)
    ray.shutdown()

    images, megapixels = catalog_info["images"], catalog_info["megapixels"]
    result: dict[str, Any] = {"catalog": catalog_info, "startup": startup, "contenders": {}}
    pool_median = statistics.median(raw["pool"])
    pool_cpu = statistics.median(cpu["pool"])
    for name in contenders:
        median = statistics.median(raw[name])
        entry = {
            "raw_seconds": raw[name],
            "median_seconds": round(median, 3),
            "images_per_second": round(images / median, 3),
            "megapixels_per_second": round(megapixels / median, 3),
            "median_cpu_seconds": round(statistics.median(cpu[name]), 3),
            "details": details[name],
        }
        if name != "pool":
            entry["ratio_to_pool"] = round(pool_median / median, 4)
            entry["paired_ratios"] = [round(p / s, 4) for p, s in zip(raw["pool"], raw[name], strict=True)]
            entry["cpu_ratio_to_pool"] = round(pool_cpu / statistics.median(cpu[name]), 4)
            entry["target"] = TARGETS[name]
            entry["pass"] = entry["ratio_to_pool"] >= TARGETS[name]
        result["contenders"][name] = entry
    result["outputs_identical"] = digests["pool"] == digests["local"] == digests["ray"]
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Driver memory

_MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    from imgx.runner import RunOptions, run_recipe

    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append((time.perf_counter(), int(line.split()[1]) / 1024))
            time.sleep(0.5)

    def peak_rss_mib():
        # VmHWM: this process's own high-water mark (ru_maxrss keeps the parent's across exec on Linux)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    summary = run_recipe(sys.argv[1], RunOptions(executor=sys.argv[3], workers=int(sys.argv[2])))
    done.set()
    rss = [mib for _, mib in samples]
    third = max(1, len(rss) // 3)
    print(json.dumps({
        "executor": sys.argv[3],
        "rows": summary.items,
        "items_done": summary.items_done,
        "items_failed": summary.items_failed,
        "seconds": round(time.perf_counter() - start, 2),
        "run_seconds": round(summary.seconds, 2),
        "driver_peak_rss_mib": peak_rss_mib(),
        "driver_rss_mib_first_third_max": round(max(rss[:third]), 1) if rss else None,
        "driver_rss_mib_last_third_max": round(max(rss[-third:]), 1) if rss else None,
        "rss_samples": len(rss),
    }))
    """
)


def memory(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    work = Path(args.work_dir) / "bench-ray-memory"
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    distinct = 256
    for index in range(distinct):
        path = images / f"img-{index:03d}.jpg"
        if not path.exists():
            base = rng.integers(0, 255, size=(1, 1, 3), dtype=np.uint8)
            noise = rng.integers(0, 40, size=(args.memory_size, args.memory_size, 3), dtype=np.uint8)
            Image.fromarray((base + noise).astype(np.uint8)).save(path, quality=90)
    results = []
    for rows, executor in [(rows, executor) for executor in args.memory_executors for rows in args.memory_rows]:
        manifest = work / f"manifest-{rows}.csv"
        with manifest.open("w") as handle:
            handle.write("sku,image\n")
            for index in range(rows):
                handle.write(f"sku-{index:07d},images/img-{index % distinct:03d}.jpg\n")
        out = work / f"out-{rows}-{executor}"
        bench_engine._settle(out)
        recipe = {
            "version": 1,
            "name": f"memory-{rows}",
            "input": {"path": str(manifest)},
            "output": {"dir": str(out), "format": "jpeg", "naming": "{sku}.{ext}"},
            "execution": {"batch_size": 64, "max_failures": 0},
            "stages": [{"id": "out", "uses": "color.contrast", "with": CLAHE}],
        }
        path = work / f"memory-{rows}.yaml"
        path.write_text(json.dumps(recipe), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(path), str(args.workers), executor],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode != 0:
            raise SystemExit(f"memory run of {rows} rows failed:\n{done.stderr[-3000:]}")
        entry = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(entry)
        log(
            f"memory {executor:5s} {rows:>7,} rows: driver peak RSS {entry['driver_peak_rss_mib']:.0f} MiB, "
            f"{entry['items_done']:,} done in {entry['seconds']:.0f} s"
        )
        bench_engine._settle(out)
    return {"image_size": args.memory_size, "distinct_images": distinct, "batch_size": 64, "runs": results}


# ---------------------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="images in the throughput catalog")
    parser.add_argument("--size", type=int, default=1024, help="their side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the three contenders")
    parser.add_argument("--workers", type=int, default=2, help="pool size, local workers, local Ray CPUs")
    parser.add_argument("--batch-size", type=int, default=8, help="execution.batch_size and the pool's chunksize")
    parser.add_argument("--only", choices=["throughput", "memory"], help="run one measurement")
    parser.add_argument(
        "--via",
        choices=["inprocess", "cli"],
        default="inprocess",
        help="throughput: run_recipe in this process with Ray started once (inprocess), or every run a fresh "
        "process as a user types it, `imgx run` against a script around the pool, start-up subtracted (cli)",
    )
    parser.add_argument("--small", type=int, default=8, help="--via cli: images of the run whose time is subtracted")
    parser.add_argument(
        "--executors", type=lambda s: s.split(","), default=["local", "ray"], help="--via cli: imgx's contenders"
    )
    parser.add_argument(
        "--memory-rows", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 50_000, 100_000]
    )
    parser.add_argument(
        "--memory-executors",
        type=lambda s: s.split(","),
        default=["ray", "local"],
        help="executors of the memory runs (local shows what the runner itself holds per row)",
    )
    parser.add_argument("--memory-size", type=int, default=64, help="side of the memory run's images")
    parser.add_argument("--work-dir", default=str(REPO / "build"), help="catalogs and run folders")
    parser.add_argument("--out", help="result JSON (default benchmarks/results/ray-<host>-<date>.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    machine = bench_engine.machine_info()
    machine["versions"]["ray"] = package_version("ray")
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "benchmark": "ray",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": {
            "count": args.count,
            "size": args.size,
            "repeats": args.repeats,
            "workers": args.workers,
            "batch_size": args.batch_size,
            "via": args.via,
            "work": f"decode -> geometry.resize long_side {RESIZE_LONG_SIDE} -> color.contrast {CLAHE} -> "
            f"jpeg q{QUALITY}",
        },
        "targets": TARGETS,
    }
    started = time.perf_counter()
    if args.only in (None, "throughput"):
        result["throughput"] = (throughput_cli if args.via == "cli" else throughput)(args, log)
    if args.only in (None, "memory"):
        result["memory"] = memory(args, log)
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    result["seconds"] = round(time.perf_counter() - started, 1)
    host = socket.gethostname().split(".")[0]
    out = Path(args.out or REPO / "benchmarks" / "results" / f"ray-{host}-{dt.date.today():%Y%m%d}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
