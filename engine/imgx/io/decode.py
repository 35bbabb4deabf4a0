"""Decode image bytes into an :class:`imgx.Item`: ``(H, W, 3)`` uint8 RGB plus optional ``(H, W)`` uint8 alpha.

Every input a catalog throws at us is either decoded into that one layout or rejected with an
:class:`imgx.InputError` whose message a catalog team can read in the results ledger:

- the pixel limit is checked on the header size, before any pixel is decoded;
- truncated data raises (Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never turned on, so a cut-off file is
  never returned as a half-grey image);
- CMYK (incl. Adobe inverted CMYK JPEGs), grayscale, 1-bit, palette, 16-bit and alpha modes are converted to RGB;
  transparency (alpha channel, palette or colour-key ``tRNS``) becomes ``Item.alpha``;
- the EXIF orientation is applied to the pixels and recorded in ``meta["orientation"]``;
- animated GIF/WebP give their first frame.

16-bit samples are scaled to 8 bit by rounding ``v / 257`` (so 65535 -> 255, 0 -> 0), never clipped. Pillow itself
reads 16-bit RGB(A)/LA PNGs as 8-bit by keeping the high byte (``v >> 8``), which differs from rounding by at most 1.

Only the formats in :data:`FORMATS` are opened, whatever Pillow could identify: a catalog has no business shipping
EPS (which Pillow hands to Ghostscript) or exotic formats, and a short allow-list keeps the attack surface small.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from typing import Any

import numpy as np
from PIL import (
    BmpImagePlugin,  # noqa: F401  (importing a plugin registers its format with Pillow)
    GifImagePlugin,  # noqa: F401
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,  # noqa: F401  (also opens MPO: multi-picture JPEGs from phones)
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from ..arrays import flatten_alpha
from ..errors import InputError
from ..item import Item

__all__ = ["FORMATS", "decode_image", "header_orientation", "open_picture", "pixel_limit_message"]

with contextlib.suppress(ImportError):  # Pillow >= 11.3 wheels bundle libavif; other builds may not
    from PIL import AvifImagePlugin  # noqa: F401

#: Pillow format names that :func:`decode_image` opens, in the order they are tried (AVIF when Pillow has it).
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", *(("AVIF",) if "AVIF" in Image.OPEN else ()))

_ORIENTATION_TAG = 0x0112
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_16BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# What a broken file makes Pillow (or zlib/libjpeg behind it) raise while decoding pixels.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error, zlib.error)


def pixel_limit_message(width: int, height: int, max_pixels: int) -> str:
    """The ledger reason for an image over the pixel limit (shared with callers that check sizes themselves)."""
    size = f"{width}x{height} = {_megapixels(width * height)} MP"
    return f"image is {size}; limit is {_megapixels(max_pixels)} MP (input.max_pixels)"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f}" if pixels >= 100_000 else f"{pixels / 1e6:.3g}"


def decode_image(data: bytes, *, sku: str, source: str, max_pixels: int = 100_000_000) -> Item:
    """Decode ``data`` (the bytes of one image file) into an :class:`imgx.Item`.

    :param data: the encoded file.
    :param sku: the item's SKU (only stored on the item).
    :param source: where ``data`` came from (only stored on the item and used in messages).
    :param max_pixels: the largest ``width * height`` accepted, checked on the header before decoding pixels.
    :returns: an item with ``image`` ``(H, W, 3)`` uint8 RGB, upright; ``alpha`` ``(H, W)`` uint8 when the file has
        transparency; ``meta`` with ``format`` (Pillow's name, e.g. ``"JPEG"``), ``source_mode`` (Pillow's pixel
        mode of the file, e.g. ``"CMYK"``), ``source_size`` (``(W, H)`` as decoded and made upright, before any
        stage), ``orientation`` (the EXIF orientation that was applied, 1 when none) and ``icc_profile`` (the
        embedded RGB ICC profile bytes, or ``None``; a CMYK or gray profile is dropped because it does not describe
        the RGB pixels).
    :raises InputError: empty, not an image, truncated or corrupt, over the pixel limit.
    """
    if not data:
        raise InputError("empty file")
    img = _open(data)
    width, height = img.size
    if width * height > max_pixels:
        raise InputError(pixel_limit_message(width, height, max_pixels))
    try:
        img.load()
    except Image.DecompressionBombError as exc:  # raised by some plugins (GIF frames, TIFF tiles) while loading
        raise InputError(f"image is over Pillow's decompression-bomb limit: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise InputError(f"truncated or corrupt image data: {exc}") from exc
    except MemoryError as exc:
        raise InputError(f"out of memory decoding a {width}x{height} {img.format} image") from exc
    try:
        return _to_item(img, sku=sku, source=source)
    except _DECODE_ERRORS as exc:
        raise InputError(f"could not convert {img.format} {img.mode} image to RGB: {exc}") from exc
    except MemoryError as exc:
        raise InputError(f"out of memory converting a {width}x{height} {img.format} image") from exc


def open_picture(path: str | os.PathLike[str], matte: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A picture a stage's parameters name (a backdrop, a style picture): the image file at ``path`` read by Pillow,
    EXIF orientation applied, any mode converted to RGB, transparency flattened over ``matte``.

    :return: ``(H, W, 3)`` uint8 RGB.
    :raises OSError, ValueError: the file is missing or not an image (Pillow's own errors; the caller names the
        parameter).
    """
    with Image.open(path) as opened:
        picture = ImageOps.exif_transpose(opened)
        picture.load()
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = np.asarray(picture.convert("RGBA"))
        return flatten_alpha(np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]), matte)
    return np.ascontiguousarray(np.asarray(picture.convert("RGB")))


