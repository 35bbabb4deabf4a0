"""Driver scale benchmark: rows/s and peak driver memory of counting, dedupe, a run, ``--resume`` and ``imgx report``.

Each step runs in its own subprocess (a fresh interpreter importing the imgx under test), which reports its wall time
and its peak RSS (``VmHWM``, plus the RSS right after the imports, so the step's own growth is visible). With
``--before-root`` the same steps run first on another imgx source tree (``engine/`` and ``plugins/`` there), e.g. an
export of the commit this branch started from, so before and after are measured in one session on one machine.

Catalogs are synthetic CSV manifests of ``SKU-00000001``-style SKUs pointing at a few hundred distinct 48-px PNGs (crops
of scikit-image's astronaut, or noise without scikit-image); every 1000th row repeats the previous row's SKU (a known
duplicate). Sizes:

- ``--sizes``: manifests for the steps that read no image (count, dedupe, resume of a synthetic ledger, report of a
  synthetic ledger). Resume checks that output files exist, so the synthetic ledger comes with empty output files;
  ``--big`` sizes skip that step and instead time the lookup with the ledger trusted (``resume_lookup``, the new code
  only).
- ``--run-sizes``: manifests that are really run (decode, one stage, encode a PNG per item, 2 workers), then resumed
  with everything done, then reported.
- ``--compare-runs N`` (with ``--before-root``): the run step alone, before and after alternated N times per run size
  (before, after, before, after ...), each into a fresh output folder, with the wall time and the CPU time of the
  step's process tree; the medians' ratio is the run-throughput comparison (the separate passes above are minutes
  apart and carry the machine's drift).

Example (what ``benchmarks/results/scale-*.json`` was made with)::

    git archive <base-commit> engine plugins | tar -x -C /tmp/imgx-base
    python benchmarks/bench_scale.py --before-root /tmp/imgx-base --sizes 100000,1000000 --big 10000000 \\
        --run-sizes 10000,30000
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DISTINCT_IMAGES = 300
DUPLICATE_EVERY = 1000
TARGETS = {"count_rows_per_s": 1_000_000, "dedupe_rows_per_s": 1_000_000, "resume_skus_per_s": 200_000}
GROWTH_LIMIT_MIB = 64


# -- data ------------------------------------------------------------------------------------------------------------


def write_images(folder: Path) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == DISTINCT_IMAGES:
        return
    try:
        from skimage import data

        photo = data.astronaut()
    except ImportError:
        photo = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    for index in range(DISTINCT_IMAGES):
        y, x = rng.integers(0, photo.shape[0] - 96), rng.integers(0, photo.shape[1] - 96)
        crop = Image.fromarray(photo[y : y + 96, x : x + 96]).resize((48, 48))
        crop.save(folder / f"{index}.png")


def write_manifest(path: Path, rows: int) -> None:
    """``rows`` data rows; row ``i`` (0-based) with ``i % 1000 == 999`` repeats row ``i - 1``'s SKU."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("sku", pa.string()), ("image", pa.string())])
    with pacsv.CSVWriter(tmp, schema, write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
        for start in range(0, rows, 1_000_000):
            index = np.arange(start, min(rows, start + 1_000_000), dtype=np.int64)
            numbers = np.where(index % DUPLICATE_EVERY == DUPLICATE_EVERY - 1, index - 1, index)
            sku = pc.binary_join_element_wise("SKU-", pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), 9, "0"), "")
            image = pc.binary_join_element_wise(
                "images/", pc.cast(pa.array(index % DISTINCT_IMAGES), pa.string()), ".png", ""
            )
            writer.write_table(pa.table([sku, image], schema=schema))
    tmp.rename(path)


def write_recipe(work: Path, rows: int) -> Path:
    recipe = work / f"recipe-{rows}.yaml"
    recipe.write_text(
        "version: 1\n"
        f"name: scale-{rows}\n"
        f"input: {{path: manifest-{rows}.csv}}\n"
        f"output: {{dir: out-{rows}, format: png, naming: '{{output}}/{{sku}}.{{ext}}'}}\n"
        "execution: {workers: 2, batch_size: 64, max_failures: 1.0}\n"
        "stages: [{id: warm, uses: color.gamma, with: {gamma: 1.1}}]\n"
        "outputs: [warm]\n"
    )
    return recipe


