"""Peak resident memory of a recipe run, per process: the CLI's main process and each worker it starts.

The issue this answers: one in-process worker of ``recipes/marketplace-white.yaml`` over 4000 px photos peaked at
2.5 GB resident, ``recipes/restore-lowres.yaml`` on the demo catalog at 7.5 GB. The target is at most 1 GB per worker.

Each run is the real CLI (``imgx run RECIPE --set input.path=... --set output.dir=... --workers N --no-progress``)
in a child process; a sampler reads ``VmHWM`` (the kernel's own high-water mark of the resident set, so a short
spike between two samples is not missed) and ``VmRSS`` from ``/proc/<pid>/status`` of the CLI and of every
descendant every ``--interval`` seconds. A process's peak is its last ``VmHWM`` read before it exited (workers of a
pool live until the run ends, so that read is at most one interval early). Descendants are named by role from their
command line: ``worker`` (a pool worker, forked from the forkserver or the main process), ``forkserver``,
``resource_tracker``. With ``--workers 1`` the stages run inside the main process (the local executor's inline path),
so the main process's peak is the worker's. Linux only (``/proc``).

Catalogs (built once under ``--work-dir``, reused after):

* ``photos-<size>``: real photos (scikit-image's coffee, astronaut, chelsea, rocket) enlarged with Lanczos so their
  long side is ``--size`` px (4000 for the issue), JPEG q95.
* ``demo``: ``imgx demo-catalog`` (the 21-image catalog the README's recipes run on).

``--breakdown`` adds a one-off in-process pass over the first image of each run's catalog: every stage of the recipe
in DAG order, the process's RSS and tracemalloc's peak of Python/numpy allocations recorded around each stage (numpy
reports its buffers to tracemalloc; torch's and OpenCV's own allocations show only in the RSS delta).

Example (what ``benchmarks/results/memory-*.json`` was made with)::

    nice .venv/bin/python benchmarks/bench_memory.py --runs marketplace-white:photos-4000:1 \\
        marketplace-white:photos-4000:2 restore-lowres:demo:1 --breakdown
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("coffee", "astronaut", "chelsea", "rocket")
MIB = 1024 * 1024


def _status_kib(pid: int) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` of ``pid`` in KiB ({} when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids += [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return kids


def _descendants(pid: int) -> list[tuple[int, int]]:
    """``(pid, parent pid)`` of every descendant of ``pid``."""
    found, stack = [], [(child, pid) for child in _children(pid)]
    while stack:
        child, parent = stack.pop()
        found.append((child, parent))
        stack += [(grandchild, child) for grandchild in _children(child)]
    return found


def _role(pid: int, parent_role: str) -> str:
    """A forkserver's children are workers forked from it (they keep its command line), so the parent decides."""
    if parent_role == "forkserver":
        return "worker"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "forkserver" in cmd and "main(" in cmd:
        return "forkserver"
    if "resource_tracker" in cmd:
        return "resource_tracker"
    return "worker"


@dataclasses.dataclass
class _Proc:
    role: str
    peak_kib: int = 0
    last_rss_kib: int = 0
    samples: int = 0


