"""Smoke test of ``benchmarks/bench_scale.py``: every step runs at a tiny size and the JSON is complete.

Speed and memory targets are not checked here (timed assertions do not belong in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_scale.py"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("scale")
    out = work / "result.json"
    command = [sys.executable, str(SCRIPT), "--sizes", "300,600", "--big", "900", "--run-sizes", "40"]
    command += ["--work-dir", str(work), "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.mark.slow
def test_every_step_reports_rows_time_and_peak_memory(result: dict) -> None:
    assert result["machine"]["cpu_count"] >= 1 and result["parameters"]["sizes"] == [300, 600]
    after = result["after"]
    expected = {"count", "dedupe", "resume", "report", "resume_lookup", "run", "run_resume", "run_report"}
    assert expected <= set(after)
    for step in expected:
        for size, measured in after[step].items():
            assert "error" not in measured, (step, size, measured)
            assert measured["seconds"] > 0 and measured["peak_rss_mib"] >= measured["rss_after_import_mib"] > 0
    assert after["count"]["900"]["rows"] == 900
    assert after["dedupe"]["600"]["duplicated_skus"] == 0 and after["dedupe"]["900"]["duplicated_skus"] == 0
    # every row but the known duplicates is skipped by the resume, and the report counts them apart
    assert after["resume"]["600"]["items_skipped"] == 600
    assert after["run"]["40"]["outputs_ok"] == 40 and after["run_resume"]["40"]["items_skipped"] == 40
    assert set(result["targets"]) == {"count_rows_per_s", "dedupe_rows_per_s", "resume_skus_per_s", "peak_rss_growth"}


@pytest.mark.slow
def test_compare_runs_alternates_before_and_after(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    command = [sys.executable, str(SCRIPT), "--sizes", "", "--big", "", "--run-sizes", "30", "--compare-runs", "2"]
    command += ["--before-root", str(REPO), "--work-dir", str(tmp_path), "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compared = json.loads(out.read_text())["compare_runs"]["30"]
    assert [len(compared["runs"][name]) for name in ("before", "after")] == [2, 2]
    for runs in compared["runs"].values():
        assert all(run["wall_s"] >= run["run_s"] > 0 and run["cpu_s"] > 0 for run in runs)
    median = compared["median"]
    assert compared["after_over_before"]["wall_s"] == pytest.approx(
        median["after"]["wall_s"] / median["before"]["wall_s"], abs=1e-3
    )