# -- steps (run in a child process) ----------------------------------------------------------------------------------


def _rss_mib() -> float:
    """Peak RSS of this process: ``VmHWM`` (``ru_maxrss`` would include the parent's RSS at fork: Linux carries the
    old address space's high-water mark across ``execve``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(step: str, recipe: Path) -> dict[str, Any]:
    import inspect

    from imgx.io.catalog import open_catalog
    from imgx.recipe import load_recipe
    from imgx.registry import load_registry
    from imgx.runner import RunOptions, run_recipe

    loaded = load_recipe(recipe)
    out = loaded.resolve(loaded.recipe.output.dir).resolve()
    registry = load_registry()
    catalog = open_catalog(loaded, registry, skip_dirs=(out,))
    baseline = _rss_mib()
    result: dict[str, Any] = {}
    started = time.perf_counter()
    if step == "count":
        result["rows"] = catalog.count()
    elif step == "dedupe":
        if hasattr(catalog, "scan"):  # the columnar catalog
            scan = catalog.scan()
            result["rows"], result["duplicated_skus"] = scan.items, scan.duplicates.num_rows
        else:  # before: iterating is what finds duplicates
            rows = duplicates = 0
            for ref in catalog:
                rows += 1
                duplicates += bool(ref.error and "duplicate" in ref.error)
            result["rows"], result["duplicated_skus"] = rows, duplicates
    elif step in ("run", "resume"):
        summary = run_recipe(recipe, RunOptions(resume=step == "resume"))
        result["rows"] = summary.items
        result.update(
            items_done=summary.items_done,
            items_failed=summary.items_failed,
            items_skipped=summary.items_skipped,
            outputs_ok=summary.outputs_ok,
        )
    elif step == "report":
        from imgx.ledger_report import summarize

        lean = "keep_state" in inspect.signature(summarize).parameters
        report = summarize(out, keep_state=False) if lean else summarize(out)
        result["rows"] = report.outputs
        result.update(items=report.items, ok=report.ok, failed=report.failed)
    elif step == "resume_lookup":  # the new code only: the done-set lookup with the ledger trusted (no files)
        import pyarrow.compute as pc

        from imgx.ledger import DoneSet
        from imgx.runner import prepare

        _, _, plan = prepare(recipe, RunOptions())
        done = DoneSet.from_ledger(out, dict(plan.output_hashes), check_files=False)
        skipped = rows = 0
        for batch in catalog.batches():
            rows += batch.num_rows
            valid = batch.filter(pc.is_null(batch.column("error")))  # a duplicate row is never skipped
            skipped += int((done.mask(valid.column("sku")) == 1).sum())
        result.update(rows=rows, items_skipped=skipped)
    elif step == "make_ledger":  # a synthetic ledger: every SKU ok with the current hash (+ empty output files)
        result.update(make_ledger(recipe, out, catalog))
    else:
        raise SystemExit(f"unknown step {step}")
    result["seconds"] = time.perf_counter() - started
    result["rss_after_import_mib"] = round(baseline, 1)
    result["peak_rss_mib"] = round(_rss_mib(), 1)
    return result


def make_ledger(recipe: Path, out: Path, catalog: Any) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from imgx.ledger import LEDGER_SCHEMA, StatePaths
    from imgx.runner import RunOptions, prepare

    _, _, plan = prepare(recipe, RunOptions())
    (output,) = plan.outputs
    digest = plan.output_hashes[output]
    paths = StatePaths(out)
    paths.make()
    files = os.environ.get("BENCH_FILES") == "1"
    (out / output).mkdir(parents=True, exist_ok=True)
    rows = 0
    stamp = pa.scalar(dt.datetime.now(dt.timezone.utc), pa.timestamp("ms", tz="UTC"))
    for number, batch in enumerate(catalog.batches() if hasattr(catalog, "batches") else []):
        valid = batch.filter(pc.is_null(batch.column("error")))
        n = valid.num_rows
        path = pc.binary_join_element_wise(f"{output}/", valid.column("sku"), ".png", "")
        columns = {
            "sku": valid.column("sku"),
            "source": valid.column("source"),
            "output": pa.array([output] * n),
            "path": path,
            "status": pa.array(["ok"] * n),
            "stage": pa.array([""] * n),
            "error": pa.array([""] * n),
            "duration_ms": pa.array([1.0] * n),
            "recipe_hash": pa.array([digest] * n),
            "run_id": pa.array(["synthetic"] * n),
            "worker": pa.array(["w0"] * n),
            "finished_at": pa.repeat(stamp, n),
            "flags": pa.array([""] * n),
            "metrics": pa.array([""] * n),
            "variant": pa.array([""] * n),
        }
        columns = {name: columns[name] for name in LEDGER_SCHEMA.names if name in columns}  # a ledger of any version
        pq.write_table(pa.table(columns, schema=LEDGER_SCHEMA), paths.ledger / f"part-synthetic-{number:05d}.parquet")
        if files:
            for name in path.to_pylist():
                os.close(os.open(out / name, os.O_CREAT | os.O_WRONLY, 0o644))
        rows += n
    return {"rows": rows}


# -- the parent ------------------------------------------------------------------------------------------------------


def run_step(root: Path, step: str, recipe: Path, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{root / 'engine'}{os.pathsep}{root / 'plugins'}", **(env_extra or {}))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--recipe", str(recipe)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=recipe.parent)
    if proc.returncode != 0:
        return {"error": (proc.stdout + proc.stderr)[-2000:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rows_per_second"] = round(result["rows"] / result["seconds"]) if result["seconds"] > 0 else None
    print(
        f"  {step:<14} {recipe.stem:<22} {result['rows']:>10,} rows  {result['seconds']:8.2f} s  "
        f"{result['rows_per_second'] or 0:>11,}/s  peak {result['peak_rss_mib']:7.1f} MiB",
        flush=True,
    )
    return result


def measure(root: Path, work: Path, sizes: list[int], big: list[int], run_sizes: list[int], new: bool) -> dict:
    steps: dict[str, dict[str, Any]] = {}

    def record(step: str, rows: int, result: dict[str, Any]) -> None:
        steps.setdefault(step, {})[str(rows)] = result

    for rows in sizes + big:
        folder = work / ("after" if new else "before") / f"ledger-{rows}"
        folder.mkdir(parents=True, exist_ok=True)
        _link_inputs(work, folder, rows)
        recipe = write_recipe(folder, rows)
        record("count", rows, run_step(root, "count", recipe))
        record("dedupe", rows, run_step(root, "dedupe", recipe))
        if rows in big and not new:
            continue
        made = run_step(REPO, "make_ledger", recipe, {"BENCH_FILES": "0" if rows in big else "1"})
        if "error" in made:
            record("make_ledger", rows, made)
            continue
        if rows in big:
            record("resume_lookup", rows, run_step(root, "resume_lookup", recipe))
        else:
            record("resume", rows, run_step(root, "resume", recipe))
        record("report", rows, run_step(root, "report", recipe))
    for rows in run_sizes:
        folder = work / ("after" if new else "before") / f"run-{rows}"
        folder.mkdir(parents=True, exist_ok=True)
        _link_inputs(work, folder, rows)
        recipe = write_recipe(folder, rows)
        record("run", rows, run_step(root, "run", recipe))
        record("run_resume", rows, run_step(root, "resume", recipe))
        record("run_report", rows, run_step(root, "report", recipe))
    return steps


def compare_runs(before: Path, work: Path, run_sizes: list[int], repeats: int) -> dict[str, Any]:
    """The run step of ``before`` and of this tree alternated ``repeats`` times per size: wall and CPU seconds."""
    import shutil
    import statistics

    compared: dict[str, Any] = {}
    for rows in run_sizes:
        times: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for repeat in range(repeats):
            for name, root in (("before", before), ("after", REPO)):
                folder = work / "compare" / f"{name}-{rows}-{repeat}"
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                _link_inputs(work, folder, rows)
                recipe = write_recipe(folder, rows)
                used = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                result = run_step(root, "run", recipe)
                wall = time.perf_counter() - started
                now = resource.getrusage(resource.RUSAGE_CHILDREN)  # the step's process and its reaped workers
                cpu = now.ru_utime - used.ru_utime + now.ru_stime - used.ru_stime
                # every row but the known duplicates (failed, as they should) has its output
                if "error" in result or result.get("outputs_ok") != rows - rows // DUPLICATE_EVERY:
                    raise SystemExit(f"{name} run of {rows} rows: {result}")
                times[name].append({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "run_s": result["seconds"]})
                shutil.rmtree(folder, ignore_errors=True)
        median = {
            name: {key: statistics.median(t[key] for t in runs) for key in ("wall_s", "cpu_s", "run_s")}
            for name, runs in times.items()
        }
        compared[str(rows)] = {
            "runs": times,
            "median": median,
            "after_over_before": {k: round(median["after"][k] / median["before"][k], 3) for k in median["after"]},
        }
        print(f"  compare {rows:>8,} rows  after/before {compared[str(rows)]['after_over_before']}", flush=True)
    return compared


def _link_inputs(work: Path, folder: Path, rows: int) -> None:
    for name in (f"manifest-{rows}.csv", "images"):
        link = folder / name
        if not link.exists():
            link.symlink_to(work / name)


def verdict(after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def rate(step: str) -> int | None:
        results = [r for r in after.get(step, {}).values() if "rows_per_second" in r]
        return min(r["rows_per_second"] for r in results) if results else None

    checks: dict[str, Any] = {}
    for name, step in (("count_rows_per_s", "count"), ("dedupe_rows_per_s", "dedupe"), ("resume_skus_per_s", "resume")):
        value = rate(step)
        checks[name] = {"slowest": value, "target": TARGETS[name], "pass": value is not None and value >= TARGETS[name]}
    growth = {}
    for step, results in after.items():
        sizes = sorted(int(s) for s, r in results.items() if "peak_rss_mib" in r)
        for small, large in itertools.pairwise(sizes):
            delta = results[str(large)]["peak_rss_mib"] - results[str(small)]["peak_rss_mib"]
            growth[f"{step} {small}->{large}"] = {"mib": round(delta, 1), "pass": delta < GROWTH_LIMIT_MIB}
    checks["peak_rss_growth"] = growth
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="manifest rows, comma separated")
    parser.add_argument("--big", default="10000000", help="rows for the steps that read no image and make no files")
    parser.add_argument("--run-sizes", default="10000,30000", help="rows that are really run")
    parser.add_argument("--before-root", type=Path, default=None, help="an older imgx tree to measure first")
    parser.add_argument("--compare-runs", type=int, default=0, help="alternate before/after runs N times per size")
    parser.add_argument("--work-dir", type=Path, default=REPO / "build" / "scale")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/scale-<host>-<date>.json)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--recipe", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.recipe)))
        return 0

    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v.strip()]

    sizes, big, run_sizes = ints(args.sizes), ints(args.big), ints(args.run_sizes)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    write_images(work / "images")
    for rows in sorted(set(sizes + big + run_sizes)):
        write_manifest(work / f"manifest-{rows}.csv", rows)
    started = time.perf_counter()
    result: dict[str, Any] = {"parameters": {"sizes": sizes, "big": big, "run_sizes": run_sizes}}
    result["load_average_at_start"] = list(os.getloadavg())
    if args.before_root:
        print(f"before: {args.before_root}", flush=True)
        result["before"] = measure(args.before_root.resolve(), work, sizes, [], run_sizes, new=False)
        result["parameters"]["before_root"] = str(args.before_root)
        result["parameters"]["before_note"] = "the 'big' sizes are not measured before (minutes per step)"
    print(f"after: {REPO}", flush=True)
    result["after"] = measure(REPO, work, sizes, big, run_sizes, new=True)
    if args.before_root and args.compare_runs:
        print(f"run step, before and after alternated {args.compare_runs} times", flush=True)
        result["compare_runs"] = compare_runs(args.before_root.resolve(), work, run_sizes, args.compare_runs)
    result["targets"] = verdict(result["after"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_average_at_end"] = list(os.getloadavg())  # 2 cores shared with other work: see README
    try:
        from imgx.machine import machine_info

        result["machine"] = machine_info("cpu")
    except ImportError:  # torch missing: the minimum
        result["machine"] = {"host": socket.gethostname(), "cpu_count": os.cpu_count()}
    out = args.out or REPO / "benchmarks" / "results" / f"scale-{socket.gethostname()}-{dt.date.today():%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["targets"], indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
