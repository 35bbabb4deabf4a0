"""Marketplace image rules: each a small function with a stable id that measures one thing and compares it to a bound.

A rule takes the item's :class:`Facts` and its settings (a pydantic model, unknown keys rejected) and returns a
:class:`Finding` when the image breaks it, ``None`` when it passes or when the fact it needs is not known (a file size
for an image that was never a local file, text boxes for facts built without a text detector). Arrays are
``(H, W, 3)`` uint8 RGB and ``(H, W)`` bool masks.

The ``text`` rule reads the boxes of a text detector (:class:`imgx_compliance.text.TextDetector`, PP-OCRv4 on ONNX
Runtime), run only when the rule asks for them (:attr:`Facts.text_boxes`), once per item whatever the number of packs.
Marketplaces allow text printed on the product (a label on a bottle) and refuse text over the background (a caption,
a watermark, a promotional badge): with a product mask in the item's alpha, a text box counts when more than
``outside`` (half) of its area lies outside the mask; with no alpha, every text box counts (the near-white estimate of
the product would hold dark text on a white background).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imgx import Item

from .text import share_outside

__all__ = ["RULES", "Facts", "Finding", "RuleSettings", "facts_of", "rule_ids"]

Level = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken rule: its id, what was measured, the bound it missed, a sentence, and ``error`` or ``warning``."""

    rule: str
    value: float | int | str
    bound: str
    message: str
    level: Level = "error"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the rules read about one image.

    :param image: ``(H, W, 3)`` uint8 RGB as it leaves the last stage.
    :param mask: ``(H, W)`` bool, True on the product: ``Item.alpha >= 128`` when the item has alpha (from
        ``segment.product``), else every pixel that is not near-white (``mask_source`` says which).
    :param file_format: Pillow's name of the source file's format (``meta["format"]``), or None.
    :param source_mode: Pillow's pixel mode of the source file (``"CMYK"``), or None.
    :param icc_profile: the RGB ICC profile the item carries, or None (then sRGB is assumed, as browsers do).
    :param file_bytes: size of the source file when it is a local file, else None.
    :param frames: frames in the source file (an animated GIF has more than 1) when it is a local file, else None.
    :param text_detector: ``detector(image) -> (N, 4, 2)`` float32 text rectangles (corner x, y in the image's
        pixels), run the first time :attr:`text_boxes` is read; None: the text rule cannot look (it passes).
    """

    image: np.ndarray
    mask: np.ndarray
    mask_source: str
    file_format: str | None = None
    source_mode: str | None = None
    icc_profile: bytes | None = None
    file_bytes: int | None = None
    frames: int | None = None
    text_detector: Callable[[np.ndarray], np.ndarray] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    @functools.cached_property
    def text_boxes(self) -> np.ndarray | None:
        """``(N, 4, 2)`` float32 text rectangles found on the image (detected once, on first use), or None without a
        detector."""
        return None if self.text_detector is None else self.text_detector(self.image)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


NEAR_WHITE = 250  # a pixel with every channel at or above this counts as background when no alpha is given


def facts_of(item: Item, text_detector: Callable[[np.ndarray], np.ndarray] | None = None) -> Facts:
    """The facts of ``item``: its pixels, its mask (alpha or near-white estimate) and what the decoder recorded; its
    text boxes come from ``text_detector`` when a rule reads them."""
    if item.alpha is not None:
        mask, source = item.alpha >= 128, "alpha"
    else:
        mask, source = (item.image < NEAR_WHITE).any(axis=2), "pixels"
    file_bytes = frames = None
    if os.path.isfile(item.source):  # a URI or an in-memory item: the file facts stay unknown (no violation)
        file_bytes = os.path.getsize(item.source)
        if item.meta.get("format") == "GIF":
            with Image.open(item.source) as img:
                frames = int(getattr(img, "n_frames", 1))
    return Facts(
        image=item.image,
        mask=mask,
        mask_source=source,
        file_format=item.meta.get("format"),
        source_mode=item.meta.get("source_mode"),
        icc_profile=item.meta.get("icc_profile"),
        file_bytes=file_bytes,
        frames=frames,
        text_detector=text_detector,
    )


class RuleSettings(BaseModel):
    """Settings every rule has: ``level`` (error fails or flags the item; warning only flags it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Level = Field("error", description="error: the item breaks the pack; warning: a recommendation, flag only")


class SizeMin(RuleSettings):
    longest: int | None = Field(None, ge=1, description="smallest allowed longest side in px")
    width: int | None = Field(None, ge=1, description="smallest allowed width in px")
    height: int | None = Field(None, ge=1, description="smallest allowed height in px")


class SizeMax(RuleSettings):
    longest: int | None = Field(None, ge=1, description="largest allowed longest side in px")
    megapixels: float | None = Field(None, gt=0, description="largest allowed width x height in millions of pixels")


class MaxBytes(RuleSettings):
    max_bytes: int = Field(..., ge=1, description="largest allowed file size in bytes")


class FormatSettings(RuleSettings):
    allowed: list[str] = Field(..., min_length=1, description="Pillow format names: JPEG, PNG, TIFF, GIF, WEBP")
    animated: bool = Field(False, description="whether an animated (multi-frame) GIF is allowed")


class AspectSettings(RuleSettings):
    ratio: float = Field(..., gt=0, description="width / height wanted (1:1.44 portrait is 1/1.44 = 0.694)")
    tolerance: float = Field(0.02, ge=0, description="allowed relative difference from ratio (0.02 = 2 %)")


class ColorSpace(RuleSettings):
    pass


class WhiteBackground(RuleSettings):
    tolerance: int = Field(0, ge=0, le=255, description="a background pixel is white when every channel >= 255 - this")
    min_share: float = Field(0.99, ge=0, le=1, description="least share of background pixels that must be white")
    margin: float = Field(
        0.01, ge=0, le=0.2, description="band around the product left out (anti-aliased edge), share of longest side"
    )


class Fill(RuleSettings):
    min: float = Field(0.85, gt=0, le=1, description="least share of the frame's width or height the product spans")


class Cropped(RuleSettings):
    min_share: float = Field(
        0.005, ge=0, le=1, description="share of an edge's pixels on the product for the edge to count as touched"
    )


class Count(RuleSettings):
    max: int = Field(1, ge=1, description="most separate objects allowed")
    min_area: float = Field(
        0.05, gt=0, le=1, description="an object counts when its area is at least this share of the largest one"
    )


class Border(RuleSettings):
    max_px: int = Field(0, ge=0, description="widest uniform frame allowed around the image, px")


class Blur(RuleSettings):
    min: float = Field(
        20.0, ge=0, description="least sharpness (variance of the Laplacian of grey 0..255, image scaled to 512 px)"
    )


def _size_min(f: Facts, s: SizeMin) -> Finding | None:
    bounds = []
    if s.longest is not None and max(f.width, f.height) < s.longest:
        bounds.append(f"longest side >= {s.longest}")
    if s.width is not None and f.width < s.width:
        bounds.append(f"width >= {s.width}")
    if s.height is not None and f.height < s.height:
        bounds.append(f"height >= {s.height}")
    return _size_finding("size.min", f, bounds)


def _size_max(f: Facts, s: SizeMax) -> Finding | None:
    bounds = []
    if s.longest is not None and max(f.width, f.height) > s.longest:
        bounds.append(f"longest side <= {s.longest}")
    if s.megapixels is not None and f.width * f.height > s.megapixels * 1e6:
        bounds.append(f"<= {s.megapixels:g} MP")
    return _size_finding("size.max", f, bounds)


def _size_finding(rule: str, f: Facts, bounds: list[str]) -> Finding | None:
    """The finding of a size rule whose ``bounds`` the image breaks; ``None`` when it breaks none."""
    if not bounds:
        return None
    bound = ", ".join(bounds)
    return Finding(rule, f"{f.width}x{f.height}", bound, f"image is {f.width}x{f.height} px; needs {bound}")


def _max_bytes(f: Facts, s: MaxBytes) -> Finding | None:
    if f.file_bytes is None or f.file_bytes <= s.max_bytes:
        return None
    bound = f"<= {s.max_bytes}"
    return Finding("file.max_bytes", f.file_bytes, bound, f"file is {f.file_bytes} bytes; needs {bound}")


def _format(f: Facts, s: FormatSettings) -> Finding | None:
    if f.file_format is None:
        return None
    allowed = [name.upper() for name in s.allowed]
    animated = f.file_format == "GIF" and (f.frames or 1) > 1
    bound = " | ".join(allowed) + ("" if s.animated else ", not animated")
    if f.file_format.upper() not in allowed:
        return Finding("format", f.file_format, bound, f"file is {f.file_format}; needs {bound}")
    if animated and not s.animated:
        value = f"GIF ({f.frames} frames)"
        return Finding("format", value, bound, f"file is an animated {value}; needs {bound}")
    return None


def _aspect(f: Facts, s: AspectSettings) -> Finding | None:
    ratio = f.width / f.height
    if abs(ratio / s.ratio - 1) <= s.tolerance:
        return None
    bound = f"width/height = {s.ratio:.3f} +- {s.tolerance:.0%}"
    return Finding("aspect", round(ratio, 4), bound, f"width/height is {ratio:.3f}; needs {bound}", s.level)


def _is_srgb(icc: bytes) -> bool:
    # the profile's description tag names it: ASCII in ICC v2 ('desc'), UTF-16BE in v4 ('mluc')
    return b"sRGB" in icc or "sRGB".encode("utf-16-be") in icc


def _color_space(f: Facts, s: ColorSpace) -> Finding | None:
    if f.source_mode == "CMYK":
        value = "CMYK"
    elif f.icc_profile is not None and not _is_srgb(f.icc_profile):
        value = "RGB with a non-sRGB ICC profile"
    else:
        return None
    return Finding("color.space", value, "sRGB", f"image is {value}; needs sRGB")


def _white_background(f: Facts, s: WhiteBackground) -> Finding | None:
    from scipy import ndimage  # here, not at the top: SciPy's 0.2 s import is every imgx command's that loads plugins

    margin = round(s.margin * max(f.width, f.height))
    near = ndimage.maximum_filter(f.mask.astype(np.uint8), size=2 * margin + 1) if margin else f.mask
    background = ~near.astype(bool)
    frame = border_width(f.image)  # a frame is the border rule's finding: not counted twice as a grey background
    if frame:
        background[:frame], background[-frame:], background[:, :frame], background[:, -frame:] = (
            False,
            False,
            False,
            False,
        )
    total = int(background.sum())
    if total == 0:
        return None  # the product fills the frame: product.fill / product.cropped speak for it
    white = (f.image[background] >= 255 - s.tolerance).all(axis=1)
    share = float(white.mean())
    if share >= s.min_share:
        return None
    bound = f">= {s.min_share} of background pixels >= {255 - s.tolerance}"
    return Finding(
        "background.white", round(share, 4), bound, f"{share:.1%} of the background is pure white; needs {bound}"
    )


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def product_fill(mask: np.ndarray) -> float:
    """How much of the frame the product spans: its bounding box's larger share of the frame's width or height."""
    box = _bbox(mask)
    if box is None:
        return 0.0
    top, bottom, left, right = box
    return max((bottom - top) / mask.shape[0], (right - left) / mask.shape[1])


def _fill(f: Facts, s: Fill) -> Finding | None:
    fill = product_fill(f.mask)
    if fill >= s.min:
        return None
    bound = f">= {s.min}"
    return Finding("product.fill", round(fill, 4), bound, f"product spans {fill:.0%} of the frame; needs {bound}")


def _cropped(f: Facts, s: Cropped) -> Finding | None:
    m = f.mask
    edges = {"top": m[0], "bottom": m[-1], "left": m[:, 0], "right": m[:, -1]}
    touched = [name for name, line in edges.items() if line.mean() > s.min_share]
    if not touched:
        return None
    return Finding(
        "product.cropped", len(touched), "0 edges", f"product touches the frame's {', '.join(touched)} edge(s)"
    )


def _count(f: Facts, s: Count) -> Finding | None:
    from scipy import ndimage

    labels, n = ndimage.label(f.mask)
    if n <= s.max:
        return None
    areas = np.bincount(labels.ravel())[1:]
    objects = int((areas >= s.min_area * areas.max()).sum())
    if objects <= s.max:
        return None
    bound = f"<= {s.max}"
    return Finding("product.count", objects, bound, f"{objects} separate objects in the image; needs {bound}")


def border_width(image: np.ndarray, spread: float = 6.0, differ: float = 20.0) -> int:
    """Width in px of a uniform frame drawn around ``image`` ((H, W, 3) uint8), 0 when there is none.

    A frame is a band of one colour, the same width (within 2 px) on all four sides, whose next line inwards mostly
    differs from it: a plain background that runs on until the product is not a frame.
    """
    img = image.astype(np.int16)
    h, w = img.shape[:2]
    colour = img[0, 0]
    sides = [img, img[::-1], img.transpose(1, 0, 2), img.transpose(1, 0, 2)[::-1]]  # top, bottom, left, right
    widths = []
    for side in sides:
        limit = side.shape[0] // 4
        width = 0
        while width < limit and np.abs(side[width] - colour).max(axis=1).mean() < spread:
            width += 1
        if width == 0 or width >= limit:
            return 0
        inner = np.abs(side[width] - colour).max(axis=1) > differ
        if inner.mean() < 0.5:
            return 0
        widths.append(width)
    return max(widths) if max(widths) - min(widths) <= 2 and h > 8 and w > 8 else 0


def _border(f: Facts, s: Border) -> Finding | None:
    width = border_width(f.image)
    if width <= s.max_px:
        return None
    bound = f"<= {s.max_px} px"
    return Finding("border", width, bound, f"a {width} px frame surrounds the image; needs {bound}")


def sharpness(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the grey image (0..255) scaled so its longest side is 512 px (size-independent),
    taken inside the product's ``(H, W)`` bool ``mask`` (shrunk 2 px, so its outline, sharp on any cut-out, does not
    count) when it covers enough pixels, else over the whole image."""
    from scipy import ndimage

    grey = Image.fromarray(image).convert("L")
    scale = 512 / max(grey.size)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    laplace = ndimage.laplace(np.asarray(grey.resize(size, Image.Resampling.BOX), np.float32))
    if mask is not None:
        small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
        inside = ndimage.binary_erosion(small, iterations=2)
        if inside.sum() >= 64:
            return float(laplace[inside].var())
    return float(laplace.var())


def _blur(f: Facts, s: Blur) -> Finding | None:
    value = sharpness(f.image, f.mask)
    if value >= s.min:
        return None
    bound = f">= {s.min}"
    return Finding("blur", round(value, 2), bound, f"sharpness is {value:.1f}; needs {bound} (the image looks blurred)")


class TextSettings(RuleSettings):
    max_regions: int = Field(
        0, ge=0, description="most text regions allowed over the background (on the whole image without a mask)"
    )
    outside: float = Field(
        0.5, ge=0, lt=1, description="a text region is over the background when more than this share of it is off"
    )


def _text(f: Facts, s: TextSettings) -> Finding | None:
    boxes = f.text_boxes
    if boxes is None:
        return None
    masked = f.mask_source == "alpha"
    counted = [box for box in boxes if not masked or share_outside(box, f.mask) > s.outside]
    if len(counted) <= s.max_regions:
        return None
    x0, y0 = np.floor(counted[0].min(axis=0)).astype(int)
    x1, y1 = np.ceil(counted[0].max(axis=0)).astype(int)
    where = "over the background" if masked else "on the image (no product mask: text on the product counts too)"
    bound = f"<= {s.max_regions} text regions over the background"
    return Finding(
        "text",
        len(counted),
        bound,
        f"{len(counted)} text region(s) {where}, the first at x {x0}..{x1}, y {y0}..{y1} px; needs {bound}",
    )


Rule = Callable[[Facts, Any], "Finding | None"]

RULES: dict[str, tuple[Rule, type[RuleSettings]]] = {
    "size.min": (_size_min, SizeMin),
    "size.max": (_size_max, SizeMax),
    "file.max_bytes": (_max_bytes, MaxBytes),
    "format": (_format, FormatSettings),
    "aspect": (_aspect, AspectSettings),
    "color.space": (_color_space, ColorSpace),
    "background.white": (_white_background, WhiteBackground),
    "product.fill": (_fill, Fill),
    "product.cropped": (_cropped, Cropped),
    "product.count": (_count, Count),
    "border": (_border, Border),
    "blur": (_blur, Blur),
    "text": (_text, TextSettings),
}


def rule_ids() -> list[str]:
    """Every rule id, in a stable order."""
    return list(RULES)
