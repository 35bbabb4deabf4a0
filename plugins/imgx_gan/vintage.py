"""``gan.vintage``: the "modern photo to vintage photo" CycleGAN of vintagify 0.1.2 applied to every image.

What a catalog user gets: the output has the input's size (and its alpha, untouched). The network runs at the
working size (the long side limited to ``max_side``, 512 by default: vintagify's own ``image_size``), with Pillow's
bilinear downscaling as vintagify's torchvision ``Resize`` does on a PIL image; vintagify then centre-crops a square,
which a catalog cannot afford, so the whole image is kept. When the working size is the input's, the pixels are
vintagify's (``(G(2 x - 1) + 1) / 2``, rounded as ``torchvision.utils.save_image``: ``clip(y * 255 + 0.5)``) on
backends with dynamic shapes (``eager``, ``onnxruntime``: each image padded to a multiple of 4 only); backends that
build per shape (``compile``, ``tensorrt``) pad to a shape bucket, and instance norm sees that padding. When the
working size is smaller, only the *change* the network makes is scaled back up (Lanczos) and added to the
full-resolution photo (``keep_detail``), so the product keeps its sharpness and takes the vintage tone;
``keep_detail: false`` scales the network's picture itself up instead. The full-size blend runs in bands of rows, so
a 100 Mpx photo never has a full-size float copy.

Large working images (``max_side: null`` or a high ``max_side``) go through in overlapping tiles
(:func:`imgx.runtime.run_tiled`), so memory stays bounded. Instance norm gives each tile its own statistics: the
linear feathering leaves no seam, but a tiled result is not the untiled one (on 256 px photos in 192 px tiles: a
mean difference of 4 levels where the look itself changes 10 to 14; ``tests/plugins/imgx_gan/test_vintage.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Annotated, ClassVar, Literal

import numpy as np
from PIL import Image
from pydantic import Field, Strict, model_validator

from imgx import Item, ScopedParams, StageParams
from imgx.arrays import apply_scope, pad_min, to_uint8, working_size
from imgx.runtime import ModelStage, run_tiled

__all__ = [
    "VintageLook",
    "VintageParams",
    "pad_min",
    "tile_side",
    "to_uint8",
    "vintage_arrays",
    "working_size",
]

DEFAULT_MAX_SIDE = 512  # vintagify's image_size
MIN_SIDE = 32  # smaller images are mirror-padded up to this (the network needs 4; its statistics want more)
AUTO_TILE = 512  # tile="auto": tiles of this side ...
AUTO_TILE_ABOVE = 1024  # ... for working images whose long side is above this
DEFAULT_OVERLAP = 64
STRIP_PIXELS = 1 << 22  # the full-size blend runs in bands of about this many pixels (4 Mpx: 48 MB of float32)


class VintageParams(ScopedParams):
    """Parameters of ``gan.vintage``."""

    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 = the photo unchanged, 1 = the full vintage look")
    max_side: int | None = Field(
        DEFAULT_MAX_SIDE,
        ge=32,
        description="run the network at most at this long side (vintagify's 512); the result keeps the input size; "
        "null = full resolution (then tiled)",
    )
    tile: Literal["auto", "none"] | Annotated[int, Strict()] = Field(
        "auto",
        description=f"'auto' = tiles of {AUTO_TILE} px when the working long side is over {AUTO_TILE_ABOVE}; "
        "'none' = always whole; N = tiles of N px (>= 64) when the working image is larger",
    )
    overlap: int = Field(DEFAULT_OVERLAP, ge=0, description="overlap of neighbouring tiles in pixels (blended)")
    keep_detail: bool = Field(
        True,
        description="when the network runs below the input size, add its upscaled change to the full-size photo "
        "(sharp) instead of upscaling its picture (soft)",
    )

    @model_validator(mode="after")
    def _check_tiling(self) -> VintageParams:
        if isinstance(self.tile, int):
            if self.tile < 64:
                raise ValueError(f"got tile={self.tile}; expected 'auto', 'none' or a side >= 64")
            if self.overlap >= self.tile:
                raise ValueError(f"got overlap={self.overlap} for tile={self.tile}; expected overlap < tile")
        if self.max_side is None and self.tile == "none":
            raise ValueError(
                "got max_side=null with tile='none'; expected a max_side or tiling ('auto' or a side): a whole "
                "full-resolution image can exhaust memory"
            )
        return self


def tile_side(h: int, w: int, tile: str | int) -> int | None:
    """The tile side an ``h x w`` working image runs in, or ``None`` to run it whole."""
    if tile == "none":
        return None
    if tile == "auto":
        return AUTO_TILE if max(h, w) > AUTO_TILE_ABOVE else None
    assert isinstance(tile, int)
    return tile if max(h, w) > tile else None


def _resize(image: np.ndarray, h: int, w: int, method: Image.Resampling) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 array to ``(h, w, 3)`` with Pillow; the input itself when it has that size."""
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), method))


