"""Smoke test of ``benchmarks/bench_segment.py``: the hand-written ONNX Runtime loop and ``imgx run`` both run on a
tiny catalog of real-photo crops (imgx with the cut-out, at both PNG settings), the JSON is complete and the masks are
the same. Speed is not checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "bench_segment.py"


@pytest.mark.slow
def test_bench_segment_runs_both_contenders_and_compares_their_masks(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--count", "3", "--size", "160", "--repeats", "1"]
    command += [
        "--backends",
        "onnxruntime",
        "--png",
        "fast,6",
        "--cutout",
        "--work-dir",
        str(tmp_path),
        "--out",
        str(out),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["parameters"]["count"] == 3 and result["machine"]["cpu_count"] >= 1
    # matting off: the loop writes rembg's plain mask, and the masks are compared
    assert result["parameters"]["stages"] == {"segment.product": {"matting": "none"}, "segment.cutout": {}}
    loop, fast, zlib6 = result["configs"]
    assert loop["kind"] == "loop" and (fast["png"], zlib6["png"]) == ("fast", 6)
    for config in (loop, fast, zlib6):
        assert len(config["raw_seconds"]) == 1 and config["median_seconds"] > 0 and config["masks_per_second"] > 0
    for imgx in (fast, zlib6):
        assert imgx["backend"] == "onnxruntime" and imgx["ratio_vs_loop"] > 0
        assert imgx["mask_max_abs_diff_vs_loop"] <= 1 and imgx["images_with_mask_diff_over_1"] == []
    assert not list(tmp_path.glob("bench-segment-runs-*")), "run folders must be removed"
