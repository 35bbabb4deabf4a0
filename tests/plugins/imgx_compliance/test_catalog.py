"""Every known violation in the real-photo catalog is found with its rule id; the compliant files pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgx import Item
from imgx.io.decode import decode_image
from imgx_compliance import builtin_pack, check_item, product_fill, sharpness

# file name -> the one rule id amazon-main + google-merchant must report (None: compliant)
EXPECTED: dict[str, str | None] = {
    "ok-coffee.png": None,
    "ok-rocket.png": None,
    "ok-chelsea.tif": None,
    "grey-background.png": "background.white",
    "fill-50.png": "product.fill",
    "small-600.png": "size.min",
    "border-20.png": "border",
    "cropped.png": "product.cropped",
    "two-products.png": "product.count",
    "blurred.png": "blur",
    "cmyk.jpg": "color.space",
    "too-large.tif": "file.max_bytes",
}


def decoded(path: Path) -> Item:
    return decode_image(path.read_bytes(), sku=path.stem, source=str(path))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_breaks_exactly_its_rule(catalog: Path, name: str) -> None:
    packs = [builtin_pack("amazon-main"), builtin_pack("google-merchant")]
    findings = check_item(decoded(catalog / name), packs)
    expected = EXPECTED[name]
    assert [f.rule for f in findings] == ([expected] if expected else []), [f.as_dict() for f in findings]
    for finding in findings:
        assert finding.bound and finding.message and finding.value is not None


def test_findings_carry_measured_values(catalog: Path) -> None:
    amazon = [builtin_pack("amazon-main")]
    (fill,) = check_item(decoded(catalog / "fill-50.png"), amazon)
    assert fill.value == pytest.approx(0.5, abs=0.01) and fill.bound == ">= 0.85"
    (size,) = check_item(decoded(catalog / "small-600.png"), amazon)
    assert size.value == "600x600" and "1000" in size.bound
    (border,) = check_item(decoded(catalog / "border-20.png"), amazon)
    assert border.value == 20
    (count,) = check_item(decoded(catalog / "two-products.png"), amazon)
    assert count.value == 2
    (grey,) = check_item(decoded(catalog / "grey-background.png"), amazon)
    assert grey.value == 0.0
    (large,) = check_item(decoded(catalog / "too-large.tif"), [builtin_pack("google-merchant")])
    assert large.value == (catalog / "too-large.tif").stat().st_size > 16_000_000


def test_without_alpha_the_mask_comes_from_non_white_pixels(compose) -> None:
    rgb, alpha = compose("coffee", size=400, fill=0.6)
    with_alpha = product_fill(alpha >= 128)
    findings = check_item(Item("coffee", "memory", rgb), [builtin_pack("amazon-main")])
    fill = next(f for f in findings if f.rule == "product.fill")
    assert fill.value == pytest.approx(with_alpha, abs=0.01) == pytest.approx(0.6, abs=0.01)


def test_blur_lowers_sharpness(compose) -> None:
    sharp, alpha = compose("coffee", size=600)
    blurred, _ = compose("coffee", size=600, blur=4.0)
    mask = np.asarray(alpha) >= 128
    assert sharpness(blurred, mask) < 20 <= sharpness(sharp, mask)
    assert sharpness(np.full((50, 80, 3), 255, np.uint8)) == 0.0


def test_zalando_and_shopify(tmp_path: Path, compose) -> None:
    rgb, _ = compose("coffee", size=1100)
    portrait = np.full((1100, 764, 3), 255, np.uint8)
    portrait[200:900, 40:724] = rgb[200:900, 200:884]
    path = tmp_path / "portrait.jpg"
    Image.fromarray(portrait).save(path, quality=95, subsampling=0)
    zalando, shopify = builtin_pack("zalando"), builtin_pack("shopify")
    assert check_item(decoded(path), [zalando]) == []
    square = tmp_path / "square.png"
    Image.fromarray(rgb).save(square)
    assert [f.rule for f in check_item(decoded(square), [zalando])] == ["aspect", "format"]
    (warning,) = check_item(decoded(path), [shopify])
    assert warning.rule == "aspect" and warning.level == "warning"
    assert check_item(decoded(square), [shopify]) == []


def test_an_animated_gif_breaks_the_format_rule(tmp_path: Path, compose) -> None:
    rgb, _ = compose("rocket", size=1000)
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[:, ::-1].copy())]
    still, animated = tmp_path / "still.gif", tmp_path / "animated.gif"
    frames[0].save(still)
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=200, loop=0)
    amazon = [builtin_pack("amazon-main")]
    assert "format" not in [f.rule for f in check_item(decoded(still), amazon)]
    (fmt,) = [f for f in check_item(decoded(animated), amazon) if f.rule == "format"]
    assert fmt.value == "GIF (2 frames)" and "not animated" in fmt.bound