def sample_run(
    command: list[str], interval: float, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``command`` (the CLI) and sample the peak RSS of it and every descendant until it exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    procs: dict[int, _Proc] = {proc.pid: _Proc("main")}
    # A forked worker's VmHWM starts at its parent's resident set (shared pages count): record its RSS at birth too.
    while proc.poll() is None:
        if time.perf_counter() - start > timeout:
            proc.kill()
            raise TimeoutError(f"{' '.join(command)} ran past {timeout} s")
        for pid, parent in [(proc.pid, 0), *_descendants(proc.pid)]:
            status = _status_kib(pid)
            if not status:
                continue
            entry = procs.get(pid)
            if entry is None:
                entry = procs[pid] = _Proc(_role(pid, procs[parent].role if parent in procs else ""))
            entry.peak_kib = max(entry.peak_kib, status["VmHWM"])
            entry.last_rss_kib = status["VmRSS"]
            entry.samples += 1
        time.sleep(interval)
    output = proc.communicate()[0]
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{output[-3000:]}")
    rows = [
        {"pid": pid, "role": p.role, "peak_rss_mib": round(p.peak_kib / 1024, 1), "samples": p.samples}
        for pid, p in procs.items()
    ]
    workers = [r["peak_rss_mib"] for r in rows if r["role"] == "worker"]
    return {
        "seconds": round(seconds, 1),
        "processes": rows,
        "main_peak_rss_mib": rows[0]["peak_rss_mib"],
        "worker_peak_rss_mib": max(workers) if workers else rows[0]["peak_rss_mib"],
        "workers_inline": not workers,
        "output_tail": output[-600:],
    }


def build_photos(folder: Path, size: int, count: int) -> Path:
    """``count`` real photos enlarged to a long side of ``size`` px (Lanczos), JPEG q95, in ``folder``."""
    sys.path.insert(0, str(REPO / "engine"))
    from imgx.samples.photos import REAL_PHOTOS, resize_long_side

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name = PHOTOS[index % len(PHOTOS)]
        target = folder / f"{name}-{index:02d}.jpg"
        if not target.exists():
            image = resize_long_side(Image.fromarray(REAL_PHOTOS[name]()), size)
            image.save(target, "JPEG", quality=95)
    return folder


def _images(folder: Path) -> list[Path]:
    """The catalog's images (ground truth left out), sorted by path."""
    suffixes = (".jpg", ".jpeg", ".png")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and "_truth" not in p.parts)


def _digests(folder: Path) -> dict[str, str]:
    """sha256 (16 hex) of every output file, by relative path: before/after runs must match (no change to outputs)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in (".jpg", ".png", ".webp")
    }


def build_catalog(spec: str, work_dir: Path, count: int) -> Path:
    if spec == "demo" or spec.startswith("demo-"):
        folder = work_dir / "demo-catalog"
        cli = str(REPO / ".venv" / "bin" / "imgx")
        subprocess.run([cli, "demo-catalog", str(folder)], cwd=REPO, check=True, capture_output=True)
        if spec == "demo":
            return folder
        count = int(spec.removeprefix("demo-"))  # the first ``count`` images, sorted by path: a quick subset
        subset = work_dir / f"memory-{spec}"
        for source in _images(folder)[:count]:
            target = subset / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(source, target)
        return subset
    if spec.startswith("photos-"):
        size = int(spec.removeprefix("photos-"))
        return build_photos(work_dir / f"memory-photos-{size}-{count}", size, count)
    raise SystemExit(f"unknown catalog {spec!r}: demo, demo-<n> or photos-<px>")


def breakdown(recipe_path: Path, catalog: Path, work_dir: Path, extra: list[str]) -> list[dict[str, Any]]:
    """The recipe over ``catalog`` in this process (``workers: 1``, ``batch_size: 1``, so one item's images at a time)
    with each step measured: read+decode (``prepare``), every node (``_run_node``), encode+write (``finish``).
    Per step and item: seconds, the RSS after it, the growth of the process's high-water mark during it, and
    tracemalloc's peak above the step's start (numpy's buffers; torch's and OpenCV's own allocations show only in
    RSS). Wrapping the processor's methods is for this measurement only; the run is otherwise the real one."""
    sys.path.insert(0, str(REPO / "engine"))
    from imgx.executors import BatchProcessor
    from imgx.runner import RunOptions, run_recipe

    rows: list[dict[str, Any]] = []

    def measured(label_of, method):
        def wrapper(self, *args, **kwargs):
            before = _status_kib(os.getpid())
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            value = method(self, *args, **kwargs)
            after = _status_kib(os.getpid())
            rows.append(
                {
                    "step": label_of(*args),
                    "seconds": round(time.perf_counter() - start, 2),
                    "traced_peak_above_start_mib": round((tracemalloc.get_traced_memory()[1] - base) / MIB, 1),
                    "rss_after_mib": round(after["VmRSS"] / 1024, 1),
                    "high_water_growth_mib": round((after["VmHWM"] - before["VmHWM"]) / 1024, 1),
                    "process_peak_rss_mib": round(after["VmHWM"] / 1024, 1),
                }
            )
            return value

        return wrapper

    originals = {name: getattr(BatchProcessor, name) for name in ("prepare", "_run_node", "_encode")}
    BatchProcessor.prepare = measured(lambda *_: "read+decode", originals["prepare"])
    BatchProcessor._run_node = measured(lambda node, ready: f"{node.id} ({node.uses})", originals["_run_node"])
    BatchProcessor._encode = measured(lambda state: "encode+write", originals["_encode"])
    tracemalloc.start()
    try:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="memory-breakdown-") as out:
            # one step at a time, in this thread: without overlap (on by default for one worker of several cores)
            overrides = (f"input.path={catalog}", f"output.dir={out}", "execution.batch_size=1", *extra)
            overrides += ("execution.overlap=false",)
            run_recipe(recipe_path, RunOptions(overrides=overrides, workers=1))
    finally:
        tracemalloc.stop()
        for name, method in originals.items():
            setattr(BatchProcessor, name, method)
    return rows


