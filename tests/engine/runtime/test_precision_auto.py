"""``execution.precision: auto``: BF16 per model where the CPU computes it natively and the model's measured BF16
difference is within its declared tolerance, FP32 elsewhere; said by ``imgx plan``; kept out of FP32 output hashes.

Real registry, real weights, real photos. The CPU's flags are an input of a pure function (:func:`native_bf16`), so
a CPU without BF16 is checked by handing it that CPU's flag set, not by pretending about this one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
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


def at_fp32_and_auto(make, photo, registry) -> tuple[dict, dict]:
    """A real model stage (``make(context)``) on eager at precision fp32 and at auto, run on ``photo``: its output
    (0..1 float64) and ``(precision run, reason)`` per precision; every part of the stage runs at the main one's."""
    outs, reasons = {}, {}
    for precision in ("fp32", "auto"):
        stage = make(StageContext(backend="eager", precision=precision, device="cpu", registry=registry))
        try:
            reasons[precision] = (stage.backend.options.precision, stage.precision_reason)
            assert {part.options.precision for part in stage.parts.values()} <= {stage.backend.options.precision}
            (out,) = stage([Item("chelsea", "memory", photo, None)])
            outs[precision] = out.image.astype(np.float64) / 255
        finally:
            stage.close()
    assert reasons["fp32"][0] == "fp32"
    return outs, reasons


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


def test_auto_keeps_fp32_for_a_model_without_a_tolerance() -> None:
    """u2netp: its mask pixels flip at BF16."""
    spec = default_registry().get_model("u2netp")
    precision, why = spec.precision_for("auto", cpu_flags=SAPPHIRE_RAPIDS)
    assert precision == "fp32" and "declares no BF16 tolerance" in why


def test_auto_considers_bf16_for_real_esrgan_on_amx_only() -> None:
    """Real-ESRGAN's BF16 keeps its 4x output within one 8-bit level; it ran 2.75x eager FP32 on an AMX CPU and
    slower than FP32 without AMX, so auto considers BF16 on AMX CPUs only (the stage then checks and races it)."""
    spec = default_registry().get_model("realesrgan_x4plus")
    assert spec.precision_for("auto", cpu_flags=SAPPHIRE_RAPIDS)[0] == "bf16"
    for flags in (AVX512_BF16_ONLY, WITHOUT_BF16):
        assert spec.precision_for("auto", cpu_flags=flags)[0] == "fp32"
    assert spec.probe_sides and max(spec.probe_sides) <= 128


def test_an_upscale_stage_at_auto_checks_the_whole_network_and_keeps_its_output_within_the_tolerance() -> None:
    """The real gan.upscale stage at ``auto`` on a real photo. It runs Real-ESRGAN in two parts (trunk, then the 4x
    upsampler on strips); its BF16 is held to the tolerance on the whole network's 4x output (the trunk's features
    are not what the tolerance is declared for), on the model's small probe photos, then raced on the trunk. Where it
    runs BF16 that is said; either way the stage's pixels stay within the tolerance of the FP32 stage's."""
    from imgx_gan import Upscale, UpscaleParams

    registry = default_registry()
    photo = frozen(real_photo("chelsea", long_side=96))
    outs, reasons = at_fp32_and_auto(lambda context: Upscale(UpscaleParams(scale=4), context), photo, registry)
    ran, why = reasons["auto"]
    if HERE == "fp32":
        assert ran == "fp32" and "no AMX BF16" in why
    elif ran == "bf16":
        assert why.startswith("auto: bf16") and "BF16 checked on this CPU" in why and "per 128 px photo" in why
    else:
        assert why.startswith(("auto: fp32: gan.upscale failed its BF16 check", "auto: fp32: gan.upscale's BF16 is"))
    assert outs["auto"].shape == (4 * photo.shape[0], 4 * photo.shape[1], 3)
    assert np.abs(outs["auto"] - outs["fp32"]).mean() <= registry.get_model("realesrgan_x4plus").tolerance


def test_auto_with_a_named_fp32_only_backend_runs_fp32_there() -> None:
    """``precision: auto`` with ``backend: onnxruntime`` (FP32 graphs only) on an AMX CPU: the style network runs at
    FP32 on ONNX Runtime and says why, instead of the stage failing to start; a backend that runs BF16 keeps it, and
    BF16 asked for by name is not changed (the backend then refuses it, naming the problem)."""
    from imgx.runtime.factory import model_precision

    registry = default_registry()
    spec = registry.get_model("multistyle26")
    precision, why = model_precision("onnxruntime", spec, "auto", "cpu", registry, SAPPHIRE_RAPIDS)
    assert precision == "fp32"
    assert why.startswith("auto: fp32: the recipe's backend onnxruntime cannot run bf16 here") and "FP32" in why
    assert model_precision("eager", spec, "auto", "cpu", registry, SAPPHIRE_RAPIDS)[0] == "bf16"
    assert model_precision("auto", spec, "auto", "cpu", registry, SAPPHIRE_RAPIDS)[0] == "bf16"
    assert model_precision("onnxruntime", spec, "bf16", "cpu", registry, SAPPHIRE_RAPIDS) == ("bf16", "")
    assert model_precision("onnxruntime", spec, "auto", "cpu", registry, WITHOUT_BF16)[0] == "fp32"


