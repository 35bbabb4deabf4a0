"""Shape buckets: every image fits its bucket, buckets are multiples of the stride, and a mixed catalog of real
photo sizes runs at a handful of shapes."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from _support import REAL_PHOTOS, load_photo
from imgx.runtime.buckets import bucket_shape, crop, pad_to

SIDES = (256, 512, 768, 1024, 1536, 2048)


def test_a_photo_runs_at_the_next_canonical_side_and_a_quarter_step_short_side() -> None:
    assert bucket_shape(750, 1000, sides=SIDES, multiple=4) == (768, 1024)
    assert bucket_shape(1000, 750, sides=SIDES, multiple=4) == (1024, 768)
    assert bucket_shape(700, 980, sides=SIDES, multiple=4) == (768, 1024)
    assert bucket_shape(1024, 1024, sides=SIDES, multiple=4) == (1024, 1024)
    assert bucket_shape(513, 100, sides=SIDES, multiple=4) == (768, 192)
    # beyond the largest side: rounded up to a quarter of it
    assert bucket_shape(3000, 2000, sides=SIDES, multiple=4) == (3072, 2304)


def test_every_shape_of_real_photos_and_random_sizes_holds_the_image_and_is_a_multiple() -> None:
    rng = random.Random(3)
    sizes = [load_photo(name).shape[:2] for name in REAL_PHOTOS]
    sizes += [(rng.randint(1, 2500), rng.randint(1, 2500)) for _ in range(2000)]
    for multiple in (1, 4, 8, 32):
        for h, w in sizes:
            H, W = bucket_shape(h, w, sides=SIDES, multiple=multiple)
            assert h <= H and w <= W and H % multiple == 0 and W % multiple == 0
            assert (max(H, W) in SIDES) or max(h, w) > max(SIDES)
            assert (H >= W) == (h >= w) or H == W


def test_a_mixed_catalog_gives_a_handful_of_shapes() -> None:
    """500 product photos between 600 and 1024 px on the long side, portrait and landscape, aspect 1:1 to 4:3."""
    rng = random.Random(7)
    shapes = set()
    for _ in range(500):
        long = rng.randint(600, 1024)
        short = rng.randint(round(long * 0.75), long)
        h, w = (long, short) if rng.random() < 0.5 else (short, long)
        shapes.add(bucket_shape(h, w, sides=SIDES, multiple=4))
    assert 2 <= len(shapes) <= 6, shapes


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected both sides >= 1"):
        bucket_shape(0, 10, sides=SIDES, multiple=4)
    with pytest.raises(ValueError, match="positive sides"):
        bucket_shape(10, 10, sides=(), multiple=4)


def test_pad_then_crop_gives_the_image_back_and_the_pad_mirrors_it() -> None:
    image = torch.from_numpy(load_photo("coffee")[:101, :77].astype(np.float32).transpose(2, 0, 1) / 255)
    padded = pad_to(image, 128, 96)
    assert padded.shape == (3, 128, 96)
    assert torch.equal(crop(padded, 101, 77), image)
    # reflect: row 101 mirrors row 99, column 77 mirrors column 75
    assert torch.equal(padded[:, 101, :77], image[:, 99]) and torch.equal(padded[:, :101, 77], image[:, :, 75])


def test_a_pad_wider_than_the_image_still_reaches_the_target() -> None:
    image = torch.rand(2, 3, 20, 5)
    padded = pad_to(image, 256, 64)
    assert padded.shape == (2, 3, 256, 64) and torch.equal(crop(padded, 20, 5), image)
    assert torch.isfinite(padded).all()
    assert pad_to(torch.rand(1, 3, 1, 1), 4, 4).shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="at least as large"):
        pad_to(image, 10, 64)
