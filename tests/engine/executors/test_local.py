"""The local executor end to end on real photos and real files: outputs, ledger, isolation, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import PIXEL_BUDGET_CALLS, basic_recipe, pixel_budget_recipe, write_recipe
from imgx import ImgxError
from imgx.executors.base import ExecutorOptions
from imgx.executors.local import LocalExecutor
from imgx.executors.processor import RunSpec, WorkUnit
from imgx.item import ItemRef
from imgx.ledger import read_ledger
from imgx.registry import PluginConfig
from imgx.runner import RunOptions, prepare, run_recipe
from imgx.samples import write_bad_input_zoo


def ledger_rows(out: Path) -> list[dict]:
    return read_ledger(out).to_pylist()


def output_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "_imgx" not in p.relative_to(out).parts
    }


def test_every_item_gets_its_outputs_and_a_ledger_row_each(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_recipe(write_recipe(tmp_path, basic_recipe(photo_catalog, out)))
    assert summary.exit_code == 0
    assert (summary.items, summary.items_done, summary.items_failed, summary.outputs_ok) == (8, 8, 0, 16)
    files = output_files(out)
    assert len(files) == 16 and "food/coffee/square.png" in files and "misc/astronaut/enhanced.png" in files
    for name in files:
        with Image.open(out / name) as image:
            if name.endswith("square.png"):
                assert image.size == (96, 96)
            else:  # the enhanced output keeps the source size
                source = photo_catalog / (name.rsplit("/", 1)[0] + ".jpg")
                assert image.size == Image.open(source).size
    rows = ledger_rows(out)
    assert len(rows) == 16 and {r["status"] for r in rows} == {"ok"}
    assert {(r["sku"], r["output"]) for r in rows} == {(f.rsplit("/", 1)[0], f.rsplit("/", 1)[1][:-4]) for f in files}
    assert all(r["duration_ms"] > 0 and r["recipe_hash"] and r["run_id"] == summary.run_id for r in rows)
    assert set(summary.stage_seconds) == {"enhanced", "square"}
    assert not list((out / "_imgx" / "tmp").iterdir())


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_one_worker_and_a_pool_write_the_same_bytes(photo_catalog: Path, tmp_path: Path, method: str) -> None:
    """In-process first (OpenCV's thread pool is then live in this process), then a pool: a forked child of a live
    pool would deadlock, so this also proves the pool start is safe after in-process work."""
    one, pool = tmp_path / "one", tmp_path / "pool"
    run_recipe(write_recipe(tmp_path, basic_recipe(photo_catalog, one), "a.yaml"))
    recipe = basic_recipe(photo_catalog, pool, workers=2, start_method=method)
    summary = run_recipe(write_recipe(tmp_path, recipe, "b.yaml"))
    assert summary.workers == 2 and summary.items_done == 8
    assert output_files(one) == output_files(pool)
    key = lambda r: (r["sku"], r["output"], r["status"], r["path"], r["recipe_hash"])  # noqa: E731
    assert sorted(map(key, ledger_rows(one))) == sorted(map(key, ledger_rows(pool)))
    assert len({r["worker"] for r in ledger_rows(pool)}) >= 1


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_inputs_each_get_a_row_and_never_stop_the_run(tmp_path: Path, workers: int) -> None:
    catalog = tmp_path / "zoo"
    cases = write_bad_input_zoo(catalog)
    # A manifest adds an unreadable path and a directory to the zoo.
    rows = [{"sku": c.name, "image": c.name} for c in cases]
    rows += [{"sku": "missing", "image": "does/not/exist.jpg"}, {"sku": "a-folder", "image": "."}]
    (catalog / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {
        "version": 1,
        "name": "zoo",
        "input": {"path": str(catalog / "list.jsonl")},
        "output": {"dir": str(tmp_path / "out"), "format": "png", "naming": "{sku_hash}/{output}.{ext}"},
        "execution": {"workers": workers, "batch_size": 4, "max_failures": 1.0 * len(rows)},
        "stages": [{"id": "g", "uses": "color.gamma", "with": {"gamma": 1.0}}],
    }
    summary = run_recipe(write_recipe(tmp_path, recipe))
    by_sku = {r["sku"]: r for r in ledger_rows(tmp_path / "out")}
    assert len(by_sku) == len(rows)
    for case in cases:
        row = by_sku[case.name]
        if case.expect == "ok":
            assert row["status"] == "ok", (case.name, row["error"])
            with Image.open(tmp_path / "out" / row["path"]) as image:
                assert image.size == case.size, case.name
                assert ("A" in image.mode) == case.has_alpha, case.name
        else:
            assert row["status"] == "failed" and row["stage"] in ("read", "decode"), (case.name, row)
            assert case.reason in row["error"].lower(), (case.name, row["error"])
    assert by_sku["missing"]["stage"] == "read" and "not found" in by_sku["missing"]["error"]
    assert by_sku["a-folder"]["status"] == "failed"
    failed = sum(c.expect == "failed" for c in cases) + 2
    assert summary.items_failed == failed and summary.items_done == len(rows) - failed
    assert summary.exit_code == 0  # the budget allows every failure


def run_with_budget(catalog: Path, tmp_path: Path, budget: object, plugin_dir: Path) -> int:
    recipe = basic_recipe(catalog, tmp_path / f"out-{budget}", max_failures=budget)
    recipe["stages"][1] = {
        "id": "square",
        "uses": "test.fail_on",
        "needs": ["enhanced"],
        "with": {"sku_contains": "coffee"},
    }
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    return run_recipe(write_recipe(tmp_path, recipe, f"{budget}.yaml"), options).exit_code


def test_exit_code_follows_the_failure_budget(photo_catalog: Path, tmp_path: Path, plugin_dir: Path) -> None:
    # One of eight items fails: 12.5 %.
    assert run_with_budget(photo_catalog, tmp_path, 0, plugin_dir) == 1
    assert run_with_budget(photo_catalog, tmp_path, 1, plugin_dir) == 0
    assert run_with_budget(photo_catalog, tmp_path, 0.1, plugin_dir) == 1
    assert run_with_budget(photo_catalog, tmp_path, "20%", plugin_dir) == 0


def test_a_stage_error_that_names_its_stage_is_not_prefixed_twice(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path
) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", max_failures=5)
    recipe["stages"][1] = {
        "id": "square",
        "uses": "test.fail_on",
        "needs": ["enhanced"],
        "with": {"sku_contains": "coffee", "stage_error": True},
    }
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    run_recipe(write_recipe(tmp_path, recipe), options)
    (bad,) = [r for r in ledger_rows(tmp_path / "out") if r["status"] == "failed"]
    assert bad["error"] == "test.fail_on: item 'food/coffee' refused"  # as the stage wrote it, named once


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stage_failing_on_one_item_fails_that_item_and_that_branch_only(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, workers: int
) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", workers=workers, batch_size=4, max_failures=5)
    recipe["stages"].append(
        {"id": "inverted", "uses": "test.fail_on", "needs": ["enhanced"], "with": {"sku_contains": "coffee"}}
    )
    recipe["outputs"] = ["square", "inverted"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, recipe), options)
    rows = {(r["sku"], r["output"]): r for r in ledger_rows(tmp_path / "out")}
    bad = rows[("food/coffee", "inverted")]
    assert bad["status"] == "failed" and bad["stage"] == "inverted" and "refusing food/coffee" in bad["error"]
    assert bad["error"].startswith("test.fail_on: ValueError")
    # Its other branch, and every other item (batched with it), went through; the inversion is real.
    assert rows[("food/coffee", "square")]["status"] == "ok"
    others = [r for k, r in rows.items() if k != ("food/coffee", "inverted")]
    assert len(others) == 15 and all(r["status"] == "ok" for r in others)
    enhanced = np.asarray(Image.open(tmp_path / "out" / "misc/rocket/square.png").convert("RGB"))
    inverted = np.asarray(Image.open(tmp_path / "out" / "misc/rocket/inverted.png").convert("RGB"))
    assert enhanced.shape == (96, 96, 3) and inverted.shape != enhanced.shape
    assert summary.items_failed == 1 and summary.exit_code == 0


def test_a_stage_returning_garbage_fails_items_with_a_clear_reason(photo_catalog, tmp_path, plugin_dir) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", max_failures=100)
    recipe["stages"] = [{"id": "bad", "uses": "test.bad_return"}]
    recipe["outputs"] = ["bad"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, recipe), options)
    rows = ledger_rows(tmp_path / "out")
    assert summary.items_failed == 8 and all("expected imgx.Item" in r["error"] for r in rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stage_that_cannot_start_stops_the_run_with_its_reason(photo_catalog, tmp_path, plugin_dir, workers) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", workers=workers)
    recipe["stages"] = [{"id": "model", "uses": "test.broken_init"}]
    recipe["outputs"] = ["model"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    with pytest.raises(ImgxError, match=r"test.broken_init .*failed to start: FileNotFoundError: weights not found"):
        run_recipe(write_recipe(tmp_path, recipe), options)


UNSAFE = ["../escape", "/etc/imgx-abs", "a/../../up", "_imgx/ledger/x", "back\\slash", "nul\x00byte", "x" * 300, ""]


def test_untrusted_skus_never_write_outside_the_output_folder(photo_catalog: Path, tmp_path: Path) -> None:
    photo = photo_catalog / "food" / "coffee.jpg"
    rows = [{"sku": sku, "image": str(photo)} for sku in [*UNSAFE, "ok/sku-1", "café/靴-1"]]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    work = tmp_path / "work"
    recipe = {
        "version": 1,
        "name": "unsafe",
        "input": {"path": str(tmp_path / "m.jsonl")},
        "output": {"dir": str(work / "out"), "format": "png"},
        "execution": {"max_failures": 100},
        "stages": [{"id": "g", "uses": "color.gamma"}],
    }
    path = write_recipe(tmp_path, recipe)
    before = {p for p in tmp_path.rglob("*")}
    summary = run_recipe(path)
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(work / "out" in p.parents or p == work / "out" or p in (work,) for p in created), created
    assert not Path("/etc/imgx-abs").exists()
    rows_by_sku = {r["sku"]: r for r in ledger_rows(work / "out")}
    for sku in UNSAFE:
        row = rows_by_sku.get(sku) or rows_by_sku.get("<row 8>")
        assert row["status"] == "failed" and row["stage"] in ("naming", "catalog"), (sku, row)
    assert rows_by_sku["ok/sku-1"]["status"] == "ok" and (work / "out/ok/sku-1/g.png").is_file()
    assert (work / "out/café/靴-1/g.png").is_file()
    assert summary.items_done == 2


def test_resume_skips_done_work_and_redoes_only_what_changed(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, out))
    run_recipe(recipe)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}

    again = run_recipe(recipe, RunOptions(resume=True))
    assert (again.items_skipped, again.items_done, again.outputs_skipped) == (8, 0, 16)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps

    # One variant's parameters change: only that variant is redone.
    changed = run_recipe(recipe, RunOptions(resume=True, overrides=("stages.square.with.size=64",)))
    assert (changed.items_done, changed.outputs_ok, changed.outputs_skipped) == (8, 8, 8)
    assert Image.open(out / "food/coffee/square.png").size == (64, 64)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.name == "enhanced.png")

    # A deleted output is redone; nothing else.
    (out / "misc/rocket/enhanced.png").unlink()
    fixed = run_recipe(recipe, RunOptions(resume=True, overrides=("stages.square.with.size=64",)))
    assert (fixed.items_done, fixed.outputs_ok) == (1, 1) and (out / "misc/rocket/enhanced.png").is_file()

    # Without --resume everything is done again.
    assert run_recipe(recipe).outputs_ok == 16


def test_resume_retries_items_that_failed(photo_catalog: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "cat"
    catalog.mkdir()
    (catalog / "a.jpg").write_bytes((photo_catalog / "food/coffee.jpg").read_bytes())
    (catalog / "b.jpg").write_bytes(b"")  # empty: fails
    recipe = write_recipe(tmp_path, basic_recipe(catalog, tmp_path / "out", max_failures=1))
    first = run_recipe(recipe)
    assert (first.items_done, first.items_failed) == (1, 1)
    (catalog / "b.jpg").write_bytes((photo_catalog / "misc/rocket.jpg").read_bytes())
    second = run_recipe(recipe, RunOptions(resume=True))
    assert (second.items_done, second.items_skipped, second.items_failed) == (1, 1, 0)


def test_dry_run_reads_no_image_and_writes_nothing(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_recipe(write_recipe(tmp_path, basic_recipe(photo_catalog, out)), RunOptions(dry_run=True))
    assert summary.dry_run and summary.items == 8 and not out.exists()


def test_a_second_run_on_the_same_output_folder_is_refused(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "_imgx").mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', "
            "flush=True); time.sleep(30)",
            str(out / "_imgx" / "lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ImgxError, match="another imgx run is writing to"):
            run_recipe(write_recipe(tmp_path, basic_recipe(photo_catalog, out)))
    finally:
        holder.kill()
        holder.wait()
    assert run_recipe(write_recipe(tmp_path, basic_recipe(photo_catalog, out))).items_done == 8


@pytest.mark.parametrize("workers", [1, 2])
def test_the_executor_streams_a_bounded_number_of_batches(photo_catalog, tmp_path, workers) -> None:
    """Memory is bounded by batch size and workers: batches are pulled only as results come back."""
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out", batch_size=1))
    _, _, plan = prepare(recipe, RunOptions())
    spec = RunSpec(plan=plan, out_dir=tmp_path / "out", run_id="stream")
    source = str(photo_catalog / "food" / "coffee.jpg")
    pulled, in_flight_max = 0, 0
    finished = 0

    def batches():
        nonlocal pulled, in_flight_max
        for index in range(40):
            pulled += 1
            in_flight_max = max(in_flight_max, pulled - finished)
            yield [WorkUnit(ItemRef(f"sku-{index}", source, index), plan.outputs)]

    def on_result(result) -> None:
        nonlocal finished
        finished += 1

    start = time.perf_counter()
    LocalExecutor(spec, ExecutorOptions(workers=workers)).run(batches(), on_result)
    assert finished == 40 and time.perf_counter() - start < 120
    assert in_flight_max <= 2 * workers + 1, in_flight_max


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_killed_pool_worker_fails_the_run_with_a_resume_hint(photo_catalog, tmp_path, plugin_dir, method) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", workers=2, batch_size=1, start_method=method)
    recipe["stages"] = [{"id": "slow", "uses": "test.slow", "with": {"seconds": 0.4}}]
    recipe["outputs"] = ["slow"]
    path = write_recipe(tmp_path, recipe)
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    lock = str(tmp_path / "out" / "_imgx" / "workers.lock")

    def kill_a_worker() -> None:
        # Workers are the processes holding the run's worker lock open (children under fork, grandchildren under
        # forkserver).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = [pid for pid in _pids() if _holds(pid, lock)]
            if len(workers) >= 2:
                time.sleep(0.5)
                os.kill(workers[0], 9)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    with pytest.raises(ImgxError, match=r"worker process died.*--resume"):
        run_recipe(path, options)
    killer.join()
    resumed = run_recipe(path, RunOptions(resume=True, plugin_config=options.plugin_config))
    rows = ledger_rows(tmp_path / "out")
    ok = [(r["sku"], r["output"]) for r in rows if r["status"] == "ok"]
    assert len(ok) == len(set(ok)) == 8 and resumed.items_failed == 0


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _holds(pid: int, path: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_png_compression_changes_the_files_but_not_their_pixels(photo_catalog: Path, tmp_path: Path) -> None:
    sizes: dict[int, dict[str, int]] = {}
    pixels: dict[int, dict[str, bytes]] = {}
    for level in (1, 9):
        out = tmp_path / f"out-{level}"
        body = basic_recipe(photo_catalog, out)
        body["output"]["png_compression"] = level
        run_recipe(write_recipe(tmp_path, body, f"recipe-{level}.yaml"), RunOptions())
        files = output_files(out)
        sizes[level] = {name: len(data) for name, data in files.items()}
        pixels[level] = {name: np.asarray(Image.open(out / name)).tobytes() for name in files}
    assert pixels[1] == pixels[9] and len(pixels[1]) > 0
    assert sum(sizes[1].values()) > sum(sizes[9].values())


def test_an_output_override_writes_that_output_in_its_own_format(photo_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    body = basic_recipe(photo_catalog, out)
    body["output"].update(format="jpeg", quality=85, overrides={"square": {"format": "webp", "quality": 70}})
    summary = run_recipe(write_recipe(tmp_path, body), RunOptions())
    assert summary.outputs_failed == 0 and summary.outputs_ok == 2 * summary.items > 0
    rows = ledger_rows(out)
    kinds = {(row["output"], Path(row["path"]).suffix) for row in rows}
    assert kinds == {("enhanced", ".jpg"), ("square", ".webp")}
    for row in rows:
        with Image.open(out / row["path"]) as image:
            assert image.format == ("JPEG" if row["output"] == "enhanced" else "WEBP")


def test_a_worker_drops_each_intermediate_image_once_no_later_node_reads_it(photo_catalog, tmp_path) -> None:
    """A batch of large photos holds one copy per DAG step only while a later step needs it: after the run, each
    item keeps its written outputs only, and the outputs are the same as when every intermediate was kept."""
    from imgx.executors.processor import BatchProcessor
    from imgx.registry import load_registry

    recipe = basic_recipe(photo_catalog, tmp_path / "out")
    recipe["stages"].append({"id": "small", "uses": "geometry.fit", "needs": ["square"], "with": {"size": 48}})
    recipe["outputs"] = ["enhanced", "small"]
    _, _, plan = prepare(write_recipe(tmp_path, recipe), RunOptions())
    processor = BatchProcessor(RunSpec(plan=plan, out_dir=tmp_path / "out", run_id="release"), "w0", load_registry())
    try:
        sources = sorted(photo_catalog.rglob("*.jpg"))[:3]
        units = [WorkUnit(ItemRef(f"sku-{i}", str(path), i), plan.outputs) for i, path in enumerate(sources)]
        states = processor.prepare(units)
        processor.run_nodes(states, plan.nodes)
        kept = BatchProcessor(RunSpec(plan=plan, out_dir=tmp_path / "out", run_id="keep"), "w1", load_registry())
        kept.released_after = {}
        try:
            reference = kept.prepare(units)
            kept.run_nodes(reference, plan.nodes)
        finally:
            kept.close()
    finally:
        processor.close()
    assert len(states) == 3
    for state, full in zip(states, reference, strict=True):
        assert set(state.values) == {"enhanced", "small"}  # source (decoded) and square are gone
        assert set(full.values) == {"source", "enhanced", "square", "small"}
        for out in ("enhanced", "small"):
            assert np.array_equal(state.values[out].image, full.values[out].image)


_HEAP_PROBE = """
import sys
import numpy as np
if sys.argv[1] == "worker":
    from imgx.heap import return_large_frees
    return_large_frees()
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
before = rss_mib()
kept = []
for _ in range(3):  # full-size copies of a 4000 px photo made and dropped, each followed by a small result that stays
    copies = []
    for _ in range(4):
        copies.append(np.ones((2667, 4000, 3), np.uint8))
        kept.append(np.ones(300_000, np.uint8))
    del copies
print(rss_mib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc are Linux's")
def test_a_worker_gives_freed_image_buffers_back_to_the_system() -> None:
    """glibc keeps freed blocks of up to 32 MiB on its heap once it has seen one freed; a worker fixes its mmap
    threshold, so memory between batches falls back instead of staying at the batch's peak."""
    kept = {
        role: float(
            subprocess.run([sys.executable, "-c", _HEAP_PROBE, role], capture_output=True, text=True, check=True).stdout
        )
        for role in ("plain", "worker")
    }
    assert kept["plain"] > 60, kept  # the default policy keeps the copies resident (the test would show nothing)
    assert kept["worker"] < 10, kept


_FAULT_PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "worker":
    from imgx.heap import return_large_frees
    return_large_frees()
np.ones((1024, 1024, 3), np.uint8)  # the first one may fault its pages in
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # a 1024 px photo's buffers, made and dropped item after item
    a = np.ones((1024, 1024, 3), np.uint8)
    b = a[::2, ::2].copy()
    del a, b
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and getrusage's fault count")
def test_a_worker_reuses_the_heap_for_a_photo_sized_buffer_instead_of_faulting_in_fresh_pages() -> None:
    """Blocks below LARGE_ALLOCATION stay on the heap and HEAP_SLACK of free heap is kept: a 3 MiB buffer made and
    dropped 50 times is not faulted in from the kernel each time (a 256 KiB threshold did: 768 faults per buffer;
    decoding, resizing, CLAHE and JPEG-encoding a 1024 px photo took 11.3 ms that way, 7.1 ms now)."""
    faults = int(
        subprocess.run(
            [sys.executable, "-c", _FAULT_PROBE, "worker"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert faults < 50 * 768 // 10, faults


def test_a_batch_reports_the_work_of_each_node_from_its_decoded_sizes(photo_catalog, tmp_path) -> None:
    """The ETA weighs items by work (imgx.Stage.work, megapixels unless a stage says otherwise): each batch's result
    says each node's work on the items it ran, from their decoded sizes, and the time and megapixels of reading,
    decoding, encoding and writing; a broken image does no work."""
    from PIL import Image

    from imgx.executors.processor import BatchProcessor
    from imgx.registry import load_registry

    _, _, plan = prepare(write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out")), RunOptions())
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    sources = sorted(photo_catalog.rglob("*.jpg"))[:3]
    units = [WorkUnit(ItemRef(f"sku-{i}", str(p), i), plan.outputs) for i, p in enumerate([*sources, broken])]
    processor = BatchProcessor(RunSpec(plan=plan, out_dir=tmp_path / "out", run_id="work"), "w0", load_registry())
    try:
        result = processor(units)
    finally:
        processor.close()
    megapixels = 0.0
    for path in sources:
        with Image.open(path) as image:
            megapixels += image.width * image.height / 1e6
    assert result.items == 4 and result.failed_items == 1
    assert set(result.work) == {node.id for node in plan.nodes}
    for node in plan.nodes:
        assert result.work[node.id] == pytest.approx(megapixels), node.id
    # reading and decoding (over the decoded megapixels), encoding and writing: their own seconds
    assert result.megapixels == pytest.approx(megapixels) and result.read_seconds > 0 and result.write_seconds > 0


def test_on_the_cpu_a_model_node_takes_as_many_items_as_fit_its_pixel_budget(tmp_path: Path, model_plugin_dir) -> None:
    """A batched plan on the CPU runs its model node on groups of at most ``CPU_GROUP_PIXELS`` decoded pixels (at
    least one item): photos of 1500 x 1500 one at a time, small ones together, so a batch of large photos is never
    held in memory whole; every item still gets its output."""
    log = tmp_path / "log"
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(model_plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, pixel_budget_recipe(tmp_path, log)), options)
    assert summary.items_done == 7 and summary.items_failed == 0
    (calls,) = log.glob("calls-*")
    assert [json.loads(line) for line in calls.read_text().splitlines()] == PIXEL_BUDGET_CALLS
    assert len(list((tmp_path / "out").glob("*.png"))) == 7
