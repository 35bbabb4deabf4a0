"""A run killed with SIGKILL mid-run, then resumed: every item done exactly once, none lost, no partial file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from _support import as_if_in_a_terminal, basic_recipe, write_recipe
from imgx.ledger import read_ledger

pytestmark = pytest.mark.slow


def make_catalog(photo_catalog: Path, folder: Path, copies: int) -> list[str]:
    skus = []
    for index in range(copies):
        for photo in sorted(photo_catalog.rglob("*.jpg")):
            sku = f"batch{index:02d}/{photo.stem}"
            target = folder / f"{sku}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target)
            skus.append(sku)
    return skus


def slow_run(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, workers: int, *, copies: int, seconds: float
) -> tuple[list[str], Path, list[str]]:
    """A catalog of ``8 x copies`` real photos and the ``imgx run`` command of the demo DAG with a slow stage in it
    (so a run can be stopped mid-way): ``(skus, output folder, command)``."""
    skus = make_catalog(photo_catalog, tmp_path / "catalog", copies=copies)
    out = tmp_path / "out"
    recipe = basic_recipe(tmp_path / "catalog", out, workers=workers, batch_size=2)
    slow = {"id": "slow", "uses": "test.slow", "needs": ["enhanced"], "with": {"seconds": seconds}}
    recipe["stages"].insert(1, slow)
    recipe["stages"][2]["needs"] = ["slow"]
    path = write_recipe(tmp_path, recipe)
    return (
        skus,
        out,
        [sys.executable, "-m", "imgx", "run", str(path), "--plugins-dir", str(plugin_dir), "--no-progress"],
    )


def ok_rows(out: Path) -> list[dict]:
    return [r for r in read_ledger(out).to_pylist() if r["status"] == "ok"]


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_run_then_resume_does_every_item_exactly_once(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, workers: int
) -> None:
    skus, out, command = slow_run(photo_catalog, tmp_path, plugin_dir, workers, copies=6, seconds=0.08)  # 48 items

    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(ok_rows(out)) < 12 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    helpers = descendants(run.pid)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, run.stdout.read().decode()
    first = ok_rows(out)
    assert 12 <= len(first) < 2 * len(skus), "the kill must land mid-run"

    # No worker survives its run (they would keep writing while the resume runs).
    time.sleep(1.0)
    alive = {pid for pid in helpers if _running(pid)}
    assert not alive, f"orphaned worker processes: {alive}"

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    rows = read_ledger(out).to_pylist()
    ok = [(r["sku"], r["output"]) for r in rows if r["status"] == "ok"]
    expected = {(sku, output) for sku in skus for output in ("enhanced", "square")}
    assert set(ok) == expected, "an item was lost"
    assert len(ok) == len(expected), "an item was done twice"
    # What the first run finished was skipped by the resume, not redone: its only ok row is the first run's, and the
    # resume's summary counts it as skipped (skips are counted, not written as ledger rows).
    first_run = {(r["sku"], r["output"]): r["run_id"] for r in first}
    assert all(first_run.get((r["sku"], r["output"]), r["run_id"]) == r["run_id"] for r in rows if r["status"] == "ok")
    assert not [r for r in rows if r["status"] == "skipped"]
    assert f"{len(first_run)}" in resumed.stderr.split("skipped (done before)")[1].split("\n")[0]
    # Every output is complete and readable; no temp or partial file anywhere.
    for sku, output in expected:
        with Image.open(out / sku / f"{output}.png") as image:
            image.load()
    leftovers = [
        p for p in out.rglob("*") if p.is_file() and "_imgx" not in p.relative_to(out).parts and p.suffix != ".png"
    ]
    assert not leftovers and not list((out / "_imgx" / "tmp").iterdir())
    assert not list((out / "_imgx" / "journal").glob("*.jsonl"))


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_cleanly_and_resume_finishes(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, workers: int
) -> None:
    """Ctrl-C reaches the whole foreground process group, as a terminal sends it."""
    skus, out, command = slow_run(photo_catalog, tmp_path, plugin_dir, workers, copies=4, seconds=0.1)  # 32 items

    run = subprocess.Popen(
        as_if_in_a_terminal(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while len(ok_rows(out)) < 6 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    helpers = descendants(run.pid)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    time.sleep(0.5)
    assert not {pid for pid in helpers if _running(pid)}, "a worker outlived the interrupted run"
    stopped = ok_rows(out)
    assert len(stopped) < 2 * len(skus)

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ok = [(r["sku"], r["output"]) for r in ok_rows(out)]
    assert len(ok) == len(set(ok)) == 2 * len(skus)