def _open(data: bytes) -> ImageFile.ImageFile:
    """Read the header only, with the first of :data:`FORMATS` that accepts the data.

    This is ``PIL.Image.open`` restricted to the allow-list, minus its decompression-bomb check: the caller's
    ``max_pixels`` is the one limit, so it is checked (with a message naming ``input.max_pixels``) before any pixel is
    decoded, and a recipe may raise it above Pillow's global ``MAX_IMAGE_PIXELS``.
    """
    prefix = data[:16]
    for name in FORMATS:
        factory, accept = Image.OPEN[name]
        accepted = True if accept is None else accept(prefix)
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "recognised but unsupported" warning
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):  # what Image.open treats as "not this format"
            continue
        except Image.DecompressionBombError as exc:  # GIF checks frame sizes while reading the header
            raise InputError(f"image is over Pillow's decompression-bomb limit: {exc}") from exc
        except _DECODE_ERRORS as exc:
            raise InputError(f"truncated or corrupt image data: {exc}") from exc
    raise InputError(f"not a recognised image format (expected one of {', '.join(FORMATS)})")


def _to_item(img: ImageFile.ImageFile, *, sku: str, source: str) -> Item:
    mode = img.mode
    meta: dict[str, Any] = {"format": img.format, "source_mode": mode}
    icc = img.info.get("icc_profile")
    meta["icc_profile"] = icc if icc and icc[16:20] == b"RGB " else None  # ICC header bytes 16..19: colour space
    orientation = _orientation(img)

    alpha: Image.Image | np.ndarray | None = None
    # The hot path (JPEG, most PNG/WebP): np.asarray below copies Pillow's buffer once, nothing else.
    if mode == "RGB" and "transparency" not in img.info:
        rgb: Image.Image | np.ndarray = img
    elif mode in _16BIT_MODES or mode in ("I", "F"):
        rgb, alpha = _high_depth_gray(img)
    elif mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        rgb, alpha = rgba.convert("RGB"), rgba.getchannel("A")
    else:  # L, 1, P, CMYK (Pillow already un-inverts Adobe CMYK JPEGs), YCbCr, LAB, RGBX, ...
        rgb = img.convert("RGB")

    method = _TRANSPOSE.get(orientation)
    if method is None:
        orientation = 1
    else:
        rgb = _transpose(rgb, method)
        alpha = None if alpha is None else _transpose(alpha, method)
    image = np.asarray(rgb)
    meta["orientation"] = orientation
    meta["source_size"] = (image.shape[1], image.shape[0])
    return Item(sku=sku, source=source, image=image, alpha=None if alpha is None else np.asarray(alpha), meta=meta)


def _orientation(img: ImageFile.ImageFile) -> int:
    """The EXIF orientation (1..8), or 1 when absent or unreadable (a broken EXIF block does not fail the image)."""
    if img.format not in ("JPEG", "MPO", "PNG", "WEBP", "TIFF"):
        return 1
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def header_orientation(img: ImageFile.ImageFile) -> int:
    """The EXIF orientation (1..8) of an opened image, read without decoding its pixels; 1 when absent or unreadable.

    Pillow's ``getexif`` on a PNG decodes the whole image to look for an ``eXIf`` chunk after the pixel data (25 ms
    for a 1024 px PNG, ~0.4 s at 4000 px: a run's cost estimate reads 200 headers before its first item); here the
    chunks after the pixel data are found by their headers, seeking past every chunk's data."""
    if img.format != "PNG":
        return _orientation(img)
    data = img.info.get("exif")  # an eXIf chunk before the pixel data: Pillow read it when the file was opened
    if data is None:
        try:
            data = _png_chunk(img.fp, b"eXIf")
        except _DECODE_ERRORS:
            return 1
    if not data:
        return 1
    exif = Image.Exif()
    try:
        exif.load(data)
    except _DECODE_ERRORS:
        return 1
    value = exif.get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) else 1


def _png_chunk(fp: Any, kind: bytes) -> bytes | None:
    """The data of the first chunk of type ``kind`` in a PNG file object, walking the chunk headers from the start
    (seeking past each chunk's data; the file position is restored); ``None`` when the file ends without one."""
    where = fp.tell()
    try:
        fp.seek(8)  # past the signature
        while True:
            header = fp.read(8)
            if len(header) < 8:
                return None
            length, found = struct.unpack(">I4s", header)
            if found == kind:
                return fp.read(length)
            if found == b"IEND":
                return None
            fp.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    finally:
        fp.seek(where)


def _transpose(pixels: Image.Image | np.ndarray, method: Image.Transpose) -> Image.Image:
    if isinstance(pixels, np.ndarray):
        pixels = Image.fromarray(pixels)
    return pixels.transpose(method)


def _high_depth_gray(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit (``I;16*``), 32-bit integer (``I``, read as a 16-bit range) or float (``F``, read as 0..1 when its
    maximum is <= 1, else as 0..255) grayscale -> ``(H, W, 3)`` uint8 and the colour-key alpha if ``tRNS`` set one."""
    values = np.asarray(img)
    if img.mode == "F":
        scale = 255.0 if values.size and float(np.nanmax(values)) <= 1.0 else 1.0
        gray = np.clip(np.nan_to_num(values) * scale + 0.5, 0, 255).astype(np.uint8)
    else:
        wide = np.clip(values, 0, 65535).astype(np.uint32) if img.mode == "I" else values.astype(np.uint32)
        gray = ((wide + 128) // 257).astype(np.uint8)  # round(v / 257): 0..65535 -> 0..255
    alpha = None
    key = img.info.get("transparency")
    if isinstance(key, int):
        alpha = np.where(values == key, np.uint8(0), np.uint8(255))
    return np.repeat(gray[:, :, None], 3, axis=2), alpha
