"""Tiled inference: run a network on overlapping tiles of large images and blend the tiles back.

Memory stays bounded for any image size: at most ``chunk`` tiles are in flight at once, and what grows with the image
is only its output. Every tile of a call has the same shape (``min(tile, h) x min(tile, w)``, the last tiles of a row
or column aligned to the image's edge), so a backend that builds per shape builds once. Tiles overlap by at least
``overlap`` input pixels; in the overlaps each tile's weight falls linearly towards its inner edge, so a network whose
output depends on the whole tile (instance norm, a GAN's global colour) leaves no visible seam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Box", "run_tiled", "tile_boxes", "tile_starts"]

#: ``(y0, y1, x0, x1)`` of a tile in input pixels.
Box = tuple[int, int, int, int]


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of size ``min(tile, length)`` covering ``0..length`` with neighbours overlapping by at
    least ``overlap`` pixels, spread evenly so the last tile ends at ``length``.

    :param align: every start is a multiple of this (a network that works on a 2x2 grid, such as FFDNet's pixel
        unshuffle, needs even offsets to see the same grid in every tile); ``length - tile`` must then be one too.
    :raises ValueError: ``tile`` < 1, ``overlap`` < 0, ``align`` < 1, or no aligned step fits in ``tile - overlap``
        while one tile is not enough.
    """
    if tile < 1 or overlap < 0 or align < 1:
        raise ValueError(
            f"got tile={tile}, overlap={overlap}, align={align}; expected tile >= 1, overlap >= 0, align >= 1"
        )
    if length <= tile:
        return [0]
    span = length - tile
    step = (tile - overlap) // align * align  # the largest aligned step that keeps the overlap
    if step < 1:
        raise ValueError(f"got overlap={overlap} for tile={tile}, align={align}; expected overlap <= tile - align")
    if span % align:
        raise ValueError(f"got length {length} and tile {tile}; expected length - tile to be a multiple of {align}")
    count = math.ceil(span / step) + 1
    units = span // align  # aligned starts are align * round(i * units / (count - 1)): gaps never exceed step
    return [align * round(i * units / (count - 1)) for i in range(count)]


def tile_boxes(h: int, w: int, tile: int, overlap: int, align: int = 1) -> list[Box]:
    """The tiles, row by row, that cover an ``h x w`` image: ``(y0, y1, x0, x1)``, all ``min(tile, h) x min(tile,
    w)``, neighbours overlapping by at least ``overlap`` pixels, starts multiples of ``align`` (see
    :func:`tile_starts`)."""
    th, tw = min(tile, h), min(tile, w)
    return [
        (y, y + th, x, x + tw)
        for y in tile_starts(h, tile, overlap, align)
        for x in tile_starts(w, tile, overlap, align)
    ]


def _ramp(length: int, start: int, stop: int, extent: int, feather: int) -> np.ndarray:
    """A tile's 1-D weight along one axis: 1 inside, rising linearly over ``feather`` pixels at each side that has a
    neighbouring tile (the image's own edges keep weight 1). Never 0, so every pixel has some weight."""
    weight = np.ones(stop - start, np.float32)
    ramp = (np.arange(min(feather, stop - start), dtype=np.float32) + 0.5) / max(feather, 1)
    if start > 0:
        weight[: ramp.size] = np.minimum(weight[: ramp.size], ramp)
    if stop < extent:
        weight[weight.size - ramp.size :] = np.minimum(weight[weight.size - ramp.size :], ramp[::-1])
    return weight


def run_tiled(
    images: Sequence[np.ndarray],
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    *,
    tile: int,
    overlap: int,
    scale: int = 1,
    chunk: int = 16,
    align: int = 1,
) -> list[np.ndarray]:
    """Run ``infer`` on overlapping tiles of each image and blend the results.

    :param images: ``(h, w, C)`` float32 arrays of any sizes.
    :param infer: maps a list of ``(th, tw, C)`` float32 tiles to a list of ``(th * scale, tw * scale, C_out)``
        float32 arrays (e.g. :meth:`imgx.runtime.ModelStage.infer_images`, which batches same-shape tiles).
    :param tile: tile side in input pixels; an image no larger than ``tile`` goes through whole, as one tile.
    :param overlap: minimum overlap of neighbouring tiles in input pixels; also the width of the blending ramp.
    :param scale: output pixels per input pixel (4 for a 4x upscaler).
    :param chunk: at most this many tiles per ``infer`` call (tiles of several images share a call), which bounds
        memory for any image size.
    :param align: tile starts are multiples of this (``tile`` must be one too); an image whose sides are not is
        edge-padded to them for tiling and cropped after.
    :return: per image, the ``(h * scale, w * scale, C_out)`` float32 blend of its tiles.
    """
    if scale < 1 or chunk < 1:
        raise ValueError(f"got scale={scale}, chunk={chunk}; expected both >= 1")
    if align > 1 and tile % align:
        raise ValueError(f"got tile={tile} for align={align}; expected a tile that is a multiple of align")
    sizes = [image.shape[:2] for image in images]
    images = [_pad_to_multiple(image, align) for image in images]
    jobs = [
        (index, box) for index, image in enumerate(images) for box in tile_boxes(*image.shape[:2], tile, overlap, align)
    ]
    sums: list[np.ndarray | None] = [None] * len(images)
    weights = [np.zeros((image.shape[0] * scale, image.shape[1] * scale, 1), np.float32) for image in images]
    for first in range(0, len(jobs), chunk):
        part = jobs[first : first + chunk]
        tiles = [np.ascontiguousarray(images[i][y0:y1, x0:x1]) for i, (y0, y1, x0, x1) in part]
        outputs = infer(tiles)
        for (i, (y0, y1, x0, x1)), out in zip(part, outputs, strict=True):
            h, w = images[i].shape[:2]
            expected = ((y1 - y0) * scale, (x1 - x0) * scale)
            if out.shape[:2] != expected:
                raise ValueError(f"got a {out.shape[:2]} output for a {expected} tile; expected scale={scale}")
            if sums[i] is None:
                sums[i] = np.zeros((h * scale, w * scale, out.shape[2]), np.float32)
            wy = _ramp(h * scale, y0 * scale, y1 * scale, h * scale, overlap * scale)
            wx = _ramp(w * scale, x0 * scale, x1 * scale, w * scale, overlap * scale)
            weight = wy[:, None, None] * wx[None, :, None]
            sums[i][y0 * scale : y1 * scale, x0 * scale : x1 * scale] += out * weight  # type: ignore[index]
            weights[i][y0 * scale : y1 * scale, x0 * scale : x1 * scale] += weight
    blended = []
    for index, (h, w) in enumerate(sizes):  # divided in place: no second full-size float copy of every image
        total = sums[index]
        total /= weights[index]  # type: ignore[operator]
        weights[index] = sums[index] = None  # type: ignore[call-overload]
        blended.append(total[: h * scale, : w * scale])  # type: ignore[index]
    return blended


def _pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """``image`` edge-padded at the bottom and right to sides that are multiples of ``multiple`` (or itself)."""
    h, w = image.shape[:2]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