def test_a_style_stage_on_onnxruntime_at_auto_starts_on_this_machine() -> None:
    """The real stage, this CPU: with an AMX CPU auto would pick BF16, which ONNX Runtime cannot run (the stage once
    failed to start there); on any CPU it starts and runs FP32 on ONNX Runtime."""
    from imgx_style import StyleTransfer, StyleTransferParams

    context = StageContext(backend="onnxruntime", precision="auto", device="cpu", registry=default_registry())
    stage = StyleTransfer(StyleTransferParams(style=7), context)
    try:
        assert stage.choice.name == "onnxruntime" and stage.backend.options.precision == "fp32"
        assert stage.precision_reason.startswith("auto: fp32")
        (out,) = stage([Item("chelsea", "memory", frozen(real_photo("chelsea", long_side=128)), None)])
        assert out.image.shape[2] == 3 and out.image.std() > 5
    finally:
        stage.close()


def test_every_declared_tolerance_covers_its_measured_parity() -> None:
    """A model that declares a tolerance has a measured BF16 parity within it (else auto would silently stay at
    FP32 for it, or, worse, the record would be missing)."""
    declared = [e.obj for e in default_registry().models.values() if e.obj.tolerance is not None]
    assert {spec.name for spec in declared} >= {"multistyle26", "realesrgan_x4plus"}
    for spec in declared:
        assert "bf16" in spec.precisions and spec.parity["bf16"] <= spec.tolerance, spec.name


def test_a_style_stage_at_auto_runs_bf16_only_where_its_check_passed_and_stays_within_the_tolerance() -> None:
    """The real style.transfer stage at ``auto`` on a real photo. Where the CPU lists AMX BF16, the stage checks its
    own module at BF16 before trusting it (a Firecracker VM listing AMX returned NaN and unrepeatable pixels there):
    it runs BF16 only with that check passed and said; else FP32, saying why. Either way its pixels differ from the
    FP32 stage's by no more than the network's declared tolerance (8-bit output), and are finite."""
    from imgx_style import StyleTransfer, StyleTransferParams

    registry = default_registry()
    photo = frozen(real_photo("chelsea", long_side=256))
    params = StyleTransferParams(style=7)
    outs, reasons = at_fp32_and_auto(lambda context: StyleTransfer(params, context), photo, registry)
    ran, why = reasons["auto"]
    if HERE == "fp32":
        assert ran == "fp32" and "no AMX BF16" in why
    elif ran == "bf16":
        assert why.startswith("auto: bf16") and "BF16 checked on this CPU" in why
    else:  # BF16 is wrong on this CPU, or right and not faster than FP32 here
        assert why.startswith(
            (
                "auto: fp32: style.transfer failed its BF16 check on this CPU: BF16 ",
                "auto: fp32: style.transfer's BF16 is",
            )
        )
    tolerance = registry.get_model("multistyle26").tolerance
    assert np.abs(outs["auto"] - outs["fp32"]).mean() <= tolerance


class Cancelling(torch.nn.Module):
    """A real network whose result moves at BF16: ``(x + 256) - 256`` keeps no fraction of ``x`` in BF16 (8 bits of
    mantissa: steps of 2 at 256), so its output there is 0 or 2 where FP32 gives ``x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 256.0) - 256.0


def test_the_bf16_check_fails_a_network_whose_result_moves_and_passes_one_that_keeps_it(tmp_path, monkeypatch) -> None:
    """:func:`bf16_check` on real modules at real BF16 on this CPU (no flags involved): the cancelling network
    fails on its difference; a 3x3 blur keeps within 1/255 and passes (where this CPU's BF16 kernels compute; the
    verdict is cached and read back, not measured twice)."""
    from imgx.runtime.bf16_check import bf16_check

    monkeypatch.setenv("IMGX_HOME", str(tmp_path))
    moved = bf16_check(Cancelling(), "cancelling", 1 / 255)
    assert not moved.ok and "exceeds the tolerance" in moved.reason
    blur = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False, groups=3)
    with torch.no_grad():
        blur.weight.fill_(1 / 9)
    kept = bf16_check(blur, "blur", 1 / 255)
    assert kept.ok, kept.reason
    saved = sorted((tmp_path / "engines" / "checks").glob("bf16-*.json"))
    assert len(saved) == 2
    saved[0].write_text('{"ok": true, "reason": "from the cache"}')  # a second call reads the verdict back
    assert {bf16_check(Cancelling(), "cancelling", 1 / 255).reason, bf16_check(blur, "blur", 1 / 255).reason} >= {
        "from the cache"
    }


class Repeated(torch.nn.Module):
    """A real network that does ``times`` 3x3 convolutions of 16 channels: the work of a race's contenders."""

    def __init__(self, times: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.body = torch.nn.Sequential(*(torch.nn.Conv2d(16, 16, 3, padding=1) for _ in range(times)))
        self.last = torch.nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.body(self.first(x)))


