"""Smoke test of ``benchmarks/bench_encode.py`` on small photos: every installed encoder timed per format, each PNG
encoder's pixels identical to the photo (the script asserts it), the JSON complete. Speed is not checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_encoders_are_timed_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "encode.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_encode.py"), "--size", "96", "--repeats", "1"]
    proc = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert set(result["formats"]) == {"png", "jpeg", "webp"} and result["machine"]["cpu_count"] >= 1
    png = result["formats"]["png"]
    assert {"pillow", "opencv", "fpng"} <= set(png["ms_per_image"]) and all(v > 0 for v in png["ms_per_image"].values())
    assert set(png["max_pixel_difference_from_pillow"].values()) == {0}
    for fmt in ("jpeg", "webp"):
        assert {"pillow", "opencv"} <= set(result["formats"][fmt]["ms_per_image"])
        assert result["formats"][fmt]["fastest"] in result["formats"][fmt]["ms_per_image"]
