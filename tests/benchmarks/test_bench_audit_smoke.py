"""Smoke test of ``benchmarks/bench_audit.py``: a tiny catalog audited with and without the OCR rule, the captions
found by the ``text`` rule only when it runs, the JSON complete. Speed is not checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_audits_with_and_without_ocr_are_timed_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_audit.py"), "--items", "8", "--size", "1000"]
    proc = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["items"] == 8 and result["captioned"] == 2 and result["machine"]["cpu_count"] >= 1
    for kind in ("with_ocr", "without_ocr"):
        assert result["found"][kind]["images"] == 8
        assert result["images_per_second"][kind] == pytest.approx(8 / result["median_seconds"][kind])
    assert result["found"]["with_ocr"]["violations"].get("text") == 2
    assert "text" not in result["found"]["without_ocr"]["violations"]
