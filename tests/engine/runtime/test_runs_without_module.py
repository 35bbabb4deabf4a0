"""A model stage whose ONNX Runtime builds are on disk runs from them alone: no module built, no PyTorch imported.

Each check runs in a fresh interpreter, as a worker starts: the first process with an empty engine cache exports the
graphs (and imports PyTorch to do it); the next one, with the same cache, must make its sessions from the files, never
import torch, and give the same pixels. The stages are real: ``segment.product`` (U2-Netp, one graph) and
``gan.upscale`` (Real-ESRGAN, a trunk and an upsampler run in parts) and ``style.transfer`` (a style bound into the
module, keyed by its weights).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import hashlib, json, sys
from _support import default_registry, real_photo
from imgx import Item, StageContext
from imgx_gan.upscale import Upscale, UpscaleParams
from imgx_segment.product import SegmentProduct, SegmentProductParams
from imgx_style.transfer import StyleTransfer, StyleTransferParams

context = StageContext(backend="onnxruntime", cache_dir=sys.argv[1], threads=1, registry=default_registry())
report = {}
for stage_class, params, photo, plane in (
    (SegmentProduct, SegmentProductParams(), real_photo("coffee", 200), "alpha"),
    (Upscale, UpscaleParams(), real_photo("astronaut", 40), "image"),
    (StyleTransfer, StyleTransferParams(style=3), real_photo("chelsea", 96), "image"),
):
    stage = stage_class(params, context)
    (item,) = stage([Item(sku="s", source="s", image=photo)])
    pixels = getattr(item, plane)
    report[stage.name] = {
        "without_module": stage.without_module,
        "weights_freed": stage.weights_freed,
        "shape": list(pixels.shape),
        "digest": hashlib.sha256(pixels.tobytes()).hexdigest(),
    }
report["torch imported"] = "torch" in sys.modules
print(json.dumps(report))
"""


def run_fresh(cache: Path) -> dict:
    tests = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cache)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_worker_runs_from_the_cached_exports_without_pytorch_and_gives_the_same_pixels(tmp_path: Path) -> None:
    first = run_fresh(tmp_path)
    assert first["torch imported"]  # the exports needed the modules
    second = run_fresh(tmp_path)
    assert not second["torch imported"], second
    for name in ("segment.product", "gan.upscale", "style.transfer"):
        assert not first[name]["without_module"] and second[name]["without_module"], (first, second)
        assert first[name]["weights_freed"] and second[name]["weights_freed"]
        assert second[name]["shape"] == first[name]["shape"] and second[name]["digest"] == first[name]["digest"]
    assert first["gan.upscale"]["shape"] == [160, 160, 3]
