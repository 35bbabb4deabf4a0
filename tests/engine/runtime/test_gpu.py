"""CUDA and TensorRT: parity with eager FP32 and the engine cache. Skipped, with the reason, where absent."""

from __future__ import annotations

import pytest
import torch

from _support import default_registry
from imgx.runtime import BackendOptions, create_backend
from imgx.runtime.parity import compare
from imgx.runtime.tensorrt import TensorRTBackend

from .conftest import photo_tensor

GPU = BackendOptions(device="cuda")
no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() False)")
TRT_PROBLEM = TensorRTBackend.unavailable(GPU)
no_trt = pytest.mark.skipif(TRT_PROBLEM is not None, reason=f"tensorrt: {TRT_PROBLEM}")

TOLERANCE = {"fp32": (2e-3, 2e-4), "fp16": (5e-2, 5e-3), "bf16": (1e-1, 1e-2)}  # (max, mean) abs


@pytest.mark.gpu
@no_cuda
@pytest.mark.parametrize("backend", ["eager", "compile", "onnxruntime"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_backends_match_eager_fp32(backend: str, precision: str, tiny_net, tmp_path) -> None:
    options = BackendOptions(device="cuda", precision=precision, cache_dir=tmp_path, model_key="tiny")
    runner = (
        create_backend(backend, tiny_net, options, registry=default_registry())
        if backend != "onnxruntime" or precision == "fp32"
        else None
    )
    if runner is None:
        pytest.skip("onnxruntime runs fp32 only")
    x = photo_tensor(("coffee", "astronaut")).cuda()
    with torch.inference_mode():
        reference = tiny_net(x.cpu())
    runner.load()
    out = runner.infer(x)
    assert out.device.type == "cuda"
    result = compare(reference, out)
    assert result["nonfinite"] == 0
    assert result["max_abs"] <= TOLERANCE[precision][0] and result["mean_abs"] <= TOLERANCE[precision][1], result


@pytest.mark.gpu
@pytest.mark.tensorrt
@no_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_tensorrt_matches_eager_fp32_and_reuses_its_engine(precision: str, tiny_net, tmp_path) -> None:
    options = BackendOptions(device="cuda", precision=precision, cache_dir=tmp_path, model_key="tiny", max_batch=2)
    x = photo_tensor(("coffee", "astronaut"))
    with torch.inference_mode():
        reference = tiny_net(x)
    first = create_backend("tensorrt", tiny_net, options, registry=default_registry())
    first.load()
    first.warmup(tuple(x.shape))
    out = first.infer(x)
    assert len(first.built) == 1 and first.built[0].is_file()
    assert list((tmp_path / "tensorrt").glob("timing-*.cache"))
    result = compare(reference, out)
    assert result["nonfinite"] == 0
    assert result["max_abs"] <= TOLERANCE[precision][0] and result["mean_abs"] <= TOLERANCE[precision][1], result
    first.close()

    again = create_backend("tensorrt", tiny_net, options, registry=default_registry())
    again.load()
    assert torch.allclose(again.infer(x), out) and again.built == []  # loaded from disk
    again.infer(x[:1])  # a smaller batch runs on the same engine
    assert again.built == []
    again.close()