def _upscaled_rows(planes: list[Image.Image], h: int, w: int, y0: int, y1: int) -> np.ndarray:
    """Rows ``y0:y1`` of the ``(h, w)`` Lanczos enlargement of 3 same-size Pillow planes, as ``(y1 - y0, w, 3)``
    float32: Pillow's ``box`` resamples just that band, with the filter taps of the whole enlargement."""
    scale = planes[0].height / h
    box = (0.0, y0 * scale, float(planes[0].width), y1 * scale)
    return np.stack([np.asarray(p.resize((w, y1 - y0), Image.Resampling.LANCZOS, box=box)) for p in planes], axis=-1)


def _rows_difference(a: np.ndarray, b: np.ndarray, y0: int, y1: int) -> np.ndarray:
    """Rows ``y0:y1`` of ``a - b`` (two ``(H, W, 3)`` uint8 arrays) as float32."""
    return a[y0:y1].astype(np.float32) - b[y0:y1]


def _mix(image: np.ndarray, strength: float, delta: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """``round(image + strength * delta)`` clipped to uint8, in bands of rows so a huge image never has a full-size
    float32 copy: ``delta(y0, y1)`` gives rows ``y0:y1`` of the change as ``(y1 - y0, W, 3)`` float32."""
    out = np.empty_like(image)
    h, w = image.shape[:2]
    step = max(1, STRIP_PIXELS // max(1, w))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        mixed = image[y0:y1] + np.float32(strength) * delta(y0, y1)
        mixed += np.float32(0.5)
        out[y0:y1] = np.clip(mixed, 0.0, 255.0)
    return out


def vintage_arrays(
    images: Sequence[np.ndarray],
    params: VintageParams,
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
) -> list[np.ndarray]:
    """Give ``(H, W, 3)`` uint8 RGB arrays the vintage look; the work of the stage without the item bookkeeping.

    :param infer: runs the 0..1 generator on ``(h, w, 3)`` float32 arrays, returning arrays of the same shapes
        (``ModelStage.infer_images``).
    :return: ``(H, W, 3)`` uint8 RGB arrays, each the size of its input. ``strength`` 0 returns the inputs.
    """
    if params.strength <= 0.0:
        return list(images)
    small = [
        _resize(image, *working_size(*image.shape[:2], params.max_side), Image.Resampling.BILINEAR) for image in images
    ]
    inputs = [pad_min(image, MIN_SIDE).astype(np.float32) / np.float32(255.0) for image in small]
    outputs: list[np.ndarray | None] = [None] * len(images)
    whole = [i for i, x in enumerate(inputs) if tile_side(*x.shape[:2], params.tile) is None]
    for i, out in zip(whole, infer([inputs[i] for i in whole]) if whole else [], strict=True):
        outputs[i] = out
    by_side: dict[int, list[int]] = {}
    for i, x in enumerate(inputs):
        side = tile_side(*x.shape[:2], params.tile)
        if side is not None:
            by_side.setdefault(side, []).append(i)
    for side, indices in by_side.items():
        tiled = run_tiled([inputs[i] for i in indices], infer, tile=side, overlap=min(params.overlap, side - 1))
        for i, out in zip(indices, tiled, strict=True):
            outputs[i] = out
    results = []
    for image, work, out in zip(images, small, outputs, strict=True):
        assert out is not None
        out = out[: work.shape[0], : work.shape[1]]
        h, w = image.shape[:2]
        if work.shape[:2] == (h, w) or not params.keep_detail:
            vintage = _resize(to_uint8(out), h, w, Image.Resampling.LANCZOS)
            if params.strength >= 1.0:
                results.append(vintage)
            else:
                results.append(_mix(image, params.strength, partial(_rows_difference, vintage, image)))
        else:
            change = out * np.float32(255.0) - work  # (h, w, 3) float32, -255..255, at the working size
            planes = [Image.fromarray(np.ascontiguousarray(change[..., c])) for c in range(3)]
            results.append(_mix(image, params.strength, partial(_upscaled_rows, planes, h, w)))
    return results


class VintageLook(ModelStage):
    """The vintagify CycleGAN "modern to vintage" generator on every image; see :mod:`imgx_gan.vintage`."""

    name: ClassVar[str] = "gan.vintage"
    Params: ClassVar[type[StageParams]] = VintageParams
    summary: ClassVar[str] = "Vintage photo look (vintagify CycleGAN), blended by strength; input size and alpha kept."
    example: ClassVar[dict] = {"strength": 0.8, "max_side": 128}
    version: ClassVar[str] = "1"
    model: ClassVar[str] = "cyclegan_vintage"
    multiple: ClassVar[int] = 4
    params: VintageParams

    @classmethod
    def input_size(cls, params: StageParams, h: int, w: int) -> tuple[int, int]:
        """The working size (``max_side``), or the tile's size when the working image is tiled."""
        assert isinstance(params, VintageParams)
        h, w = working_size(h, w, params.max_side)
        h, w = max(h, MIN_SIDE), max(w, MIN_SIDE)
        side = tile_side(h, w, params.tile)
        return (h, w) if side is None else (min(h, side), min(w, side))

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        images = vintage_arrays([item.image for item in batch], self.params, self.infer_images)
        p = self.params
        return [
            item.replace(image=apply_scope(image, item.image, item.alpha, p.scope, p.feather))
            for item, image in zip(batch, images, strict=True)
        ]
