"""A real two-node Ray cluster: a head and a second node started as separate ``ray start`` processes on this machine
(each with its own temp dir and a resource of its own), joined by ``imgx run --address`` in a subprocess, as a
catalog team runs it. Both nodes do work; a model actor killed mid-run and a Ctrl-C during a run lose nothing and do
nothing twice.

All the cluster's processes run in two process groups of their own, killed at the end; nothing else's Ray is
touched (``ray stop`` would stop every Ray on the machine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from _ray_cluster import two_node_cluster
from _support import as_if_in_a_terminal, basic_recipe, write_recipe
from imgx.ledger import read_ledger

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """``(address, env)``: a head with 1 CPU and a second node with 1 CPU; ``env`` carries the cluster's token."""
    with two_node_cluster() as started:
        yield started


def _catalog(photo_catalog: Path, folder: Path, copies: int) -> list[str]:
    skus = []
    for index in range(copies):
        for photo in sorted(photo_catalog.rglob("*.jpg")):
            sku = f"set{index:02d}/{photo.stem}"
            (folder / sku).parent.mkdir(parents=True, exist_ok=True)
            (folder / f"{sku}.jpg").write_bytes(photo.read_bytes())
            skus.append(sku)
    return skus


def _recipe(catalog: Path, out: Path, address: str, *, model_log: Path | None = None, seconds: float = 0.1) -> dict:
    """enhance -> slow (CPU) -> [model] -> square, on the cluster; imgx is installed on the nodes (no shipping)."""
    recipe = basic_recipe(catalog, out, batch_size=2)
    stages = recipe["stages"]
    stages.insert(1, {"id": "slow", "uses": "test.slow", "needs": ["enhanced"], "with": {"seconds": seconds}})
    last = "slow"
    if model_log is not None:
        stages.insert(2, {"id": "model", "uses": "test.model", "needs": ["slow"], "with": {"log_dir": str(model_log)}})
        last = "model"
    stages[-1]["needs"] = [last]
    recipe["outputs"] = ["enhanced", "square"]
    recipe["execution"].update(
        executor="ray", ray={"address": address, "blocks": 8, "runtime_env": {"ship_code": False}}
    )
    return recipe


def _command(recipe: Path, *plugin_dirs: Path) -> list[str]:
    command = [sys.executable, "-m", "imgx", "run", str(recipe), "--no-progress"]
    for folder in plugin_dirs:
        command += ["--plugins-dir", str(folder)]
    return command


def _ok(out: Path) -> list[tuple[str, str]]:
    return [(r["sku"], r["output"]) for r in read_ledger(out).to_pylist() if r["status"] == "ok"]


def _check_complete(out: Path, skus: list[str]) -> list[dict]:
    rows = read_ledger(out).to_pylist()
    ok = _ok(out)
    expected = {(sku, output) for sku in skus for output in ("enhanced", "square")}
    assert set(ok) == expected, "an output was lost"
    assert len(ok) == len(expected), "an output was recorded twice"
    for sku, output in expected:
        with Image.open(out / sku / f"{output}.png") as image:
            image.load()
    return rows


def test_both_nodes_do_work(photo_catalog: Path, tmp_path: Path, plugin_dir: Path, cluster) -> None:
    address, env = cluster
    skus = _catalog(photo_catalog, tmp_path / "catalog", 2)  # 16 items: 8 chunks of 2, 8 blocks
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, _recipe(tmp_path / "catalog", out, address, seconds=0.2))
    result = subprocess.run(_command(recipe, plugin_dir), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _check_complete(out, skus)
    nodes = {row["worker"].split("-")[1] for row in rows}  # ray-<node id prefix>-<pid>
    assert len(nodes) == 2, f"expected work on both nodes; ledger workers: {sorted({r['worker'] for r in rows})}"


def test_a_model_actor_killed_mid_run_loses_and_duplicates_nothing(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, model_plugin_dir: Path, cluster
) -> None:
    address, env = cluster
    skus = _catalog(photo_catalog, tmp_path / "catalog", 3)  # 24 items
    out, log = tmp_path / "out", tmp_path / "model-log"
    recipe = write_recipe(tmp_path, _recipe(tmp_path / "catalog", out, address, model_log=log, seconds=0.15))
    run = subprocess.Popen(
        _command(recipe, plugin_dir, model_plugin_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    killed = None
    deadline = time.monotonic() + 180
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        for calls in log.glob("calls-*") if log.is_dir() else []:
            if calls.read_text().count("\n") >= 2:  # the actor has processed batches and is loaded
                killed = int(calls.name.split("-")[1])
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.05)
    output, _ = run.communicate(timeout=600)
    assert killed is not None, "no model actor was found to kill"
    assert run.returncode == 0, output.decode(errors="replace")[-3000:]
    _check_complete(out, skus)
    inits = sorted(log.glob("init-*"))
    assert len(inits) >= 2, "the killed actor was restarted (its model loaded again in a new process)"


def test_ctrl_c_during_a_run_then_resume_finishes_everything_exactly_once(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, cluster
) -> None:
    address, env = cluster
    skus = _catalog(photo_catalog, tmp_path / "catalog", 5)  # 40 items
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, _recipe(tmp_path / "catalog", out, address, seconds=0.25))
    command = _command(recipe, plugin_dir)
    run = subprocess.Popen(
        as_if_in_a_terminal(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while len(_ok(out)) < 6 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
    output, _ = run.communicate(timeout=300)
    text = output.decode(errors="replace")
    assert run.returncode == 130, text[-3000:]
    assert "--resume" in text
    first = set(_ok(out))
    assert 6 <= len(first) < 2 * len(skus), f"Ctrl-C must land mid-run: {len(first)} outputs done"

    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _check_complete(out, skus)