def test_the_race_picks_bf16_only_when_it_is_clearly_faster(tmp_path, monkeypatch) -> None:
    """:func:`bf16_race` with real eager backends on a real 256 px photo. Its rule, the BF16 contender wins only when
    it is ``FASTER_BY`` times as fast, is proven both ways with contenders of known relative cost (1 layer of work
    against 24) on any CPU; then BF16 against FP32: where the CPU has BF16 instructions a BF16 contender with a 24th
    of the work wins, and where it has none (PyTorch emulates BF16 there: 38x slower per layer than FP32 on a 2-core
    AVX2 EPYC) BF16 loses to FP32 on the same network, so ``auto`` never trades exactness for a slowdown."""
    from imgx.machine import cpu_flags
    from imgx.runtime.base import BackendOptions
    from imgx.runtime.bf16_check import bf16_race
    from imgx.runtime.eager import EagerBackend

    monkeypatch.setenv("IMGX_HOME", str(tmp_path))

    def race(key: str, bf16: tuple[int, str], fp32: tuple[int, str]):
        contenders = (EagerBackend(Repeated(n).eval(), BackendOptions(precision=p)) for n, p in (bf16, fp32))
        return bf16_race(key, *contenders, side=256)

    won = race("light against heavy", (1, "fp32"), (24, "fp32"))
    assert won.ok and won.reason.startswith("BF16 on eager ") and "per 256 px photo here" in won.reason
    assert not race("heavy against light", (24, "fp32"), (1, "fp32")).ok
    if any("bf16" in flag for flag in cpu_flags()):
        assert race("bf16 light against heavy", (1, "bf16"), (24, "fp32")).ok
    else:
        assert not race("emulated bf16 against fp32", (1, "bf16"), (1, "fp32")).ok
    assert len(list((tmp_path / "engines" / "checks").glob("race-*.json"))) == 3


def test_judge_names_what_failed() -> None:
    from imgx.runtime.bf16_check import judge

    ref = [np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 1, 8, 8)]
    close = [ref[0] + 1e-3]
    holed = [close[0].copy()]
    holed[0][0, 0, 3, 3] = np.nan
    assert judge(ref, close, close, 1 / 255).ok
    assert judge(ref, holed, close, 1 / 255).reason == "BF16 returned 1 NaN/Inf values"
    assert judge(ref, close, [ref[0] + 2e-3], 1 / 255).reason.startswith("BF16 gave different outputs")
    assert "exceeds the tolerance" in judge(ref, [ref[0] + 0.01], [ref[0] + 0.01], 1 / 255).reason


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
    monkeypatch.setenv("IMGX_HOME", str(tmp_path / "home"))  # an engine cache without compile's packages
    result = CliRunner().invoke(app, ["plan", str(auto_recipe(tmp_path, "auto"))])
    assert result.exit_code == 0, result.output
    assert f"precision of s7: auto: {HERE}" in result.output
    assert "precision of mask: auto: fp32" in result.output
    assert ("eager bf16 on cpu" if HERE == "bf16" else "onnxruntime fp32 on cpu") in result.output
    assert ("checks its module at BF16 on this CPU when it starts" in result.output) == (HERE == "bf16")
    assert not (tmp_path / "out").exists()


def test_auto_moves_the_hash_of_model_outputs_and_fp32_moves_none(tmp_path: Path) -> None:
    hashes = {p: prepare(auto_recipe(tmp_path, p), RunOptions())[2].output_hashes for p in ("fp32", "auto", "bf16")}
    assert hashes["fp32"]["s7"] != hashes["auto"]["s7"] != hashes["bf16"]["s7"]
    assert hashes["fp32"]["mask"] != hashes["auto"]["mask"]


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_the_recipe_accepts_auto(tmp_path: Path, precision: str) -> None:
    plan = prepare(auto_recipe(tmp_path, precision), RunOptions())[2]
    assert plan.settings.precision == precision
