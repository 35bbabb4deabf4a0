"""Encode an :class:`imgx.Item` to JPEG, PNG or WebP bytes.

Choices (speed first: this runs once per output on millions of SKUs):

- JPEG: ``optimize=False``; chroma subsampling 4:4:4 at ``quality >= 90`` and 4:2:0 below (libvips' rule:
  subsampling smears the saturated edges of product shots, and whoever asks for 90+ wants them kept); alpha
  flattened over ``background`` with the toolkit's "over" blend (:func:`imgx.arrays.flatten_alpha`: exact integer
  ``(rgb * a + bg * (255 - a)) / 255``, rounded).
- PNG: lossless, RGBA when the item has alpha; ``quality`` does not apply. ``png_compress_level`` ``"fast"`` (the
  default) encodes with fpng (one fixed deflate pass built for speed: ~4 ms for a 1024 px photo against ~220 ms for
  zlib level 6, files ~20 % larger; see ``benchmarks/bench_encode.py``); 0..9 are zlib levels (6 is zlib's own
  default; 1 is ~4x faster than 6 for files ~15 % larger), encoded by OpenCV (libpng, 13-23 % faster than Pillow at
  level 6). Every setting gives the same pixels. An ICC profile is embedded as the ``iCCP`` chunk: by Pillow at a
  zlib level, and inserted after ``IHDR`` in fpng's file.
- WebP: lossy with ``quality`` unless ``lossless=True``; ``method=4`` (libwebp's default speed/size trade-off; 6 is
  ~2x slower for a few % smaller files, 0 is fastest); RGBA when the item has alpha. Lossless WebP keeps the RGB
  under fully transparent pixels (``exact=True``) so a round trip gives the same arrays back.
- The item's RGB ICC profile (``meta["icc_profile"]``) is embedded in every format. No EXIF is written: the pixels
  are already upright, so an orientation tag would rotate them twice.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import fpng
import numpy as np
from PIL import Image

from ..arrays import flatten_alpha
from ..errors import OutputError
from ..item import Item

__all__ = ["FORMATS", "encode_image"]

#: Recipe output format -> file extension.
FORMATS: dict[str, str] = {"jpeg": "jpg", "png": "png", "webp": "webp"}

#: ``png_compress_level`` that picks the fastest PNG encoder (fpng) rather than a zlib level.
PNG_FAST = "fast"


def encode_image(
    item: Item,
    *,
    format: str,
    quality: int = 90,
    background: tuple[int, int, int] = (255, 255, 255),
    lossless: bool = False,
    png_compress_level: int | str = PNG_FAST,
) -> bytes:
    """Encode ``item.image`` (``(H, W, 3)`` uint8 RGB) and ``item.alpha`` (``(H, W)`` uint8 or ``None``).

    :param format: a key of :data:`FORMATS`: ``"jpeg"``, ``"png"`` or ``"webp"``.
    :param quality: 1..100, for JPEG and lossy WebP (ignored by PNG and lossless WebP).
    :param background: RGB colour the alpha is flattened over for JPEG (which has no alpha).
    :param lossless: WebP only: encode losslessly.
    :param png_compress_level: PNG only: :data:`PNG_FAST` (fpng) or a zlib level 0..9.
    :raises OutputError: unknown format, out-of-range option, or the encoder failed.
    """
    if format not in FORMATS:
        raise OutputError(f"got output format {format!r}; expected one of {', '.join(FORMATS)}")
    if not 1 <= quality <= 100:
        raise OutputError(f"got quality {quality} for {format} output; expected 1..100")
    if png_compress_level != PNG_FAST and not (
        isinstance(png_compress_level, int)
        and not isinstance(png_compress_level, bool)
        and 0 <= png_compress_level <= 9
    ):
        raise OutputError(f"got png_compress_level {png_compress_level!r}; expected {PNG_FAST!r} or 0..9")
    if len(background) != 3 or not all(0 <= int(c) <= 255 for c in background):
        raise OutputError(f"got background {background!r}; expected an (R, G, B) tuple of 0..255")

    options: dict[str, object] = {}
    icc = item.meta.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    try:
        if format == "png" and png_compress_level == PNG_FAST:
            return _png_fast(item, icc)
        if format == "png" and not icc:
            return _png_opencv(item, png_compress_level)
        if format == "jpeg":
            rgb = item.image if item.alpha is None else flatten_alpha(item.image, item.alpha, background)
            pil, pil_format = Image.fromarray(rgb), "JPEG"
            # Like libvips: full-resolution chroma at quality >= 90 (sharp coloured edges on product shots).
            options.update(quality=quality, optimize=False, subsampling=0 if quality >= 90 else 2)
        else:
            pil = Image.fromarray(item.image)
            if item.alpha is not None:
                pil.putalpha(Image.fromarray(item.alpha))
            if format == "png":
                pil_format = "PNG"
                options.update(compress_level=png_compress_level, optimize=False)
            else:
                pil_format = "WEBP"
                options.update(quality=quality, method=4, lossless=lossless, exact=lossless)
        buffer = io.BytesIO()
        pil.save(buffer, pil_format, **options)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise OutputError(f"could not encode {item.sku!r} as {format}: {exc}") from exc
    return buffer.getvalue()


def _png_opencv(item: Item, level: int) -> bytes:
    """PNG bytes from OpenCV's encoder (BGR/BGRA order); the decoded pixels equal the item's."""
    planes = item.image[..., ::-1] if item.alpha is None else np.dstack([item.image[..., ::-1], item.alpha])
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(planes), [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise OutputError(f"could not encode {item.sku!r} as png: OpenCV's encoder refused the image")
    return buffer.tobytes()


def _png_fast(item: Item, icc: bytes | None) -> bytes:
    """PNG bytes from fpng (RGB/RGBA order), with ``icc`` as an ``iCCP`` chunk; the decoded pixels equal the item's."""
    planes = item.image if item.alpha is None else np.dstack([item.image, item.alpha])
    data = fpng.from_ndarray(np.ascontiguousarray(planes, dtype=np.uint8))
    if not data:
        raise OutputError(f"could not encode {item.sku!r} as png: fpng refused the image")
    return _with_icc(data, icc) if icc else data


def _with_icc(png: bytes, icc: bytes) -> bytes:
    """``png`` with an ``iCCP`` chunk (profile name, compression method 0, the zlib-compressed profile) right after
    ``IHDR``, where the PNG specification wants it (before ``IDAT``)."""
    after_ihdr = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its 13 bytes of data, its CRC
    body = b"iCCP" + b"ICC profile\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:after_ihdr] + chunk + png[after_ihdr:]
