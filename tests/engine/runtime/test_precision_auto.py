"""``execution.precision: auto``: BF16 per model where the CPU computes it natively and the model's measured BF16
difference is within its declared tolerance, FP32 elsewhere; said by ``imgx plan``; kept out of FP32 output hashes.

Real registry, real weights, real photos. The CPU's flags are an input of a pure function (:func:`native_bf16`), so
a CPU without BF16 is checked by handing it that CPU's flag set, not by pretending about this one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _support import default_registry, frozen, real_photo, write_recipe
from imgx import Item, StageContext
from imgx.cli import app
from imgx.machine import cpu_flags, native_bf16
from imgx.runner import RunOptions, prepare

AVX512_BF16_ONLY = frozenset({"sse4_2", "avx2", "avx512f", "avx512_bf16"})  # BF16 measured slower than FP32 there
SAPPHIRE_RAPIDS = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
WITHOUT_BF16 = frozenset({"sse4_2", "avx2", "avx512f", "avx512_vnni"})  # e.g. Cascade Lake
HERE = "bf16" if native_bf16(cpu_flags()) else "fp32"  # what auto must pick for the style network on this machine


def test_native_bf16_reads_the_flag_set() -> None:
    assert native_bf16(AVX512_BF16_ONLY) is None
    assert native_bf16(SAPPHIRE_RAPIDS) == "amx_bf16"
    assert native_bf16(WITHOUT_BF16) is None
    assert native_bf16(frozenset()) is None


def test_auto_picks_bf16_for_the_style_network_only_where_the_cpu_has_it() -> None:
    spec = default_registry().get_model("multistyle26")
    assert spec.precision_for("auto", cpu_flags=SAPPHIRE_RAPIDS)[0] == "bf16"
    for flags in (AVX512_BF16_ONLY, WITHOUT_BF16):
        precision, why = spec.precision_for("auto", cpu_flags=flags)
        assert precision == "fp32" and "no AMX BF16" in why
    assert spec.precision_for("auto")[0] == HERE  # this machine's own flags
    assert spec.precision_for("auto", device="cuda", cpu_flags=SAPPHIRE_RAPIDS)[0] == "fp32"  # CUDA: unchanged


@pytest.mark.parametrize("model", ["u2netp", "realesrgan_x4plus"])
def test_auto_keeps_fp32_for_a_model_without_a_tolerance(model: str) -> None:
    """u2netp: its mask pixels flip at BF16; Real-ESRGAN: BF16 kept parity but ran slower than FP32 on the CPU."""
    spec = default_registry().get_model(model)
    precision, why = spec.precision_for("auto", cpu_flags=SAPPHIRE_RAPIDS)
    assert precision == "fp32" and "declares no BF16 tolerance" in why


def test_every_declared_tolerance_covers_its_measured_parity() -> None:
    """A model that declares a tolerance has a measured BF16 parity within it (else auto would silently stay at
    FP32 for it, or, worse, the record would be missing)."""
    declared = [e.obj for e in default_registry().models.values() if e.obj.tolerance is not None]
    assert {spec.name for spec in declared} >= {"multistyle26"}
    for spec in declared:
        assert "bf16" in spec.precisions and spec.parity["bf16"] <= spec.tolerance, spec.name


def test_a_style_stage_at_auto_runs_at_what_auto_picks_and_stays_within_the_tolerance() -> None:
    """The real style.transfer stage at ``auto`` on a real photo: it runs at the precision auto picks on this CPU,
    and its pixels differ from the FP32 stage's by no more than the network's declared tolerance (8-bit output)."""
    from imgx_style import StyleTransfer, StyleTransferParams

    registry = default_registry()
    photo = frozen(real_photo("chelsea", long_side=256))
    outs = {}
    for precision in ("fp32", "auto"):
        context = StageContext(backend="eager", precision=precision, device="cpu", registry=registry)
        stage = StyleTransfer(StyleTransferParams(style=7), context)
        assert stage.backend.options.precision == (HERE if precision == "auto" else "fp32")
        if precision == "auto":
            assert stage.precision_reason.startswith(f"auto: {HERE}")
        (out,) = stage([Item("chelsea", "memory", photo, None)])
        outs[precision] = out.image.astype(np.float64) / 255
        stage.close()
    tolerance = registry.get_model("multistyle26").tolerance
    assert np.abs(outs["auto"] - outs["fp32"]).mean() <= tolerance


def test_a_segment_stage_at_auto_runs_u2netp_at_fp32() -> None:
    from imgx_segment import SegmentProduct, SegmentProductParams

    context = StageContext(backend="eager", precision="auto", device="cpu", registry=default_registry())
    stage = SegmentProduct(SegmentProductParams(), context)
    assert stage.backend.options.precision == "fp32"
    assert "u2netp declares no BF16 tolerance" in stage.precision_reason or "no AMX BF16" in stage.precision_reason
    stage.close()


def auto_recipe(tmp_path: Path, precision: str) -> Path:
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    from PIL import Image

    Image.fromarray(real_photo("astronaut", long_side=320)).save(catalog / "a.jpg")
    return write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "precision-plan",
            "input": {"path": str(catalog)},
            "output": {"dir": str(tmp_path / "out")},
            "execution": {"device": "cpu", "backend": "auto", "precision": precision},
            "stages": [
                {"id": "s7", "uses": "style.transfer", "with": {"style": 7}},
                {"id": "mask", "uses": "segment.product"},
            ],
        },
        name=f"recipe-{precision}.yaml",
    )


def test_plan_says_per_model_node_what_auto_picked_and_why(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["plan", str(auto_recipe(tmp_path, "auto"))])
    assert result.exit_code == 0, result.output
    assert f"precision of s7: auto: {HERE}" in result.output
    assert "precision of mask: auto: fp32" in result.output
    assert ("eager bf16 on cpu" if HERE == "bf16" else "onnxruntime fp32 on cpu") in result.output
    assert not (tmp_path / "out").exists()


def test_auto_moves_the_hash_of_model_outputs_and_fp32_moves_none(tmp_path: Path) -> None:
    hashes = {p: prepare(auto_recipe(tmp_path, p), RunOptions())[2].output_hashes for p in ("fp32", "auto", "bf16")}
    assert hashes["fp32"]["s7"] != hashes["auto"]["s7"] != hashes["bf16"]["s7"]
    assert hashes["fp32"]["mask"] != hashes["auto"]["mask"]


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_the_recipe_accepts_auto(tmp_path: Path, precision: str) -> None:
    plan = prepare(auto_recipe(tmp_path, precision), RunOptions())[2]
    assert plan.settings.precision == precision
