"""Smoke test of ``benchmarks/bench_storage.py``: a tiny catalog through local disk and through its own moto server,
every output counted, the JSON complete. Speed is not checked here (timed assertions do not belong in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_local_and_s3_runs_are_timed_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("moto.server", reason="moto is not installed (pip install -e '.[dev]' brings moto[server])")
    out = tmp_path / "storage.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_storage.py"), "--items", "12", "--size", "64"]
    command += ["--repeats", "2", "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["items"] == 12 and result["machine"]["cpu_count"] >= 1
    for kind in ("local", "s3"):
        assert len(result["seconds"][kind]) == 2 and all(s > 0 for s in result["seconds"][kind])
        assert result["items_per_second"][kind] == pytest.approx(12 / result["median_seconds"][kind])
    assert result["s3_over_local_time"] == pytest.approx(
        result["median_seconds"]["s3"] / result["median_seconds"]["local"]
    )
    assert result["server_request_ms"]["put"] > 0 and result["server_request_ms"]["get"] > 0
