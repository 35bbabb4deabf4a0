"""The Ray executor on a real Ray cluster: the same bytes and ledger rows as the local executor, bad inputs, resume,
per-item isolation, and a model stage in an actor pool."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _support import PIXEL_BUDGET_CALLS, basic_recipe, pixel_budget_recipe, write_recipe
from imgx import ImgxError
from imgx.ledger import read_ledger
from imgx.progress import IO_READ, IO_WRITE, Reporter
from imgx.registry import PluginConfig
from imgx.runner import RunOptions, run_recipe
from imgx.samples import write_bad_input_zoo

pytestmark = pytest.mark.ray

DETERMINISTIC = ("sku", "source", "output", "path", "status", "stage", "error", "recipe_hash")


def on_ray(recipe: dict[str, Any], address: str, **ray: Any) -> dict[str, Any]:
    """The recipe on the Ray executor, joining the session's cluster (imgx is installed there: no code shipping)."""
    settings = {"address": address, "runtime_env": {"ship_code": False}, **ray}
    return {**recipe, "execution": {**recipe["execution"], "executor": "ray", "ray": settings}}


def output_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "_imgx" not in p.relative_to(out).parts
    }


class WorkRecorder(Reporter):
    """Shows nothing; adds up the work per node that the results report (what the ETA weighs items by)."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.work: dict[str, float] = {}

    def advance(self, images: int, failed: int, **measured: Any) -> None:
        super().advance(images, failed, **measured)
        for node, units in (measured.get("work") or {}).items():
            self.work[node] = self.work.get(node, 0.0) + units


def megapixels(catalog: Path) -> float:
    total = 0.0
    for path in catalog.rglob("*.jpg"):
        with Image.open(path) as image:
            total += image.width * image.height / 1e6
    return total


def ledger_keys(out: Path) -> list[tuple]:
    return sorted(tuple(row[c] for c in DETERMINISTIC) for row in read_ledger(out).to_pylist())


def test_ray_writes_the_same_bytes_and_ledger_rows_as_the_local_executor(
    photo_catalog: Path, tmp_path: Path, ray_address: str
) -> None:
    local = run_recipe(write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "local"), "local.yaml"))
    # Tiny windows and blocks: three datasets, two in flight at once, several blocks each.
    recipe = on_ray(basic_recipe(photo_catalog, tmp_path / "ray", batch_size=1), ray_address, window_items=3)
    recorder = WorkRecorder()
    summary = run_recipe(write_recipe(tmp_path, recipe, "ray.yaml"), reporter=recorder)
    assert summary.executor == "ray"
    nodes = ("enhanced", "square", IO_READ)  # reading and decoding weigh in by the decoded megapixels
    expected = {node: pytest.approx(megapixels(photo_catalog)) for node in nodes}
    assert recorder.work == {**expected, IO_WRITE: 8}  # encoding and writing by the items
    assert (summary.items, summary.items_done, summary.items_failed, summary.outputs_ok) == (8, 8, 0, 16)
    assert set(summary.stage_seconds) == {"enhanced", "square"} and all(s > 0 for s in summary.stage_seconds.values())
    assert output_files(tmp_path / "ray") == output_files(tmp_path / "local") and len(output_files(tmp_path / "ray"))
    assert ledger_keys(tmp_path / "ray") == ledger_keys(tmp_path / "local")
    rows = read_ledger(tmp_path / "ray").to_pylist()
    assert all(r["run_id"] == summary.run_id and r["worker"].startswith("ray-") for r in rows)
    assert local.outputs_ok == summary.outputs_ok
    # Workers wrote the ledger: no journal is left, no chunk marker, no temp file.
    state = tmp_path / "ray" / "_imgx"
    assert not list((state / "journal").glob("*")) and not (state / "ray-chunks").exists()
    assert not list((state / "tmp").iterdir())


def test_bad_inputs_are_ledger_rows_exactly_as_with_the_local_executor(tmp_path: Path, ray_address: str) -> None:
    catalog = tmp_path / "zoo"
    cases = write_bad_input_zoo(catalog)
    rows = [{"sku": c.name, "image": c.name} for c in cases]
    rows += [{"sku": "missing", "image": "does/not/exist.jpg"}, {"sku": "", "image": "x.jpg"}]
    rows += [{"sku": cases[0].name, "image": cases[0].name}]  # a duplicate SKU
    (catalog / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    recipe = {
        "version": 1,
        "name": "zoo",
        "input": {"path": str(catalog / "list.jsonl")},
        "output": {"dir": str(tmp_path / "local"), "format": "png", "naming": "{sku_hash}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 4, "max_failures": 1.0 * (len(rows) + 1)},
        "stages": [{"id": "g", "uses": "color.gamma", "with": {"gamma": 1.2}}],
    }
    local = run_recipe(write_recipe(tmp_path, recipe, "local.yaml"))
    recipe = on_ray({**recipe, "output": {**recipe["output"], "dir": str(tmp_path / "ray")}}, ray_address)
    summary = run_recipe(write_recipe(tmp_path, recipe, "ray.yaml"))
    assert (summary.items_done, summary.items_failed) == (local.items_done, local.items_failed)
    assert summary.items_failed >= 8 and summary.items_done >= 5
    assert ledger_keys(tmp_path / "ray") == ledger_keys(tmp_path / "local")
    assert output_files(tmp_path / "ray") == output_files(tmp_path / "local")
    by_sku = {r["sku"]: r for r in read_ledger(tmp_path / "ray").to_pylist()}
    assert by_sku["missing"]["stage"] == "read" and "not found" in by_sku["missing"]["error"]


def test_a_stage_failing_on_one_item_fails_that_item_only(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, ray_address: str
) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", batch_size=4, max_failures=5)
    recipe["stages"].append(
        {"id": "inverted", "uses": "test.fail_on", "needs": ["enhanced"], "with": {"sku_contains": "coffee"}}
    )
    recipe["outputs"] = ["square", "inverted"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, on_ray(recipe, ray_address)), options)
    rows = {(r["sku"], r["output"]): r for r in read_ledger(tmp_path / "out").to_pylist()}
    bad = rows[("food/coffee", "inverted")]
    assert bad["status"] == "failed" and bad["stage"] == "inverted" and "refusing food/coffee" in bad["error"]
    assert rows[("food/coffee", "square")]["status"] == "ok"
    assert sum(r["status"] == "ok" for r in rows.values()) == 15
    assert summary.items_failed == 1 and summary.exit_code == 0


def test_resume_on_ray_skips_done_work_and_redoes_what_is_missing(
    photo_catalog: Path, tmp_path: Path, ray_address: str
) -> None:
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, on_ray(basic_recipe(photo_catalog, out), ray_address))
    run_recipe(recipe)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / "misc/rocket/square.png").unlink()
    resumed = run_recipe(recipe, RunOptions(resume=True))
    assert (resumed.items_skipped, resumed.items_done, resumed.outputs_ok, resumed.outputs_skipped) == (7, 1, 1, 15)
    assert (out / "misc/rocket/square.png").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.name != "square.png" or "rocket" not in str(p))
    rows = read_ledger(out).to_pylist()
    ok = [(r["sku"], r["output"]) for r in rows if r["status"] == "ok" and r["run_id"] == resumed.run_id]
    assert ok == [("misc/rocket", "square")]


def test_a_model_stage_runs_in_an_actor_pool_and_loads_once_per_actor(
    photo_catalog: Path, tmp_path: Path, model_plugin_dir: Path, ray_address: str
) -> None:
    log = tmp_path / "model-log"
    recipe = basic_recipe(photo_catalog, tmp_path / "local", batch_size=2)
    recipe["stages"] = [
        recipe["stages"][0],
        {"id": "model", "uses": "test.model", "needs": ["enhanced"], "with": {"log_dir": str(log)}},
        {"id": "square", "uses": "geometry.fit", "needs": ["model"], "with": {"size": 96}},
    ]
    recipe["outputs"] = ["enhanced", "model", "square"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(model_plugin_dir),)))
    run_recipe(write_recipe(tmp_path, recipe, "local.yaml"), options)

    shutil.rmtree(log)  # the same parameters (so the same recipe hashes), a fresh record of builds and calls
    recipe["output"] = {**recipe["output"], "dir": str(tmp_path / "ray")}
    ray_recipe = on_ray(recipe, ray_address, concurrency=2, actor_num_cpus=0.5, batch_size=4)
    recorder = WorkRecorder()
    summary = run_recipe(write_recipe(tmp_path, ray_recipe, "ray.yaml"), options, recorder)
    assert (summary.items_done, summary.outputs_ok) == (8, 24)
    # the work of every node, the actor pool's included, came back with the results (items handed between groups)
    nodes = ("enhanced", "model", "square", IO_READ)
    expected = {node: pytest.approx(megapixels(photo_catalog)) for node in nodes}
    assert recorder.work == {**expected, IO_WRITE: 8}
    assert output_files(tmp_path / "ray") == output_files(tmp_path / "local")
    assert ledger_keys(tmp_path / "ray") == ledger_keys(tmp_path / "local")

    inits = sorted(log.glob("init-*"))
    calls = sorted(log.glob("calls-*"))
    # Two actors, each built its stage exactly once (on the CPU: no GPU here), and together they did every item.
    assert len(inits) == 2 and all(p.read_text() == "cpu\n" for p in inits)
    assert {p.name.split("-")[1] for p in calls} <= {p.name.split("-")[1] for p in inits}
    done = [sku for p in calls for line in p.read_text().splitlines() for sku in json.loads(line)]
    assert sorted(done) == sorted(r.rsplit(".", 1)[0] for r in _skus(photo_catalog))
    assert max(len(json.loads(line)) for p in calls for line in p.read_text().splitlines()) > 2  # batched calls
    # The model really ran: its output is darker than its input.
    enhanced = np.asarray(Image.open(tmp_path / "ray" / "food/coffee/enhanced.png"), dtype=float)
    modelled = np.asarray(Image.open(tmp_path / "ray" / "food/coffee/model.png"), dtype=float)
    assert modelled.mean() < 0.85 * enhanced.mean()


def test_on_ray_a_model_actor_runs_its_nodes_on_groups_within_the_pixel_budget(
    tmp_path: Path, model_plugin_dir: Path, ray_address: str
) -> None:
    """As the local executor does on the CPU, a model stage's actor runs its nodes on at most ``CPU_GROUP_PIXELS``
    decoded pixels of the chunks it gets (at least one item): 1500 px photos one at a time, small ones together."""
    log = tmp_path / "log"
    recipe = on_ray(pixel_budget_recipe(tmp_path, log), ray_address, concurrency=1)
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(model_plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, recipe), options)
    assert summary.items_done == 7 and summary.items_failed == 0
    (calls,) = log.glob("calls-*")
    assert [json.loads(line) for line in calls.read_text().splitlines()] == PIXEL_BUDGET_CALLS
    assert len(list((tmp_path / "out").glob("*.png"))) == 7


def _skus(catalog: Path) -> list[str]:
    return [str(p.relative_to(catalog)) for p in catalog.rglob("*.jpg")]


def test_a_stage_that_cannot_start_stops_the_run_with_its_reason(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, ray_address: str
) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out")
    recipe["stages"] = [{"id": "model", "uses": "test.broken_init"}]
    recipe["outputs"] = ["model"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    with pytest.raises(ImgxError, match=r"test.broken_init .*failed to start: FileNotFoundError: weights not found"):
        run_recipe(write_recipe(tmp_path, on_ray(recipe, ray_address)), options)


def test_style_transfer_runs_in_a_ray_actor_pool(photo_catalog: Path, tmp_path: Path, ray_address: str) -> None:
    """The real model stage (``style.transfer``, eager backend on the CPU) as an actor pool: the same images as the
    local executor, within one grey level (thread counts may reorder float sums)."""
    # One batch of 4 on both sides: the stage pads a batch to common shapes, so its partners may change an output.
    recipe = basic_recipe(photo_catalog, tmp_path / "local", max_failures=0, batch_size=4)
    recipe["input"]["limit"] = 4
    recipe["execution"].update(device="cpu", backend="eager")
    recipe["stages"] = [{"id": "styled", "uses": "style.transfer", "with": {"style": 3, "max_side": 96}}]
    recipe["outputs"] = ["styled"]
    # The local reference runs in a fresh process, like the Ray workers: no model state of earlier tests is reused.
    local = write_recipe(tmp_path, recipe, "local.yaml")
    done = subprocess.run([sys.executable, "-m", "imgx", "run", str(local), "--no-progress"], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"style.transfer cannot run here: {done.stderr.decode(errors='replace')[-500:]}")
    recipe["output"] = {**recipe["output"], "dir": str(tmp_path / "ray")}
    summary = run_recipe(write_recipe(tmp_path, on_ray(recipe, ray_address, concurrency=1, batch_size=4), "ray.yaml"))
    assert (summary.items_done, summary.outputs_ok) == (4, 4)
    local, ray = output_files(tmp_path / "local"), output_files(tmp_path / "ray")
    assert sorted(local) == sorted(ray) and len(ray) == 4
    for name in ray:
        a = np.asarray(Image.open(tmp_path / "local" / name), dtype=int)
        b = np.asarray(Image.open(tmp_path / "ray" / name), dtype=int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, name
        source = np.asarray(Image.open(photo_catalog / (name.rsplit("/", 1)[0] + ".jpg")), dtype=int)
        assert np.abs(b - source).mean() > 10, "the image was not stylized"
