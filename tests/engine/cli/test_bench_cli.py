"""``imgx bench`` as a user runs it: the real multistyle26 model (weights from the registry's cache), tiny settings,
JSON and chart written; a backend that cannot run gets a reason and no number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgx.registry import load_registry

NUMBERS = (
    "median_seconds",
    "p90_seconds",
    "images_per_second",
    "speedup_vs_eager_fp32",
    "build_seconds",
    "parity",
    "cached_start_seconds",
)


@pytest.fixture(scope="module")
def style_model() -> str:
    if "multistyle26" not in load_registry().models:
        pytest.fail("model multistyle26 is not registered (the imgx_style plugin should register it)")
    return "multistyle26"


def test_bench_writes_rows_with_numbers_and_reasons(imgx, style_model: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = imgx(
        "bench", "--model", style_model, "--backends", "onnxruntime,tensorrt", "--sizes", "64", "--batch", "2",
        "--precision", "fp32,bf16", "--repeats", "3", "--warmup", "1", "--device", "cpu", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["kind"] == "imgx-bench" and report["model"]["name"] == "multistyle26"
    machine = report["machine"]
    assert machine["cpu_model"] and machine["cpus_usable"] >= 1 and machine["versions"]["torch"]
    assert machine["gpu"] is None and report["parameters"]["device"] == "cpu"

    rows = {(r["backend"], r["precision"]): r for r in report["rows"]}
    assert set(rows) == {("eager", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "bf16"), ("tensorrt", "fp32"),
                         ("tensorrt", "bf16")}  # fmt: skip
    for key in (("eager", "fp32"), ("onnxruntime", "fp32")):
        row = rows[key]
        assert row["status"] == "ok" and row["size"] == 64 and row["batch"] == 2
        assert len(row["runs_seconds"]) == 3 and row["median_seconds"] > 0
        assert row["p90_seconds"] >= row["median_seconds"]
        assert row["images_per_second"] == pytest.approx(2 / row["median_seconds"], rel=1e-3)
        assert row["parity"]["nonfinite"] == 0
    eager, ort = rows[("eager", "fp32")], rows[("onnxruntime", "fp32")]
    assert eager["reference"] and eager["speedup_vs_eager_fp32"] == 1.0 and eager["parity"]["max_abs"] == 0.0
    assert ort["speedup_vs_eager_fp32"] == pytest.approx(eager["median_seconds"] / ort["median_seconds"], rel=1e-2)
    assert 0 < ort["parity"]["max_abs"] < 2e-4
    assert 0 < ort["cached_start_seconds"] < 60 and eager["cached_start_seconds"] is None  # eager keeps nothing

    for key in (("onnxruntime", "bf16"), ("tensorrt", "fp32"), ("tensorrt", "bf16")):
        row = rows[key]
        assert row["status"] == "unavailable" and row["reason"] and not any(k in row for k in NUMBERS)
    assert "FP32 graph only" in rows[("onnxruntime", "bf16")]["reason"]
    assert "imgx[tensorrt]" in rows[("tensorrt", "fp32")]["reason"] or "CUDA" in rows[("tensorrt", "fp32")]["reason"]

    assert "onnxruntime bf16: unavailable: onnxruntime runs the exported FP32 graph only" in result.output
    assert f"wrote {out}" in result.output
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_refuses_unknown_names_and_bad_numbers(imgx, style_model: str, tmp_path: Path) -> None:
    result = imgx("bench", "--model", style_model, "--backends", "eagre", "--out", tmp_path / "x.json")
    assert result.exit_code == 1 and "Did you mean 'eager'" in result.output
    result = imgx("bench", "--model", "multistyle62", "--out", tmp_path / "x.json")
    assert result.exit_code == 1 and "Did you mean 'multistyle26'" in result.output
    result = imgx("bench", "--model", style_model, "--sizes", "big", "--out", tmp_path / "x.json")
    assert result.exit_code == 1 and "got --sizes 'big'" in result.output
    result = imgx("bench", "--model", style_model, "--precision", "fp8", "--out", tmp_path / "x.json")
    assert result.exit_code == 1 and "got precision 'fp8'" in result.output
    assert not (tmp_path / "x.json").exists()
