"""The array toolkit every stage uses: shape checks, uint8 <-> float conversion with one rounding rule, resizing,
alpha compositing, and the working-size helpers of model stages. NumPy and OpenCV only (no torch).

Layouts, as everywhere in imgx:

- an image is ``(H, W, 3)`` uint8 RGB;
- an alpha (mask, matte) is ``(H, W)`` uint8, 255 = opaque product, straight (not premultiplied);
- float images are ``(H, W, C)`` float32 in 0..1 (a network's output may overshoot; :func:`to_uint8` clips).

Checks raise ``ValueError`` with a message of the form "got X for Y; expected Z", built only on failure, so calling
them on every image costs a few attribute reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import cv2
import numpy as np

__all__ = [
    "INTERPOLATIONS",
    "Interpolation",
    "Scope",
    "apply_scope",
    "by_row_strips",
    "check_alpha",
    "check_rgb",
    "feathered_mask",
    "flatten_alpha",
    "pad_min",
    "resize_plane",
    "to_float",
    "to_uint8",
    "working_size",
]

#: Rows per strip of :func:`by_row_strips`: a 4000 px wide RGB strip of 256 rows is 3 MB, its float32 copies 12 MB.
STRIP_ROWS = 256

#: How :func:`resize_plane` resamples: ``auto`` is ``area`` when neither side grows and ``cubic`` otherwise.
Interpolation = Literal["auto", "area", "linear", "cubic", "lanczos", "nearest"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)

_CV2_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "nearest": cv2.INTER_NEAREST,
}


def _describe(value: object) -> str:
    """``"uint16 (4, 4, 3)"`` for an array, the type's name for anything else (for error messages)."""
    return f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__


def check_rgb(image: np.ndarray, name: str = "image", *, allow_empty: bool = False) -> None:
    """Raise ``ValueError`` unless ``image`` is an ``(H, W, 3)`` uint8 RGB array with ``H, W >= 1`` (``H`` or ``W``
    may be 0 with ``allow_empty=True``, for ops that map an empty image to itself).

    :param name: what the caller calls the array, for the message (``"background"``, ``"image of item 'sku-1'"``).
    """
    rgb = isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    if rgb and (allow_empty or image.size):
        return
    what = "an" if allow_empty else "a non-empty"
    raise ValueError(f"got {_describe(image)} for {name}; expected {what} (H, W, 3) uint8 RGB array")


def check_alpha(alpha: np.ndarray, shape: tuple[int, ...], name: str = "alpha") -> None:
    """Raise ``ValueError`` unless ``alpha`` is an ``(H, W)`` uint8 array with ``(H, W) == shape[:2]`` (``shape`` is
    usually the image's)."""
    if isinstance(alpha, np.ndarray) and alpha.dtype == np.uint8 and alpha.shape == tuple(shape[:2]):
        return
    raise ValueError(f"got {_describe(alpha)} for {name}; expected an {tuple(shape[:2])} uint8 array")


