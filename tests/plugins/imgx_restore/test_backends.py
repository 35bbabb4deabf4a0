"""The modules the stages run (FFDNet's ``SigmaPlane`` with two noise levels in one batch, ``ZeroDCE``) on the
``eager``, ``onnxruntime`` and ``compile`` backends against eager FP32 on real photos; TensorRT where it runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _support import default_registry, real_photo
from imgx.models import load_module
from imgx.runtime import BackendOptions, create_backend
from imgx.runtime.parity import compare
from imgx_restore.network_ffdnet import SigmaPlane

from .conftest import add_noise, darken

MAX_ABS = 1e-4  # FP32 backends reorder sums only
BACKENDS = [
    "eager",
    "onnxruntime",
    pytest.param("compile", marks=pytest.mark.slow),  # Inductor builds for ~15 s on 2 cores
    pytest.param("tensorrt", marks=[pytest.mark.gpu, pytest.mark.tensorrt]),
]


def photos(degrade, names: tuple[str, ...] = ("coffee", "astronaut")) -> torch.Tensor:
    """Real photos, 64 x 96 crops, degraded (noise / darkness), as ``(B, 3, 64, 96)`` float32 in 0..1."""
    arrays = [degrade(real_photo(name, 128)[:64, :96], i) for i, name in enumerate(names)]
    return torch.from_numpy(np.stack([a.transpose(2, 0, 1) for a in arrays]).astype(np.float32) / 255.0)


def module_and_input(model: str) -> tuple[torch.nn.Module, torch.Tensor]:
    if model == "ffdnet_color":
        x = photos(lambda image, i: add_noise(image, (15, 40)[i], seed=i))
        sigma = torch.tensor([15.0, 40.0]).reshape(2, 1, 1, 1) / 255.0
        return SigmaPlane(load_module(model, registry=default_registry()).net).eval(), torch.cat(
            [x, sigma.expand(2, 1, 64, 96)], dim=1
        )
    return load_module(model, registry=default_registry()), photos(lambda image, i: darken(image))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["ffdnet_color", "zero_dce"])
def test_the_stage_modules_match_eager_fp32(model: str, backend: str, tmp_path: Path) -> None:
    device = "cuda" if backend == "tensorrt" else "cpu"
    options = BackendOptions(device=device, cache_dir=tmp_path, model_key=f"test-{model}", max_batch=2)
    from imgx.registry import load_registry

    problem = load_registry().get_backend(backend).unavailable(options)
    if problem:
        pytest.skip(f"{backend}: {problem}")
    module, x = module_and_input(model)
    with torch.inference_mode():
        reference = module(x)
    runner = create_backend(backend, module, options, registry=default_registry())
    runner.load()
    runner.warmup(tuple(x.shape))
    out = runner.infer(x.to(device)).cpu()
    runner.close()
    result = compare(reference, out)
    assert out.shape == reference.shape == (2, 3, 64, 96) and result["nonfinite"] == 0
    assert result["max_abs"] <= (MAX_ABS if backend != "tensorrt" else 2e-3), result
