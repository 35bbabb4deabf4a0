"""Every registered model through every backend that runs here, against eager FP32 on real photos.

The weights come through the registry (pulled into the default ``IMGX_HOME`` once, verified by sha256)."""

from __future__ import annotations

import pytest
import torch

from imgx.machine import cpu_flags, native_bf16
from imgx.models import load_module, weights_key
from imgx.registry import load_registry
from imgx.runtime import BackendOptions, create_backend
from imgx.runtime.buckets import round_up
from imgx.runtime.parity import compare

from .conftest import photo_tensor

# the bar for a port of an FP32 network; reduced precisions are held to a mean that keeps the look
MAX_ABS_FP32 = 2e-4
MEAN_ABS_REDUCED = 1e-2
INT8_MODELS = frozenset({"arbitrary_style"})  # QDQ rounding ties move one grid step between runtimes
# models whose plugin tests already build them with the ``compile`` backend at FP32 and compare with eager, on the
# modules and inputs their stages run: an ahead-of-time build takes 15-130 s on 2 cores, so each is built once
COMPILE_FP32_PROVEN = {
    "u2netp": "tests/plugins/imgx_segment/test_product.py::test_the_compile_backend_gives_the_same_masks",
    "realesrgan_x4plus": "tests/plugins/imgx_gan/test_rrdbnet.py::test_the_port_runs_on_each_cpu_backend_like_eager",
    "cyclegan_vintage": "tests/plugins/imgx_gan/test_cyclegan.py::test_compile_matches_eager_on_real_photos",
    "zero_dce": "tests/plugins/imgx_restore/test_backends.py::test_the_stage_modules_match_eager_fp32",
    "ffdnet_color": "tests/plugins/imgx_restore/test_backends.py::test_the_stage_modules_match_eager_fp32",
}


def cases() -> list[tuple[str, str, str]]:
    """Every model with a PyTorch module (those with ``build=None`` run only through ONNX Runtime on their original
    file, tested by their own plugin) on every backend."""
    registry = load_registry()
    ported = [name for name, entry in registry.models.items() if entry.obj.build is not None]
    return [(m, b, p) for m in ported for b in registry.backends for p in ("fp32", "bf16")]


@pytest.fixture(scope="module")
def modules() -> dict[str, torch.nn.Module]:
    return {}


@pytest.mark.parametrize(("model", "backend", "precision"), cases())
def test_every_model_on_every_backend_matches_eager_fp32(
    model: str, backend: str, precision: str, modules: dict, tmp_path
) -> None:
    registry = load_registry()
    spec = registry.get_model(model)
    options = BackendOptions(precision=precision, cache_dir=tmp_path, model_key=weights_key(spec), max_batch=2)
    problem = registry.get_backend(backend).unavailable(options)
    if problem:
        pytest.skip(f"{backend} {precision}: {problem}")
    if precision not in spec.precisions:
        pytest.skip(spec.precision_for(precision)[1])
    if backend == "compile" and precision == "fp32" and model in COMPILE_FP32_PROVEN:
        pytest.skip(f"{model} on compile at fp32 is built and compared with eager by {COMPILE_FP32_PROVEN[model]}")
    if model in INT8_MODELS:
        pytest.skip(
            f"{model} is an int8 network (outputs on a 1/256 grid): its parity is tested layer by layer in its plugin"
        )
    if model not in modules:
        modules[model] = load_module(spec, registry=registry)
    module = modules[model]
    # Without AMX, torch's BF16 convolutions take a slow path (a 64-channel 3x3 conv at 96 px: 1.3 s against 0.04 at
    # FP32 on an AVX2-only AMD EPYC), so Real-ESRGAN's 350 convolutions took most of an hour at the usual size: there a
    # reduced precision is checked on one 16 px crop, with the same bar.
    slow = precision != "fp32" and options.device == "cpu" and native_bf16(cpu_flags()) is None
    side = round_up(16 if slow else 96, max(1, spec.stride))
    x = photo_tensor(("coffee",) if slow else ("coffee", "chelsea"), side)
    if spec.in_channels == 1:
        x = x.mean(dim=1, keepdim=True)
    with torch.inference_mode():
        reference = module(x)
    runner = create_backend(backend, module, options, registry)
    runner.load()
    runner.warmup(tuple(x.shape))
    out = runner.infer(x)
    runner.close()
    result = compare(reference, out)
    assert out.shape == reference.shape and result["nonfinite"] == 0
    if precision == "fp32":
        assert result["max_abs"] <= MAX_ABS_FP32, result
    else:
        assert result["mean_abs"] <= MEAN_ABS_REDUCED, result
