"""Smoke test of ``benchmarks/bench_engine.py``: it runs end to end on a tiny catalog and writes a complete JSON.

Speed targets are not checked here (timed assertions do not belong in tests); ``benchmarks/README.md`` says how to
run the real benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_engine.py"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("bench")
    out = work / "result.json"
    command = [sys.executable, str(SCRIPT), "--count", "6", "--size", "128", "--repeats", "1"]
    command += ["--work-dir", str(work), "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "overhead" in proc.stdout and "parallel" in proc.stdout  # the printed table
    assert not list(work.glob("bench-runs-*")), "run folders must be removed"
    return json.loads(out.read_text())


@pytest.mark.slow
def test_machine_and_parameters(result: dict) -> None:
    machine = result["machine"]
    for key in ("platform", "cpu_model", "cpu_count", "memory_gib", "python", "imgx_commit"):
        assert key in machine
    assert machine["cpu_count"] >= 1
    for lib in ("numpy", "opencv", "pillow", "pyarrow", "imgx"):
        assert machine["versions"][lib]
    params = result["parameters"]
    assert (params["count"], params["size"], params["repeats"]) == (6, 128, 1)
    assert params["cv2_threads_pool_workers"] == 1
    assert params["cv2_threads_in_process"] >= 1
    assert result["catalog"]["images"] == 6
    assert result["catalog"]["megapixels"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("label", ["overhead", "parallel"])
def test_comparison_numbers(result: dict, label: str) -> None:
    comparison = result["comparisons"][label]
    names = list(comparison["contenders"].values())
    assert len(names) == 2
    for name in names:
        assert len(comparison["raw_seconds"][name]) == 1
        assert all(s > 0 for s in comparison["raw_seconds"][name])
        assert comparison["median_seconds"][name] > 0
        assert comparison["images_per_second"][name] > 0
        assert comparison["megapixels_per_second"][name] > 0
        # every run processed every image and wrote both outputs per image
        assert all(d["images"] == 6 and d["files_written"] == 12 for d in comparison["details"][name])
    assert comparison["ratio"] > 0
    assert comparison["target"] == result["targets"][label]
    assert isinstance(comparison["pass"], bool)
    assert comparison["outputs_identical"] is True  # imgx and the hand-written code wrote the same bytes
    assert isinstance(result["pass"], bool)