def to_float(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` (or any shape) uint8 -> float32 in 0..1 (``/ 255``); every code round-trips :func:`to_uint8`."""
    return np.multiply(image, np.float32(1.0 / 255.0), dtype=np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float in 0..1 (any shape; a network's output may overshoot) -> uint8: ``clip(x, 0, 1) * 255 + 0.5``,
    truncated, i.e. rounded half up (as PIL and torchvision save images). The one rounding rule of imgx: every stage
    that turns floats into pixels goes through it, so the same float gives the same code everywhere."""
    out = np.clip(x, 0.0, 1.0, dtype=np.float32)
    out *= 255.0
    out += 0.5
    return out.astype(np.uint8)


def resize_plane(array: np.ndarray, size: tuple[int, int], interpolation: Interpolation = "auto") -> np.ndarray:
    """Resize an ``(H, W, 3)`` or ``(H, W)`` array (uint8, or float32) to ``size = (width, height)`` with OpenCV.

    ``auto`` is ``area`` when neither side grows (no aliasing, no ringing) and ``cubic`` otherwise; ``lanczos`` is
    OpenCV's 8 x 8 Lanczos, which does not widen its kernel when shrinking (use ``area`` or ``auto`` to shrink by
    more than ~1.5x). The same size returns the input itself. uint8 results are rounded and saturated.

    :raises ValueError: a size below 1 x 1, or an unknown ``interpolation``.
    """
    width, height = int(size[0]), int(size[1])
    if width < 1 or height < 1:
        raise ValueError(f"got {size!r} for size; expected (width, height), both at least 1")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"got {interpolation!r} for interpolation; expected one of {', '.join(INTERPOLATIONS)}")
    in_height, in_width = array.shape[:2]
    if (width, height) == (in_width, in_height):
        return array
    if interpolation == "auto":
        flag = cv2.INTER_AREA if width <= in_width and height <= in_height else cv2.INTER_CUBIC
    else:
        flag = _CV2_INTERPOLATION[interpolation]
    return cv2.resize(array, (width, height), interpolation=flag)


def flatten_alpha(image: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """The "over" operator: ``image`` with its straight ``alpha`` composited onto ``background``, in sRGB codes.

    ``out = round((rgb * a + bg * (255 - a)) / 255)`` per channel, exact (the numerator is an integer and never lies
    half-way, so there is no tie to break): alpha 255 gives the image, 0 the background. This is how the JPEG encoder
    flattens a cut-out, how browsers show a PNG over a page, and how ``compose.background`` and ``geometry.center``
    put a product on a colour: the same pixels everywhere. OpenCV integer arithmetic (multi-threaded).

    :param image: ``(H, W, 3)`` uint8 RGB, not modified.
    :param alpha: ``(H, W)`` uint8, not modified.
    :param background: an ``(r, g, b)`` colour of 0..255, or an ``(H, W, 3)`` uint8 RGB image of the image's shape.
    :return: a new ``(H, W, 3)`` uint8 RGB array.
    :raises ValueError: wrong shapes or dtypes, or a colour that is not three values in 0..255.
    """
    check_rgb(image, allow_empty=True)
    check_alpha(alpha, image.shape)
    if isinstance(background, np.ndarray):
        check_rgb(background, "background", allow_empty=True)
        if background.shape != image.shape:
            raise ValueError(f"got {background.shape} for background; expected the image's shape {image.shape}")
    elif len(background) != 3 or not all(0 <= int(c) <= 255 for c in background):
        raise ValueError(f"got {background!r} for background; expected an (r, g, b) colour of 0..255 or an image")
    if image.size == 0:
        return image.copy()
    a = cv2.merge((alpha, alpha, alpha))
    total = cv2.multiply(image, a, dtype=cv2.CV_16U)  # <= 255 * 255: fits uint16, and so does the sum below
    rest = cv2.bitwise_not(a)  # 255 - a
    if isinstance(background, np.ndarray):
        cv2.add(total, cv2.multiply(background, rest, dtype=cv2.CV_16U), dst=total)
    else:
        color = (float(background[0]), float(background[1]), float(background[2]), 0.0)
        cv2.add(total, cv2.multiply(rest, color, dtype=cv2.CV_16U), dst=total)
    # / 255, rounded to nearest: float32 is exact enough, since a true quotient is never within 1/510 of a tie.
    return cv2.convertScaleAbs(total, alpha=1.0 / 255.0)


def working_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """The ``(h, w)`` a network runs an image at: unchanged when its long side is within ``max_side`` (or
    ``max_side`` is ``None``), else scaled so the long side is ``max_side`` (sides rounded, at least 1)."""
    if max_side is None or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def pad_min(image: np.ndarray, side: int) -> np.ndarray:
    """Mirror-pad (bottom and right) an ``(H, W, C)`` array until both sides are at least ``side``; the input itself
    when they already are. A pad wider than the image mirrors the mirrored image again; a 1-pixel side repeats."""
    while image.shape[0] < side or image.shape[1] < side:
        h, w = image.shape[:2]
        pad_h = max(0, min(side - h, h - 1) if h > 1 else side - h)
        pad_w = max(0, min(side - w, w - 1) if w > 1 else side - w)
        mode = "reflect" if h > 1 and w > 1 else "edge"
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
    return image


Scope = Literal["all", "background", "product"]


def feathered_mask(alpha: np.ndarray, feather: float) -> np.ndarray:
    """``(H, W)`` float32 0..1 from a ``(H, W)`` uint8 alpha, its edge softened by a Gaussian of sigma ``feather / 2``
    pixels (``0``: the hard mask)."""
    mask = to_float(alpha)
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=feather / 2.0, borderType=cv2.BORDER_REFLECT)
    return mask


def _feather_reach(feather: float) -> int:
    """Rows above and below a pixel that :func:`feathered_mask` reads (OpenCV's float32 Gaussian kernel reaches 4
    sigma): what each strip of it needs (:func:`by_row_strips`)."""
    return int(np.ceil(4 * feather / 2.0)) + 2 if feather > 0 else 0


def apply_scope(
    edited: np.ndarray, original: np.ndarray, alpha: np.ndarray | None, scope: Scope, feather: float
) -> np.ndarray:
    """Where an edit (a restyle, a vintage look) applies: ``all`` returns ``edited``; ``background`` keeps the
    product's own pixels (alpha) from ``original`` and the edit elsewhere; ``product`` the reverse. The mask is
    feathered by ``feather`` pixels (:func:`feathered_mask`). Both images are ``(H, W, 3)`` uint8 RGB of one size.

    :raises ValueError: for ``background``/``product`` without an alpha (run ``segment.product`` upstream).
    """
    if scope == "all":
        return edited
    if alpha is None:
        raise ValueError(f"got no alpha for scope {scope!r}; expected a product mask (segment.product upstream)")

    def mix(original: np.ndarray, edited: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        keep = feathered_mask(alpha, feather)
        k = (keep if scope == "background" else 1.0 - keep)[..., None]
        mixed = original.astype(np.float32) * k + edited.astype(np.float32) * (1.0 - k)
        return (mixed + 0.5).astype(np.uint8)

    # a strip at a time, each with the rows its blur reads: the mask and the float32 copies of a 12 MP photo were
    # ~600 MB at once
    return by_row_strips(mix, original, edited, alpha, reach=_feather_reach(feather))


def by_row_strips(
    fn: Callable[..., np.ndarray], *arrays: np.ndarray, reach: int = 0, rows: int = STRIP_ROWS, scale: int = 1
) -> np.ndarray:
    """``fn`` applied to horizontal strips of ``arrays`` and stitched: the same result as ``fn(*arrays)`` for a
    per-pixel or neighbourhood operation whose output pixel reads at most ``reach`` rows above and below it (and
    whose border rule applies at the image's own top and bottom, which every strip keeps), with the full-size
    temporaries of ``fn`` (float copies, blurs) cut to one strip's. An image of at most ``rows + 2 * reach`` rows is
    one call.

    :param arrays: arrays of one height (``(H, ...)``); ``fn`` gets their rows ``y0 - reach .. y1 + reach``
        (clipped to the image) and returns an array of ``scale`` times that many rows.
    :param reach: in rows of ``arrays``.
    :param scale: output rows per input row (an upsampler's factor; 1 for an operation that keeps the size).
    :return: ``(scale * H, ...)``, the dtype and trailing shape of ``fn``'s results.
    """
    height = arrays[0].shape[0]
    if any(a.shape[0] != height for a in arrays):
        raise ValueError(f"got heights {[a.shape[0] for a in arrays]} for by_row_strips; expected one height")
    if reach < 0 or rows < 1 or scale < 1:
        raise ValueError(
            f"got reach={reach}, rows={rows}, scale={scale} for by_row_strips; expected reach >= 0, rows >= 1 and "
            "scale >= 1"
        )
    if height <= rows + 2 * reach:
        return fn(*arrays)
    out: np.ndarray | None = None
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        w0, w1 = max(0, y0 - reach), min(height, y1 + reach)
        strip = fn(*(a[w0:w1] for a in arrays))
        if strip.shape[0] != scale * (w1 - w0):
            raise ValueError(
                f"got {strip.shape[0]} rows from {fn.__name__} for a strip of {w1 - w0}; expected {scale * (w1 - w0)}"
            )
        if out is None:
            out = np.empty((scale * height, *strip.shape[1:]), strip.dtype)
        out[scale * y0 : scale * y1] = strip[scale * (y0 - w0) : scale * (y1 - w0)]
    assert out is not None
    return out
