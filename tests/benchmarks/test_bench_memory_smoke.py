"""Smoke test of ``benchmarks/bench_memory.py``: ``recipes/demo.yaml`` through the real CLI over two small real
photos, in-process (``--workers 1``) and with a pool of two, plus the per-step breakdown; the JSON complete, every
process's peak sampled (> 0), the pool's workers found as their own processes. The sizes of the peaks are not
checked here (they are measurements, in ``benchmarks/results/``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_peaks_are_sampled_per_process(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_memory.py"), "--runs", "demo:photos-192:1"]
    command += ["demo:photos-192:2", "--count", "2", "--breakdown", "--work-dir", str(tmp_path), "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["machine"]["cpu_count"] >= 1 and len(result["machine"]["load_average"]) == 3
    inline, pool = result["runs"]
    assert inline["workers_inline"] and inline["worker_peak_rss_mib"] == inline["main_peak_rss_mib"] > 0
    workers = [p for p in pool["processes"] if p["role"] == "worker"]
    assert not pool["workers_inline"] and len(workers) == 2, pool["processes"]
    assert all(p["peak_rss_mib"] > 0 for p in pool["processes"]) and pool["main_peak_rss_mib"] > 0
    # the same pixels whichever way the run was split: two outputs per photo, identical bytes
    assert len(inline["outputs_sha256"]) == 4 and inline["outputs_sha256"] == pool["outputs_sha256"]
    steps = [row["step"] for row in inline["breakdown"]]
    assert steps[:4] == ["read+decode", "enhanced (color.enhance)", "square (geometry.fit)", "encode+write"]
    assert all(row["process_peak_rss_mib"] > 0 for row in inline["breakdown"])
