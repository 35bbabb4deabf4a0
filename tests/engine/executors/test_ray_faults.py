"""The Ray executor under faults, on a real Ray: a worker process killed mid-run, the whole run killed and resumed,
and ``imgx run`` starting (and stopping) its own local Ray."""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from _support import basic_recipe, write_recipe
from imgx.ledger import read_ledger
from imgx.registry import PluginConfig
from imgx.runner import RunOptions, run_recipe

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def slow_recipe(catalog: Path, out: Path, address: str | None, seconds: float, **ray: object) -> dict:
    """The demo DAG with a slow stage in it, so a run can be hit mid-way."""
    recipe = basic_recipe(catalog, out, batch_size=2)
    recipe["stages"].insert(1, {"id": "slow", "uses": "test.slow", "needs": ["enhanced"], "with": {"seconds": seconds}})
    recipe["stages"][2]["needs"] = ["slow"]
    settings = {"runtime_env": {"ship_code": False}, **ray}
    if address:
        settings["address"] = address
    recipe["execution"].update(executor="ray", ray=settings)
    return recipe


def copies(photo_catalog: Path, folder: Path, n: int) -> list[str]:
    skus = []
    for index in range(n):
        for photo in sorted(photo_catalog.rglob("*.jpg")):
            sku = f"batch{index:02d}/{photo.stem}"
            (folder / sku).parent.mkdir(parents=True, exist_ok=True)
            (folder / f"{sku}.jpg").write_bytes(photo.read_bytes())
            skus.append(sku)
    return skus


def ok_pairs(out: Path) -> list[tuple[str, str]]:
    return [(r["sku"], r["output"]) for r in read_ledger(out).to_pylist() if r["status"] == "ok"]


def _holds(pid: int, path: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_a_ray_worker_killed_mid_run_loses_and_duplicates_nothing(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, ray_address: str
) -> None:
    skus = copies(photo_catalog, tmp_path / "catalog", 3)  # 24 items, chunks of 2, blocks of 3 chunks
    out = tmp_path / "out"
    recipe = slow_recipe(tmp_path / "catalog", out, ray_address, 0.15, blocks=4)
    journal, lock = out / "_imgx" / "journal", str(out / "_imgx" / "workers.lock")
    killed: list[int] = []

    def kill_a_worker_that_has_journaled_rows() -> None:
        # A worker mid-block holds the worker lock; its journal (named after its pid) already has finished rows:
        # the retried block must skip those and redo the rest.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for path in journal.glob("*.jsonl") if journal.is_dir() else []:
                pid = int(path.stem.rsplit("-", 2)[1])
                if path.read_text().count("\n") >= 2 and _holds(pid, lock):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_that_has_journaled_rows)
    killer.start()
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, recipe), options)
    killer.join()
    assert killed, "no worker was killed mid-block"

    rows = read_ledger(out).to_pylist()
    ok = ok_pairs(out)
    expected = {(sku, output) for sku in skus for output in ("enhanced", "square")}
    assert set(ok) == expected, "an item was lost"
    assert len(ok) == len(rows) == len(expected), "an item was recorded twice"
    # The dead worker's finished rows were kept (recovered from its journal), not redone.
    assert any(r["worker"].endswith(f"-{killed[0]}") for r in rows)
    assert (summary.items, summary.items_done, summary.outputs_ok) == (24, 24, 48)
    for sku, output in expected:
        with Image.open(out / sku / f"{output}.png") as image:
            image.load()


def test_a_killed_ray_run_resumes_every_item_exactly_once(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, ray_address: str
) -> None:
    """``imgx run --address`` joins the cluster and ships imgx to it; SIGKILL the run, then ``--resume``."""
    skus = copies(photo_catalog, tmp_path / "catalog", 6)  # 48 items, at least 5 s of work on 2 CPUs
    out = tmp_path / "out"
    recipe = slow_recipe(tmp_path / "catalog", out, None, 0.2, runtime_env={"ship_code": True})
    path = write_recipe(tmp_path, recipe)
    command = [sys.executable, "-m", "imgx", "run", str(path), "--plugins-dir", str(plugin_dir), "--no-progress"]
    command += ["--address", ray_address]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(ok_pairs(out)) < 8 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    output = run.stdout.read().decode(errors="replace") if run.stdout else ""
    assert run.returncode == -signal.SIGKILL, output
    first = set(ok_pairs(out))
    assert 8 <= len(first) < 2 * len(skus), f"the kill must land mid-run: {len(first)} outputs done; {output[-2000:]}"

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = read_ledger(out).to_pylist()
    ok = ok_pairs(out)
    expected = {(sku, output) for sku in skus for output in ("enhanced", "square")}
    assert set(ok) == expected and len(ok) == len(expected), "an item was lost or done twice"
    # not redone: the first run's ok rows are the only ok rows of those pairs (skips are counted, not written)
    assert len({(r["sku"], r["output"], r["run_id"]) for r in rows if r["status"] == "ok"}) == len(expected)
    assert not list((out / "_imgx" / "journal").glob("*.jsonl")) and not list((out / "_imgx" / "tmp").iterdir())


def test_imgx_run_starts_a_local_ray_and_shuts_it_down(photo_catalog: Path, tmp_path: Path) -> None:
    # not imported here: Ray reads its auth token once, at its import, and later tests of this worker need the session's
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed: pip install 'imgx[ray]'")
    recipe = basic_recipe(photo_catalog, tmp_path / "out", workers=2)
    path = write_recipe(tmp_path, recipe)
    # a mark in the run's environment, which the Ray processes it starts inherit: another test's Ray on this machine
    # (the session's cluster of another pytest-xdist worker) is not this run's
    mark = f"imgx-test-{secrets.token_hex(8)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"IMGX_TEST_RUN_MARK": mark}
    assert not ray_processes(mark)
    logs = [tmp_path / "stdout.txt", tmp_path / "stderr.txt"]  # files, not pipes: nothing blocks while it is watched
    with logs[0].open("w") as out, logs[1].open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "imgx", "run", str(path), "--executor", "ray", "--no-progress"],
            stdout=out,
            stderr=err,
            env=env,
        )
        seen: set[tuple[int, str]] = set()
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            seen |= ray_processes(mark)  # the mark finds the run's own Ray: the check below can see a leftover
            time.sleep(0.2)
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    run = subprocess.CompletedProcess(process.args, process.returncode, logs[0].read_text(), logs[1].read_text())
    assert any("raylet" in command for _, command in seen), seen
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ray executor" in run.stderr and "8" in run.stderr
    assert len(ok_pairs(tmp_path / "out")) == 16
    # Everything the run started (GCS, raylet, workers) ended with it.
    deadline = time.monotonic() + 10
    while (left := ray_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes of the run's local Ray outlived it: {left}"


def ray_processes(mark: str) -> set[tuple[int, str]]:
    """``(pid, command)`` of live Ray processes on this machine (GCS, raylet, workers) whose environment holds
    ``IMGX_TEST_RUN_MARK=mark``."""
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        marked = f"IMGX_TEST_RUN_MARK={mark}".encode() in environ
        if marked and any(name in command for name in ("gcs_server", "raylet", "default_worker.py", "ray::")):
            found.add((int(entry), command[:80]))
    return found