def _breakdown_in_child(recipe: Path, catalog: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """:func:`breakdown` in a fresh process, so earlier runs and imports do not raise its high-water mark."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--breakdown-only", str(recipe), str(catalog), out.name]
        command += [f"--set={extra}" for extra in args.set] + ["--work-dir", str(args.work_dir)]
        env = {**os.environ, **dict(pair.split("=", 1) for pair in args.env)}
        subprocess.run(command, cwd=REPO, check=True, timeout=args.timeout, env=env)
        return json.loads(Path(out.name).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["marketplace-white:photos-4000:1", "marketplace-white:photos-4000:2", "restore-lowres:demo:1"],
        help="RECIPE:CATALOG:WORKERS, RECIPE a file stem under recipes/, CATALOG demo, demo-<n> (its first n) or "
        "photos-<px>",
    )
    parser.add_argument("--count", type=int, default=4, help="photos in a photos-<px> catalog (default 4)")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period in s")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--set", action="append", default=[], help="extra --set for every run (key.path=value)")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the runs' environment (e.g. glibc MALLOC_* tunables)"
    )
    parser.add_argument("--breakdown", action="store_true", help="also the per-stage in-process breakdown")
    parser.add_argument("--work-dir", type=Path, default=REPO / "build")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: results/memory-vm-<date>.json)")
    parser.add_argument("--breakdown-only", nargs=3, metavar=("RECIPE", "CATALOG", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.breakdown_only:
        recipe, catalog, target = args.breakdown_only
        rows = breakdown(Path(recipe), Path(catalog), args.work_dir, args.set)
        Path(target).write_text(json.dumps(rows))
        return 0

    sys.path.insert(0, str(REPO / "engine"))
    from imgx.machine import machine_info

    cli = str(REPO / ".venv" / "bin" / "imgx")
    load_before = list(os.getloadavg())
    env = dict(pair.split("=", 1) for pair in args.env)
    runs = []
    for run in args.runs:
        recipe_name, catalog_spec, workers = run.split(":")
        recipe = REPO / "recipes" / f"{recipe_name}.yaml"
        catalog = build_catalog(catalog_spec, args.work_dir, args.count)
        images = _images(catalog)
        with tempfile.TemporaryDirectory(dir=args.work_dir, prefix="memory-out-") as out:
            command = [cli, "run", str(recipe), "--workers", workers, "--no-progress"]
            command += ["--set", f"input.path={catalog}", "--set", f"output.dir={out}"]
            for extra in args.set:
                command += ["--set", extra]
            load = list(os.getloadavg())
            result = sample_run(command, args.interval, args.timeout, env)
            result["outputs_sha256"] = _digests(Path(out))
        entry = {
            "run": run,
            "recipe": f"recipes/{recipe_name}.yaml",
            "catalog": catalog_spec,
            "images": len(images),
            "largest_image_px": max(max(Image.open(p).size) for p in images),
            "workers": int(workers),
            "load_average_at_start": load,
            "env": env,
            **result,
        }
        if args.breakdown:
            entry["breakdown"] = _breakdown_in_child(recipe, catalog, args)
        runs.append(entry)
        print(
            f"{run}: worker peak {entry['worker_peak_rss_mib']:.0f} MiB, main {entry['main_peak_rss_mib']:.0f} MiB, "
            f"{entry['seconds']:.0f} s ({len(images)} images, load {load[0]:.1f})"
        )

    result = {
        "benchmark": "memory",
        "command": " ".join(["python", "benchmarks/bench_memory.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "target_worker_peak_rss_mib": 1024,
        "load_average_before": load_before,
        "runs": runs,
        "machine": machine_info(),
    }
    target = args.out or REPO / "benchmarks" / "results" / f"memory-vm-{dt.date.today():%Y%m%d}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
