"""The bad-input zoo: one small file per kind of input a real catalog holds, and what decoding each must give.

:func:`write_bad_input_zoo` writes one small file per kind of input a real catalog contains (good files, odd pixel
modes, rotated photos, truncated, empty and fake files, a huge image) and says what decoding each must give. The
executor tests and the demo run a catalog over the zoo and check every row of the results ledger.

A missing path is not in the zoo (there is no file to write): callers test it separately by adding a source that
does not exist, which must fail with ``"source not found"``.

Needs scikit-image (a dependency of imgx) for the photo.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import struct
import zlib
from collections.abc import Callable
from typing import Literal

import numpy as np
from PIL import Image

__all__ = ["ZooCase", "write_bad_input_zoo", "zoo_photo"]

_ORIENTATION_TAG = 0x0112


@dataclasses.dataclass(frozen=True)
class ZooCase:
    """One file of the zoo and what decoding it must give.

    :param name: the file name, relative to the zoo folder.
    :param expect: ``"ok"`` (decodes) or ``"failed"`` (raises :class:`imgx.InputError`).
    :param reason: for ``"failed"``: a lower-case substring of the error message.
    :param size: for ``"ok"``: the decoded, upright ``(W, H)``.
    :param has_alpha: for ``"ok"``: whether the decoded item has an alpha channel.
    """

    name: str
    expect: Literal["ok", "failed"]
    reason: str | None
    size: tuple[int, int] | None
    has_alpha: bool = False


def zoo_photo(base_size: int = 96) -> np.ndarray:
    """The zoo's photo: scikit-image's ``coffee.png`` resized to ``base_size`` wide, 2:3 high (non-square, so a
    rotation shows in the size). ``(H, W, 3)`` uint8 RGB."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the bad-input zoo needs scikit-image: pip install scikit-image") from exc
    height = max(2, round(base_size * 2 / 3))
    photo = Image.fromarray(data.coffee()).resize((base_size, height), Image.Resampling.LANCZOS)
    return np.asarray(photo)


def write_bad_input_zoo(directory: pathlib.Path, *, base_size: int = 96) -> list[ZooCase]:
    """Write the zoo into ``directory`` (created if missing) and return its cases, one file each.

    Every good case decodes to ``(base_size, round(base_size * 2 / 3))``; the EXIF-rotated ones are stored
    transposed so that applying their orientation gives the upright photo back.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rgb = zoo_photo(base_size)
    height, width = rgb.shape[:2]
    size = (width, height)
    photo = Image.fromarray(rgb)
    gray = photo.convert("L")
    # A soft, non-trivial matte: opaque centre, transparent corners (a product cut-out in miniature).
    yy, xx = np.mgrid[0:height, 0:width]
    radius = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2))
    matte = np.clip((1.2 - radius) * 400, 0, 255).astype(np.uint8)

    good_jpeg = _encode(photo, "JPEG", quality=90)
    good_png = _encode(photo, "PNG")

    def rgba_png() -> bytes:
        rgba = photo.copy()
        rgba.putalpha(Image.fromarray(matte))
        return _encode(rgba, "PNG")

    def la_png() -> bytes:
        la = gray.copy()
        la.putalpha(Image.fromarray(matte))
        return _encode(la, "PNG")

    def palette_transparent_png() -> bytes:
        palette = photo.quantize(colors=255)
        pixels = np.array(palette)
        pixels[matte < 128] = 255  # index 255 is unused by the 255-colour quantisation: make it the transparent one
        image = Image.fromarray(pixels, mode="P")
        colours = (palette.getpalette() + [0] * 765)[:765]
        image.putpalette([*colours, 255, 255, 255])  # 256 entries, so index 255 exists and tRNS covers it
        return _encode(image, "PNG", transparency=255)

    def rgb16_png() -> bytes:
        import cv2

        ok, encoded = cv2.imencode(".png", rgb[:, :, ::-1].astype(np.uint16) * 257)  # BGR, 16 bits per channel
        if not ok:  # pragma: no cover
            raise RuntimeError("cv2 could not write a 16-bit PNG")
        return encoded.tobytes()

    def rotated_jpeg(orientation: int) -> bytes:
        inverse = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90}[orientation]
        exif = Image.Exif()
        exif[_ORIENTATION_TAG] = orientation
        return _encode(photo.transpose(inverse), "JPEG", quality=90, exif=exif.tobytes())

    def animated(fmt: str) -> bytes:
        frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), photo.transpose(Image.Transpose.ROTATE_180)]
        return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)

    writers: list[tuple[ZooCase, Callable[[], bytes]]] = [
        (ZooCase("good.jpg", "ok", None, size), lambda: good_jpeg),
        (ZooCase("good.png", "ok", None, size), lambda: good_png),
        (ZooCase("good.webp", "ok", None, size), lambda: _encode(photo, "WEBP", quality=90)),
        (ZooCase("unicode-café-靴.jpg", "ok", None, size), lambda: good_jpeg),
        (ZooCase("cmyk.jpg", "ok", None, size), lambda: _encode(photo.convert("CMYK"), "JPEG", quality=95)),
        (ZooCase("gray.jpg", "ok", None, size), lambda: _encode(gray, "JPEG", quality=90)),
        (
            ZooCase("gray16.png", "ok", None, size),
            lambda: _encode(Image.fromarray(np.asarray(gray, np.uint16) * 257), "PNG"),
        ),
        (ZooCase("rgb16.png", "ok", None, size), rgb16_png),
        (ZooCase("bilevel.png", "ok", None, size), lambda: _encode(gray.convert("1"), "PNG")),
        (ZooCase("palette.png", "ok", None, size), lambda: _encode(photo.quantize(colors=64), "PNG")),
        (ZooCase("palette-transparent.png", "ok", None, size, has_alpha=True), palette_transparent_png),
        (ZooCase("rgba.png", "ok", None, size, has_alpha=True), rgba_png),
        (ZooCase("la.png", "ok", None, size, has_alpha=True), la_png),
        (ZooCase("orientation-6.jpg", "ok", None, size), lambda: rotated_jpeg(6)),
        (ZooCase("orientation-3.jpg", "ok", None, size), lambda: rotated_jpeg(3)),
        (ZooCase("animated.gif", "ok", None, size), lambda: animated("GIF")),
        (ZooCase("animated.webp", "ok", None, size), lambda: animated("WEBP")),
        (ZooCase("truncated.jpg", "failed", "truncated", None), lambda: good_jpeg[: len(good_jpeg) // 2]),
        (ZooCase("truncated.png", "failed", "truncated", None), lambda: good_png[: len(good_png) // 2]),
        (ZooCase("empty.jpg", "failed", "empty file", None), lambda: b""),
        (
            ZooCase("not-an-image.jpg", "failed", "not a recognised image format", None),
            lambda: b"SKU,price\nshoes/red-1,49.99\n",
        ),
        (ZooCase("huge.png", "failed", "input.max_pixels", None), lambda: _huge_png(30_000, 30_000)),
    ]
    cases = []
    for case, write in writers:
        (directory / case.name).write_bytes(write())
        cases.append(case)
    return cases


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _huge_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width x height`` RGB, with one tiny IDAT: a few hundred bytes on disk, and any
    decoder that trusts the header before checking a pixel limit would allocate ``width * height * 3`` bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    row = b"\x00" + b"\xc8\x80\x50" * width  # filter byte + one row of a flat colour
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row, 9)) + chunk(b"IEND", b"")
