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
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _support import real_photo
from imgx.machine import cuda_possible

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


@pytest.mark.slow
@pytest.mark.skipif(cuda_possible(), reason="this machine may have a CUDA GPU: device auto asks torch there")
def test_a_one_worker_run_whose_models_run_from_their_exports_never_imports_torch(tmp_path: Path) -> None:
    """Through the CLI, as a user runs it: ``device`` and ``backend`` left at ``auto``, one worker (in the CLI's own
    process). The first run may export U2-Netp; the second must not import torch at all (``-X importtime`` lists
    every module the process imported), and writes the same files."""
    from PIL import Image

    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name in ("coffee", "chelsea"):
        Image.fromarray(real_photo(name, 320)).save(catalog / f"{name}.jpg", quality=92)
    recipe = tmp_path / "recipe.yaml"
    stages = [
        {"id": "masked", "uses": "segment.product"},
        {"id": "cutout", "uses": "segment.cutout", "needs": ["masked"]},
    ]
    document = {
        "version": 1,
        "name": "no-torch",
        "input": {"path": str(catalog)},
        "output": {"dir": "out", "format": "png", "naming": "{sku}.{ext}"},
        "execution": {"workers": 1},
        "stages": stages,
    }
    recipe.write_text(yaml.safe_dump(document, sort_keys=False))
    written = []
    for _ in range(2):
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "imgx", "run", str(recipe)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        written.append({p.name: p.read_bytes() for p in sorted((tmp_path / "out").glob("*.png"))})
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported and "imgx_segment.product" in imported  # the listing is the run's
    assert not any(name == "torch" or name.startswith("torch.") for name in imported), sorted(imported)[:20]
    assert sorted(written[1]) == ["chelsea.png", "coffee.png"] and written[1] == written[0]
