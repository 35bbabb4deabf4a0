"""On the CPU a model stage sends large images to its backend one per call (``ModelStage.call_batch``), small ones
together. So a large image's pixels no longer depend on which other images share its batch: with the whole batch in
one call, eager's convolutions round a few pixels differently per batch size (1 level of 255 here)."""

from __future__ import annotations

import numpy as np
import pytest

from _support import default_registry, frozen, real_photo
from imgx import Item, StageContext
from imgx_style import StyleTransfer, StyleTransferParams


def make(backend: str, batch_size: int = 4) -> StyleTransfer:
    context = StageContext(device="cpu", backend=backend, batch_size=batch_size, registry=default_registry())
    return StyleTransfer(StyleTransferParams(style=7, max_side=None), context)


def items(side: int) -> list[Item]:
    names = ("coffee", "astronaut", "chelsea")
    return [Item(f"sku-{i}", "memory", frozen(real_photo(name, side)), None) for i, name in enumerate(names)]


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_a_large_image_gets_the_same_pixels_alone_and_in_a_batch(backend):
    stage = make(backend)
    batch = items(320)  # 320 x 213 and similar: over 256 x 256 pixels each
    in_batch = [item.image for item in stage(batch)]
    assert {shape[0] for shape in stage.shapes_seen} == {1}
    assert sum(stage.shapes_seen.values()) == len(batch)
    for item, image in zip(batch, in_batch, strict=True):
        np.testing.assert_array_equal(stage([item])[0].image, image)


def test_small_images_still_share_a_call():
    stage = make("eager", batch_size=3)
    stage(items(96))  # 96 x 64 and similar: three fit in one call's pixel budget
    assert stage.call_batch(64, 96) == 3
    assert max(shape[0] for shape in stage.shapes_seen) >= 2
    assert stage.call_batch(1024, 1024) == 1
