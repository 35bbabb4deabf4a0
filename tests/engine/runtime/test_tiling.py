"""Tiled inference: the tiles cover the image with the promised overlap and one shape, and blending them back gives the
untiled result for pointwise and scaling functions, and nearly it for a local filter on a real photo."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from _support import real_photo
from imgx.runtime import run_tiled, tile_boxes
from imgx.runtime.tiling import tile_starts


def as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (64, 64), (65, 200), (257, 31), (500, 333)])
@pytest.mark.parametrize(("tile", "overlap"), [(32, 0), (64, 8), (100, 33)])
def test_tiles_cover_the_image_with_one_shape_and_the_overlap(h: int, w: int, tile: int, overlap: int) -> None:
    boxes = tile_boxes(h, w, tile, overlap)
    covered = np.zeros((h, w), np.int32)
    for y0, y1, x0, x1 in boxes:
        assert (y1 - y0, x1 - x0) == (min(tile, h), min(tile, w))
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    for length in (h, w):
        starts = tile_starts(length, tile, overlap)
        size = min(tile, length)
        assert starts[0] == 0 and starts[-1] + size == length
        assert all(b - a <= size - overlap for a, b in itertools.pairwise(starts)), starts


def test_bad_tiling_parameters_say_what_is_expected() -> None:
    with pytest.raises(ValueError, match="expected overlap <= tile - align"):
        tile_boxes(100, 100, 16, 16)
    with pytest.raises(ValueError, match="expected tile >= 1"):
        tile_boxes(100, 100, 0, 0)


def test_a_pointwise_function_is_unchanged_by_tiling_and_calls_are_chunked() -> None:
    image = as_float(real_photo("coffee", 150))
    calls: list[int] = []

    def infer(tiles: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(tiles))
        return [np.sqrt(t) * 0.5 for t in tiles]

    (out,) = run_tiled([image], infer, tile=40, overlap=8, chunk=5)
    np.testing.assert_allclose(out, np.sqrt(image) * 0.5, atol=1e-6)
    boxes = tile_boxes(*image.shape[:2], 40, 8)
    assert sum(calls) == len(boxes) and max(calls) == 5 and len(boxes) > 5


def test_a_scaling_function_is_unchanged_by_tiling_across_several_images() -> None:
    images = [as_float(real_photo("astronaut", 70)), as_float(real_photo("rocket", 45))]

    def upscale3(tiles: list[np.ndarray]) -> list[np.ndarray]:
        return [t.repeat(3, axis=0).repeat(3, axis=1) for t in tiles]

    outs = run_tiled(images, upscale3, tile=24, overlap=6, scale=3)
    for image, out in zip(images, outs, strict=True):
        assert out.shape == (image.shape[0] * 3, image.shape[1] * 3, 3)
        np.testing.assert_allclose(out, upscale3([image])[0], atol=1e-6)


def test_a_local_filter_tiled_with_enough_overlap_matches_the_untiled_one_on_a_real_photo() -> None:
    image = as_float(real_photo("chelsea", 160))

    def blur(tiles: list[np.ndarray]) -> list[np.ndarray]:
        return [cv2.GaussianBlur(t, (7, 7), 2.0, borderType=cv2.BORDER_REFLECT) for t in tiles]

    whole = blur([image])[0]
    (tiled,) = run_tiled([image], blur, tile=48, overlap=16)
    (no_overlap,) = run_tiled([image], blur, tile=48, overlap=0)
    feathered = np.abs(tiled - whole)
    seams = np.abs(no_overlap - whole)
    # the blur differs from the untiled one only within 3 px of a tile edge, where the ramp gives it little weight
    assert feathered.max() < 0.02 and feathered.mean() < 5e-4
    assert seams.max() > 4 * feathered.max(), "hard seams should be visibly worse than feathered ones"


def test_a_wrong_output_size_is_an_error_naming_the_scale() -> None:
    with pytest.raises(ValueError, match="expected scale=2"):
        run_tiled([np.zeros((8, 8, 3), np.float32)], lambda tiles: tiles, tile=4, overlap=1, scale=2)


@pytest.mark.parametrize(("length", "tile", "overlap", "align"), [(300, 64, 16, 2), (302, 64, 33, 2), (515, 96, 8, 4)])
def test_aligned_starts_are_multiples_and_keep_the_overlap(length: int, tile: int, overlap: int, align: int) -> None:
    starts = tile_starts(length + (-(length - tile) % align), tile, overlap, align)
    assert all(start % align == 0 for start in starts)
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts)), starts
    with pytest.raises(ValueError, match=f"multiple of {align}"):
        tile_starts(length - (length - tile) % align + 1, tile, overlap, align)


def test_a_2x2_grid_function_is_unchanged_by_aligned_tiling_only() -> None:
    """Like FFDNet's pixel unshuffle: each 2x2 block is averaged, so a tile starting on an odd pixel sees other
    blocks."""
    image = as_float(real_photo("coffee", 151))  # odd sides: padded to even for the aligned tiling

    def blocks(tiles: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for t in tiles:
            h, w = t.shape[0] // 2 * 2, t.shape[1] // 2 * 2
            mean = t[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
            full = np.repeat(np.repeat(mean, 2, axis=0), 2, axis=1)
            out.append(np.pad(full, ((0, t.shape[0] - h), (0, t.shape[1] - w), (0, 0)), mode="edge"))
        return out

    even = np.pad(image, ((0, 1), (0, 1), (0, 0)), mode="edge")
    whole = blocks([even])[0][: image.shape[0], : image.shape[1]]
    (aligned,) = run_tiled([image], blocks, tile=40, overlap=9, align=2)
    (unaligned,) = run_tiled([image], blocks, tile=40, overlap=9)
    assert aligned.shape == image.shape
    np.testing.assert_allclose(aligned, whole, atol=1e-6)
    assert np.abs(unaligned - whole).max() > 0.05
    with pytest.raises(ValueError, match="expected a tile that is a multiple of align"):
        run_tiled([image], blocks, tile=41, overlap=9, align=2)
