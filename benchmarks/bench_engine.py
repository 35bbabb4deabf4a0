"""Engine overhead and executor scaling: imgx against hand-written code doing the same work.

Two comparisons on a synthetic catalog of ``--count`` JPEGs of ``--size`` x ``--size`` pixels, both running the demo
recipe's work (``recipes/demo.yaml``: ``color.enhance`` -> ``geometry.fit``, both nodes written as WebP):

- **overhead**: ``run_recipe(..., RunOptions(workers=1))`` against a plain ``for`` loop in this process that reads,
  decodes, calls the stages' plain functions (:func:`imgx_color.enhance`, :func:`imgx_geometry.fit_to_canvas`) with
  the recipe's parameters, encodes and writes atomically with imgx's own I/O functions. Target: imgx's throughput
  at least 0.97x the loop's.
- **parallel**: imgx with ``workers=2`` (its fork process pool) against ``multiprocessing.Pool(2)`` (fork,
  ``imap_unordered``, ``chunksize`` = the recipe's ``batch_size``) doing the same per-image work. Target: >= 0.97x.

Fairness: the contenders are interleaved (imgx, hand, imgx, hand ...) ``--repeats`` times after an untimed warm-up;
every run writes into a fresh output folder that is deleted, and the disk synced, outside the timings; the catalog is
built (or reused) before any timing. Thread settings: both in-process contenders use OpenCV's default thread count
in this process (recorded as ``cv2_threads_in_process``); both pools set ``cv2.setNumThreads(1)`` in every worker.
A time is wall-clock seconds around the whole call (imgx: loading the recipe, plugins, catalog listing, ledger and
its Parquet compaction included; hand code: its file listing and pool start-up included).

Run ``python benchmarks/bench_engine.py --help``; see ``benchmarks/README.md`` for what each number means.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imgx.machine import machine_info as imgx_machine_info

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = REPO / "recipes" / "demo.yaml"
SCHEMA = 1
TARGETS = {"overhead": 0.97, "parallel": 0.97}  # imgx throughput / hand-written throughput, at least


# ---------------------------------------------------------------------------------------------------------------------
# The hand-written per-image work (module level: the hand pool's workers call it)


@dataclasses.dataclass(frozen=True)
class HandWork:
    """The demo recipe's work as plain calls: what a catalog engineer would write without imgx.

    :param out_dir: where outputs go, ``<out_dir>/<sku>/<output>.<ext>`` (the recipe's naming template).
    :param enhance: :class:`imgx_color.EnhanceParams` of the ``color.enhance`` node.
    :param fit: keyword arguments of :func:`imgx_geometry.fit_to_canvas` for the ``geometry.fit`` node.
    :param outputs: ``(output id, node index)``: which results are written, in the recipe's order.
    :param format: ``webp`` / ``jpeg`` / ``png``; ``ext`` its extension.
    """

    out_dir: Path
    enhance: Any
    fit: dict[str, Any]
    outputs: tuple[tuple[str, int], ...]
    format: str
    ext: str
    quality: int
    background: tuple[int, int, int]
    max_pixels: int


def hand_process(work: HandWork, sku: str, source: str) -> int:
    """Read, decode, enhance, fit, encode and write one image; returns the bytes written."""
    from imgx.io.atomic import atomic_write
    from imgx.io.decode import decode_image
    from imgx.io.encode import encode_image
    from imgx.io.source import read_source
    from imgx_color import enhance
    from imgx_geometry import fit_to_canvas

    item = decode_image(read_source(source), sku=sku, source=source, max_pixels=work.max_pixels)
    enhanced = item.replace(image=enhance(item.image, work.enhance))
    image, alpha = fit_to_canvas(enhanced.image, enhanced.alpha, **work.fit)
    results = (enhanced, enhanced.replace(image=image, alpha=alpha))
    written = 0
    tmp_dir = work.out_dir / "_tmp"
    for output, index in work.outputs:
        data = encode_image(results[index], format=work.format, quality=work.quality, background=work.background)
        atomic_write(work.out_dir / sku / f"{output}.{work.ext}", data, tmp_dir=tmp_dir)
        written += len(data)
    return written


_POOL_WORK: HandWork | None = None


def _pool_init(work: HandWork) -> None:
    global _POOL_WORK
    import cv2

    cv2.setNumThreads(1)  # the same setting imgx's pool workers use (imgx.executors.local._limit_threads)
    _POOL_WORK = work


def _pool_task(task: tuple[str, str]) -> int:
    assert _POOL_WORK is not None
    return hand_process(_POOL_WORK, *task)


def list_catalog(catalog: Path) -> list[tuple[str, str]]:
    """``(sku, path)`` of the catalog's images, as the demo recipe's ``input.pattern`` / ``exclude`` pick them."""
    found = []
    for path in sorted(catalog.rglob("*")):
        relative = path.relative_to(catalog).as_posix()
        if path.suffix in (".jpg", ".png") and not relative.startswith("_truth/") and path.is_file():
            found.append((relative.rsplit(".", 1)[0], str(path)))
    return found


def hand_loop(work: HandWork, catalog: Path) -> int:
    """The in-process contender: one plain loop. Returns the number of images."""
    tasks = list_catalog(catalog)
    for sku, source in tasks:
        hand_process(work, sku, source)
    return len(tasks)


def hand_pool(work: HandWork, catalog: Path, workers: int, chunksize: int) -> int:
    """The parallel contender: ``multiprocessing.Pool`` (fork, like imgx on Linux), ``imap_unordered``."""
    tasks = list_catalog(catalog)
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_pool_init, initargs=(work,)) as pool:
        for _ in pool.imap_unordered(_pool_task, tasks, chunksize=chunksize):
            pass
        pool.close()
        pool.join()
    return len(tasks)


# ---------------------------------------------------------------------------------------------------------------------
# Setting up


def hand_work_for(recipe_path: Path, overrides: Sequence[str], out_dir: Path) -> HandWork:
    """Build the hand-written work from the recipe itself, so both contenders use the same parameters.

    Only the shape of the demo recipe is supported (``color.enhance`` then ``geometry.fit`` on it); anything else
    raises, rather than silently comparing different work.
    """
    from imgx.color import parse_color
    from imgx.io.encode import FORMATS
    from imgx.recipe import load_recipe
    from imgx_color import EnhanceParams
    from imgx_geometry.fit import FitParams

    recipe = load_recipe(recipe_path, overrides=overrides).recipe
    stages = recipe.stages
    shape = [(s.uses, tuple(s.needs)) for s in stages]
    if len(stages) != 2 or shape != [("color.enhance", ()), ("geometry.fit", (stages[0].id,))]:
        raise SystemExit(
            f"got stages {shape} in {recipe_path}; the hand-written contenders implement only "
            "color.enhance -> geometry.fit"
        )
    fit = FitParams(**stages[1].with_)
    index = {stages[0].id: 0, stages[1].id: 1}
    outputs = tuple((out, index[out]) for out in recipe.output_ids)
    if recipe.output.naming != "{sku}/{output}.{ext}":
        raise SystemExit(
            f"got naming {recipe.output.naming!r}; the hand-written contenders write {{sku}}/{{output}}.{{ext}}"
        )
    return HandWork(
        out_dir=out_dir,
        enhance=EnhanceParams(**stages[0].with_),
        fit={
            "size": fit.size,
            "mode": fit.mode,
            "background": fit.background,
            "upscale": fit.upscale,
            "interpolation": fit.interpolation,
        },
        outputs=outputs,
        format=recipe.output.format,
        ext=FORMATS[recipe.output.format],
        quality=recipe.output.quality,
        background=parse_color(recipe.output.background),
        max_pixels=recipe.input.max_pixels,
    )


def build_catalog(work_dir: Path, count: int, size: int, seed: int) -> dict[str, Any]:
    from imgx.samples import build_synthetic_catalog

    directory = work_dir / f"bench-catalog-{count}-{size}"
    reused = (directory / "_truth" / "catalog.json").is_file()
    start = time.perf_counter()
    images = build_synthetic_catalog(directory, count=count, size=size, seed=seed)
    seconds = time.perf_counter() - start
    if len(images) != count:
        raise SystemExit(f"build_synthetic_catalog returned {len(images)} images for count={count}")
    return {
        "dir": str(directory),
        "images": len(images),
        "megapixels": round(sum(w * h for w, h in (i.size for i in images)) / 1e6, 3),
        "bytes": sum(i.path.stat().st_size for i in images),
        "build_seconds": round(seconds, 3),
        "reused": reused and seconds < 5.0,
    }


def warm_page_cache(catalog: Path) -> None:
    for _, source in list_catalog(catalog):
        with open(source, "rb") as handle:
            handle.read()


# ---------------------------------------------------------------------------------------------------------------------
# Machine info


def _cpu_times() -> tuple[int, int] | None:
    """``(total, steal)`` jiffies from ``/proc/stat``: steal is time the hypervisor gave our vCPUs to someone else."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields), fields[7] if len(fields) > 7 else 0


def machine_info() -> dict[str, Any]:
    """imgx's machine block without torch (this benchmark never loads it), with the image libraries' versions and
    the load average at the start under the name earlier results used."""
    info = imgx_machine_info(packages=("imgx", "numpy", "opencv-contrib-python-headless", "pillow", "pyarrow"))
    info["load_average_at_start"] = info.pop("load_average")
    info["versions"]["opencv"] = info["versions"].pop("opencv-contrib-python-headless")
    return info


# ---------------------------------------------------------------------------------------------------------------------
# Timing


@dataclasses.dataclass
class Contender:
    name: str
    run: Callable[[Path], dict[str, Any]]  # output dir -> details (must hold "images")


def _settle(out_dir: Path | None) -> None:
    """Outside the timings: delete a run's outputs and flush dirty pages, so no run pays for another's writeback."""
    if out_dir is not None:
        shutil.rmtree(out_dir, ignore_errors=True)
    os.sync()
    gc.collect()


def _digest_outputs(out_dir: Path, limit: int = 16) -> dict[str, str]:
    files = sorted(p for p in out_dir.rglob("*.*") if "_imgx" not in p.parts and "_tmp" not in p.parts)
    return {p.relative_to(out_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files[:limit]}


def _usage() -> dict[str, float]:
    """CPU seconds and page faults of this process and its reaped children (pool workers are joined by the end of
    a run): CPU time is less sensitive to a noisy neighbour than wall time."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_seconds": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        "minor_page_faults": float(me.ru_minflt + kids.ru_minflt),
        "involuntary_switches": float(me.ru_nivcsw + kids.ru_nivcsw),
    }


def time_pair(
    label: str, contenders: tuple[Contender, Contender], repeats: int, runs_dir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Interleave two contenders ``repeats`` times; returns raw seconds and details per contender."""
    raw: dict[str, list[float]] = {c.name: [] for c in contenders}
    details: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    digests: dict[str, dict[str, str]] = {}
    for repeat in range(repeats):
        for contender in contenders:
            out_dir = runs_dir / f"{label}-{contender.name}-{repeat}"
            _settle(out_dir)
            usage_before = _usage()
            start = time.perf_counter()
            info = contender.run(out_dir)
            seconds = time.perf_counter() - start
            usage = {k: round(v - usage_before[k], 3) for k, v in _usage().items()}
            if repeat == 0:
                digests[contender.name] = _digest_outputs(out_dir)
            n_files = sum(1 for p in out_dir.rglob("*.*") if "_imgx" not in p.parts and "_tmp" not in p.parts)
            _settle(out_dir)
            raw[contender.name].append(round(seconds, 4))
            details[contender.name].append({**info, **usage, "files_written": n_files})
            log(
                f"  {label} repeat {repeat + 1}/{repeats} {contender.name:<10} {seconds:8.2f} s "
                f"({info['images'] / seconds:6.2f} img/s)"
            )
    names = [c.name for c in contenders]
    same = digests[names[0]] == digests[names[1]] and bool(digests[names[0]])
    return {"raw_seconds": raw, "details": details, "outputs_identical": same}


def summarise(pair: dict[str, Any], imgx: str, hand: str, images: int, megapixels: float, target: float) -> dict:
    raw = pair["raw_seconds"]
    median = {name: statistics.median(values) for name, values in raw.items()}
    paired = [round(h / i, 4) for i, h in zip(raw[imgx], raw[hand], strict=True)]
    ratio = median[hand] / median[imgx]  # imgx throughput / hand throughput
    return {
        "contenders": {"imgx": imgx, "hand": hand},
        "raw_seconds": raw,
        "median_seconds": {k: round(v, 4) for k, v in median.items()},
        "min_seconds": {k: min(v) for k, v in raw.items()},
        "images_per_second": {k: round(images / v, 3) for k, v in median.items()},
        "megapixels_per_second": {k: round(megapixels / v, 3) for k, v in median.items()},
        "ratio": round(ratio, 4),
        "paired_ratios": paired,
        "median_paired_ratio": round(statistics.median(paired), 4),
        "target": target,
        "pass": ratio >= target,
        "outputs_identical": pair["outputs_identical"],
        "median_cpu_seconds": {
            k: round(statistics.median(d["cpu_seconds"] for d in v), 3)
            for k, v in pair["details"].items()
            if all("cpu_seconds" in d for d in v)
        },
        "details": pair["details"],
    }


def run_imgx(recipe: Path, catalog: Path, workers: int, limit: int | None = None) -> Callable[[Path], dict[str, Any]]:
    from imgx.runner import RunOptions, run_recipe

    def run(out_dir: Path) -> dict[str, Any]:
        overrides = (f"input.path={catalog}", f"output.dir={out_dir}", *([f"input.limit={limit}"] if limit else []))
        summary = run_recipe(recipe, RunOptions(workers=workers, overrides=overrides))
        if summary.items_failed or summary.items_done != summary.items:
            failed = f"{summary.items_failed} failed of {summary.items}: {summary.failures[:3]}"
            raise SystemExit(f"imgx run failed: {failed}")
        return {
            "images": summary.items_done,
            "executor_seconds": round(summary.seconds, 4),
            "stage_seconds": {k: round(v, 4) for k, v in summary.stage_seconds.items()},
        }

    return run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500, help="catalog images (default 500)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per contender (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="catalog seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel comparison (default 2)")
    parser.add_argument("--chunksize", type=int, default=None, help="hand pool chunksize (default: recipe batch_size)")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="recipe (default recipes/demo.yaml)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "build", help="catalog cache and run folders")
    parser.add_argument("--only", choices=tuple(TARGETS), default=None, help="run one comparison only")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON result (default benchmarks/results/engine-<host>-<date>.json)"
    )
    parser.add_argument("--child", choices=tuple(TARGETS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def _log(message: str) -> None:
    print(message, flush=True)


def run_comparison(args: argparse.Namespace) -> dict[str, Any]:
    """One comparison, in a process of its own (see :func:`main`): warm-up, then interleaved timed runs."""
    import cv2

    from imgx.recipe import load_recipe

    catalog_dir = args.work_dir / f"bench-catalog-{args.count}-{args.size}"
    recipe = args.recipe.resolve()
    batch_size = load_recipe(recipe).recipe.execution.batch_size
    chunksize = args.chunksize or batch_size
    runs_dir = args.work_dir / f"bench-runs-{os.getpid()}"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cv2_threads = cv2.getNumThreads()
    # Built once, outside the timings (imgx loads its recipe inside them; a hand-written script has no recipe).
    base_work = hand_work_for(recipe, (f"input.path={catalog_dir}", f"output.dir={runs_dir}"), runs_dir)

    def work_for(out_dir: Path) -> HandWork:
        return dataclasses.replace(base_work, out_dir=out_dir)

    if args.child == "overhead":
        pair = (
            Contender("imgx-w1", run_imgx(recipe, catalog_dir, 1)),
            Contender("loop", lambda out_dir: {"images": hand_loop(work_for(out_dir), catalog_dir)}),
        )
    else:
        pair = (
            Contender(f"imgx-w{args.workers}", run_imgx(recipe, catalog_dir, args.workers)),
            Contender(
                f"pool-{args.workers}",
                lambda out_dir: {"images": hand_pool(work_for(out_dir), catalog_dir, args.workers, chunksize)},
            ),
        )
    try:
        # Untimed warm-up on 8 images, both sides: imports, plugin loading, first-call costs, pool start-up paths.
        # In the parallel comparison this process itself never runs an OpenCV op (see README: fork after OpenCV).
        warm = runs_dir / "warm-up"
        run_imgx(recipe, catalog_dir, 1 if args.child == "overhead" else args.workers, limit=8)(warm / "imgx")
        if args.child == "overhead":
            work = work_for(warm / "hand")
            for sku, source in list_catalog(catalog_dir)[:8]:
                hand_process(work, sku, source)
        _settle(warm)
        _log(f"{args.child}: {pair[0].name} vs {pair[1].name}, {args.repeats} interleaved repeats")
        timed = time_pair(args.child, pair, args.repeats, runs_dir, _log)
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    timed.update(
        names=[c.name for c in pair],
        chunksize=chunksize,
        batch_size=batch_size,
        cv2_threads=cv2_threads if args.child == "overhead" else 1,
    )
    return timed


def main(argv: Sequence[str] | None = None) -> int:
    """Build the catalog, then run each comparison in a fresh child process and collect the results.

    A child per comparison keeps the processes that fork (imgx's pool, the hand pool) free of OpenCV state from the
    in-process runs: forking a process whose OpenCV thread pool has run, then calling ``cv2.setNumThreads`` in the
    child, deadlocks (both pools do that). This is also how ``imgx run`` starts: a fresh process.
    """
    args = _parser().parse_args(argv)
    args.work_dir = args.work_dir.resolve()
    if args.child:
        result = run_comparison(args)
        args.child_out.write_text(json.dumps(result))
        return 0

    started = time.perf_counter()
    machine = machine_info()
    date = dt.datetime.now().strftime("%Y%m%d")
    out = args.out or REPO / "benchmarks" / "results" / f"engine-{machine['host']}-{date}.json"

    _log(f"catalog: {args.count} x {args.size}px (seed {args.seed}) ...")
    catalog = build_catalog(args.work_dir, args.count, args.size, args.seed)
    _log(f"  {catalog['dir']}: {'reused' if catalog['reused'] else 'built'} in {catalog['build_seconds']:.1f} s")
    warm_page_cache(Path(catalog["dir"]))

    steal_start = _cpu_times()
    comparisons: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for label in TARGETS:
        if args.only and label != args.only:
            continue
        child_out = args.work_dir / f"bench-{label}-{os.getpid()}.json"
        command = [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])]
        command += ["--child", label, "--child-out", str(child_out), "--work-dir", str(args.work_dir)]
        try:
            subprocess.run(command, check=True)
            timed = json.loads(child_out.read_text())
        finally:
            child_out.unlink(missing_ok=True)
        imgx_name, hand_name = timed["names"]
        comparisons[label] = summarise(
            timed, imgx_name, hand_name, catalog["images"], catalog["megapixels"], TARGETS[label]
        )
        comparisons[label]["cv2_threads"] = timed["cv2_threads"]
        extra.update(chunksize=timed["chunksize"], batch_size=timed["batch_size"])
        if label == "overhead":
            extra["cv2_threads_in_process"] = timed["cv2_threads"]

    steal_end = _cpu_times()
    if steal_start and steal_end and steal_end[0] > steal_start[0]:
        machine["cpu_steal_percent_during_run"] = round(
            100.0 * (steal_end[1] - steal_start[1]) / (steal_end[0] - steal_start[0]), 2
        )
    machine["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {
        "benchmark": "engine",
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "parameters": {
            "count": args.count,
            "size": args.size,
            "repeats": args.repeats,
            "seed": args.seed,
            "recipe": os.path.relpath(args.recipe.resolve(), REPO),
            "workers_parallel": args.workers,
            "hand_pool_chunksize": extra.get("chunksize"),
            "recipe_batch_size": extra.get("batch_size"),
            "start_method": "fork",
            "cv2_threads_in_process": extra.get("cv2_threads_in_process"),
            "cv2_threads_pool_workers": 1,
            "timing": "wall-clock seconds around the whole call; medians of interleaved repeats",
            "ratio": "imgx throughput / hand-written throughput = hand median seconds / imgx median seconds",
        },
        "catalog": catalog,
        "comparisons": comparisons,
        "targets": {k: v for k, v in TARGETS.items() if k in comparisons},
        "pass": all(c["pass"] for c in comparisons.values()),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result, _log)
    _log(f"wrote {out}")
    return 0


def print_table(result: dict[str, Any], log: Callable[[str], None]) -> None:
    m, p = result["machine"], result["parameters"]
    log("")
    log(
        f"{m['cpu_model']}, {m['cpus_usable']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, "
        f"OpenCV {m['versions']['opencv']}; {p['count']} x {p['size']}px, {p['repeats']} repeats"
    )
    header = f"{'comparison':<10} {'contender':<10} {'median s':>9} {'img/s':>7} {'MP/s':>7}"
    log(f"{header}  {'ratio':>6} {'target':>6}  result")
    for label, c in result["comparisons"].items():
        for role in ("imgx", "hand"):
            name = c["contenders"][role]
            row = (
                f"{label if role == 'imgx' else '':<10} {name:<10} {c['median_seconds'][name]:9.2f} "
                f"{c['images_per_second'][name]:7.2f} {c['megapixels_per_second'][name]:7.2f}"
            )
            if role == "imgx":
                row += f"  {c['ratio']:6.3f} {c['target']:6.2f}  {'PASS' if c['pass'] else 'FAIL'}"
            log(row)


if __name__ == "__main__":
    sys.exit(main())
