"""Shape buckets: a catalog of mixed image sizes runs at a handful of padded shapes, not one shape per image.

The long side of an image rounds up to the nearest canonical side (``sides``); the short side rounds up to a quarter
of that side; both are multiples of the network's stride. A 1000 x 750 photo and a 980 x 700 one both run at
768 x 1024, so a compiled graph or a TensorRT engine built for that shape serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, "torch.Tensor")

__all__ = ["bucket_shape", "crop", "pad_to", "round_up"]

STEPS = 4  # short sides are rounded up to side / STEPS: at most STEPS shapes per canonical side and orientation


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value`` (``multiple`` >= 1)."""
    return -(-value // multiple) * multiple


def bucket_shape(h: int, w: int, *, sides: Sequence[int], multiple: int, steps: int = STEPS) -> tuple[int, int]:
    """The padded ``(H, W)`` an ``(h, w)`` input runs at.

    The long side becomes the smallest of ``sides`` that holds it (beyond the largest: rounded up to a multiple of
    ``max(sides) / steps``); the short side is rounded up to a multiple of ``side / steps``; both are then multiples
    of ``multiple`` (the network's stride) and never smaller than the input.

    :param h: input height in pixels (>= 1).
    :param w: input width in pixels (>= 1).
    :param sides: canonical long sides, e.g. ``(256, 512, 768, 1024, 1536, 2048)``.
    :param multiple: the network's stride; every returned side is a multiple of it.
    :param steps: how many short-side sizes each canonical side has.
    """
    if h < 1 or w < 1:
        raise ValueError(f"got image size {h} x {w}; expected both sides >= 1")
    if multiple < 1 or not sides or min(sides) < 1:
        raise ValueError(f"got sides={tuple(sides)!r}, multiple={multiple!r}; expected positive sides and multiple")
    long, short = max(h, w), min(h, w)
    fitting = [s for s in sorted(sides) if s >= long]
    side = fitting[0] if fitting else round_up(long, max(1, max(sides) // steps))
    side = round_up(side, multiple)
    step = round_up(max(1, side // steps), multiple)
    short_side = min(round_up(short, step), side)
    return (side, short_side) if h >= w else (short_side, side)


def pad_to(x: ArrayOrTensor, H: int, W: int, mode: str = "reflect") -> ArrayOrTensor:
    """Pad a ``(B, C, h, w)`` (or ``(C, h, w)``) tensor or NumPy array at the bottom and right to ``(H, W)``.

    ``reflect`` mirrors the image (no hard edge for the network to react to); a pad wider than the image mirrors the
    mirrored image again, so any size can be reached. Other modes are those of :func:`torch.nn.functional.pad` (a
    NumPy array: ``reflect`` only). A NumPy array gives a NumPy array, padded the same way without importing torch.
    """
    h, w = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"got target {H} x {W} for a {h} x {w} tensor; expected a target at least as large")
    if isinstance(x, np.ndarray):
        if mode != "reflect":
            raise ValueError(f"got mode {mode!r} for a NumPy array; expected 'reflect'")
        return _reflect(x, H, W, _pad_array)
    import torch.nn.functional as F

    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    x = F.pad(x, (0, W - w, 0, H - h), mode=mode) if mode != "reflect" else _reflect(x, H, W, F.pad)
    return x.squeeze(0) if squeeze else x


def _pad_array(x: np.ndarray, pads: tuple[int, int, int, int], mode: str) -> np.ndarray:
    """:func:`torch.nn.functional.pad`'s ``(left, right, top, bottom)`` on the last two axes of an array."""
    left, right, top, bottom = pads
    width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, width, mode="reflect" if mode == "reflect" else "edge")


def _reflect(x: ArrayOrTensor, H: int, W: int, pad: Callable[..., Any]) -> ArrayOrTensor:
    """Mirror ``x`` at the bottom and right until it is ``(H, W)``: reflect needs a pad smaller than the side, so a
    wide pad takes several rounds; a 1-pixel side can only be repeated."""
    while x.shape[-2] < H or x.shape[-1] < W:
        ch, cw = x.shape[-2:]
        pad_h = min(H - ch, ch - 1) if ch > 1 else H - ch
        pad_w = min(W - cw, cw - 1) if cw > 1 else W - cw
        x = pad(x, (0, pad_w, 0, pad_h), mode="reflect" if ch > 1 and cw > 1 else "replicate")
    return x


def crop(x: ArrayOrTensor, h: int, w: int) -> ArrayOrTensor:
    """The top-left ``(h, w)`` of a ``(..., H, W)`` tensor or array: undoes :func:`pad_to`."""
    return x[..., :h, :w]
