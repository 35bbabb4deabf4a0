"""The ``text`` rule: PP-OCRv4 text detection (the real ``ch_PP-OCRv4_det_infer.onnx``, fetched from the pinned
rapidocr_onnxruntime wheel through the model registry) on real photos with captions drawn at known places, and the
rule's reading of it: text over the background breaks it, text printed on a masked product does not."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from _support import REPO, default_registry, frozen, load_photo
from imgx import Item, StageContext, StageError
from imgx_compliance import CheckMarketplace, CheckParams, builtin_pack, check_item, check_marketplace
from imgx_compliance.packs import Pack
from imgx_compliance.rules import TextSettings
from imgx_compliance.text import (
    MAX_SIDE,
    PPOCR_V4_DET,
    PPOCR_V4_DET_SHA256,
    TEXT_MODEL,
    TextDetector,
    boxes_from_probability,
    detector_input,
    model_file,
    share_outside,
)

# photos on which the detector finds no text (checked below); rocket (a lit sign on the pad) and grace_hopper (her
# name tag, stars on the flag) have some
CLEAN = ("coffee", "astronaut", "chelsea", "motorcycle", "china")
CAPTIONS = {
    "coffee": "SALE -50%",
    "astronaut": "NEW IN",
    "chelsea": "www.shop.com",
    "motorcycle": "BEST PRICE",
    "china": "FREE SHIPPING",
}
TEXT_ONLY = Pack("text-only", {"text": TextSettings()})
Box = tuple[int, int, int, int]  # x0, y0, x1, y1


@pytest.fixture(scope="session")
def onnx_file() -> Path:
    """The verified cached ``ch_PP-OCRv4_det_infer.onnx`` (pulled from the pinned wheel on first use)."""
    return model_file(default_registry())


@pytest.fixture(scope="session")
def detector(onnx_file: Path) -> TextDetector:
    return TextDetector(onnx_file, threads=2)


def caption(image: np.ndarray, text: str, x: int, y: int, height: int) -> tuple[np.ndarray, Box]:
    """``image`` with ``text`` drawn (OpenCV's Hershey simplex, about ``height`` px tall, its top left at x, y) in white
    on a dark spot or black on a light one, and the box of the pixels it changed (x0, y0, x1, y1): the ground truth."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, height / 22
    thickness = max(2, round(height / 10))
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    out = np.ascontiguousarray(image).copy()
    light = out[y : y + h + base, x : x + w].mean() > 128
    cv2.putText(out, text, (x, y + h), font, scale, (0, 0, 0) if light else (255, 255, 255), thickness, cv2.LINE_AA)
    rows, cols = np.nonzero((out != image).any(axis=2))
    return frozen(out), (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)


def bounds(box: np.ndarray) -> Box:
    (x0, y0), (x1, y1) = box.min(axis=0), box.max(axis=0)
    return int(x0), int(y0), int(x1), int(y1)


def area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def overlap(a: Box, b: Box) -> float:
    """Intersection over the area of ``b``: the share of ``b`` inside ``a``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0) / area(b)


def test_the_model_is_the_pinned_file_of_the_wheel(onnx_file: Path) -> None:
    (source,) = PPOCR_V4_DET.files["onnx"].sources
    assert source == "pip:rapidocr_onnxruntime==1.4.4#rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
    assert PPOCR_V4_DET.build is None and PPOCR_V4_DET.name == TEXT_MODEL == "ppocr-v4-det"
    assert onnx_file.stat().st_size == PPOCR_V4_DET.files["onnx"].size == 4_745_517
    assert hashlib.sha256(onnx_file.read_bytes()).hexdigest() == PPOCR_V4_DET_SHA256
    assert TEXT_MODEL in default_registry().models  # registered through the plugin's imgx_models hook


def test_input_is_bgr_in_minus_one_to_one_on_a_stride_of_32() -> None:
    red = np.zeros((2000, 1333, 3), np.uint8)
    red[..., 0] = 255
    x = detector_input(red)
    assert x.shape == (1, 3, 960, 640) and x.dtype == np.float32  # 1333 * 0.48 = 639.8 -> 640
    assert np.allclose(x[0, 2], 1.0) and np.allclose(x[0, :2], -1.0)  # R is the last channel (BGR)
    assert detector_input(np.zeros((400, 610, 3), np.uint8)).shape == (1, 3, 384, 608)  # never enlarged (12.5 -> 12)
    assert detector_input(np.zeros((10, 10, 3), np.uint8)).shape == (1, 3, 32, 32)
    assert max(detector_input(np.zeros((3000, 3000, 3), np.uint8)).shape[2:]) == MAX_SIDE


def test_db_post_processing_grows_each_region_and_scales_it_back() -> None:
    probability = np.zeros((96, 160), np.float32)
    probability[40:50, 20:100] = 0.9  # a text line, 80 x 10 network pixels
    probability[10:20, 120:130] = 0.9  # a square blob: not a line of text
    probability[70:80, 20:60] = 0.5  # a line the network is unsure of (mean below 0.6)
    (box,) = boxes_from_probability(probability, (192, 320))  # the original is twice the network's input
    x0, y0, x1, y1 = bounds(box)
    # the contour of the dilated 81 x 11 region grows by area * 1.6 / perimeter = 80 * 10 * 1.6 / 180 = 7.1 px a side
    assert (x0, y0, x1, y1) == pytest.approx((2 * 12.9, 2 * 32.9, 2 * 107.1, 2 * 57.1), abs=3)
    assert boxes_from_probability(np.zeros((32, 32), np.float32), (32, 32)).shape == (0, 4, 2)


def test_share_outside() -> None:
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True
    assert share_outside(np.array([[10, 10], [40, 10], [40, 20], [10, 20]], np.float32), mask) == 0.0
    assert share_outside(np.array([[30, 10], [70, 10], [70, 20], [30, 20]], np.float32), mask) == pytest.approx(
        0.5, abs=0.05
    )
    assert share_outside(np.array([[60, 60], [90, 60], [90, 70], [60, 70]], np.float32), mask) == 1.0


@pytest.mark.parametrize("name", CLEAN)
def test_captions_are_found_where_they_are_drawn_and_clean_photos_have_none(detector: TextDetector, name: str) -> None:
    photo = frozen(load_photo(name))
    assert detector(photo).shape == (0, 4, 2), f"{name}: text found on the clean photo"
    h, w = photo.shape[:2]
    captioned, truth = caption(photo, CAPTIONS[name], w // 16, h // 12, max(16, h // 14))
    boxes = detector(captioned)
    assert len(boxes) >= 1
    (found,) = [bounds(box) for box in boxes]  # one line of text, one box
    assert overlap(found, truth) > 0.9, (found, truth)  # the drawn text lies inside the box
    assert area(found) < 1.8 * area(truth), (found, truth)  # and the box is the text, not the photo around it


def test_the_text_of_a_photographed_page_is_found(detector: TextDetector) -> None:
    from skimage import data

    # a photographed book page (a title, 5 slightly tilted lines, 1 of code): the rectangle score keeps the title and
    # the straightest lines; one is enough for the rule
    page = frozen(np.dstack([data.page()] * 3))
    boxes = [bounds(box) for box in detector(page)]
    assert boxes and all(x1 - x0 > 3 * (y1 - y0) for x0, y0, x1, y1 in boxes), boxes  # lines, not blobs
    assert boxes[0][1] < 20 and boxes[0][2] - boxes[0][0] > 250  # the title, across the top
    assert [y0 for _, y0, _, _ in boxes] == sorted(y0 for _, y0, _, _ in boxes)  # reported top to bottom
    (finding,) = check_item(Item("page", "memory", page), [TEXT_ONLY], detector)
    assert finding.value == len(boxes)


def test_the_rule_fails_a_caption_and_passes_the_clean_photo(detector: TextDetector) -> None:
    photo = load_photo("astronaut")
    captioned, _ = caption(photo, "SALE -50%", 30, 30, 40)
    assert check_item(Item("clean", "memory", frozen(photo)), [TEXT_ONLY], detector) == []
    (finding,) = check_item(Item("caption", "memory", captioned), [TEXT_ONLY], detector)
    assert finding.rule == "text" and finding.value == 1 and finding.bound == "<= 0 text regions over the background"
    assert "1 text region(s) on the image (no product mask" in finding.message


def test_text_on_the_masked_product_is_allowed_text_beside_it_is_not(detector: TextDetector, compose) -> None:
    rgb, alpha = compose("coffee", size=1000)  # the photo spans 900 x 600 px, white above and below
    on_product, _ = caption(rgb, "ESPRESSO", 150, 260, 60)  # printed on the product
    beside, truth = caption(rgb, "ESPRESSO", 150, 60, 60)  # on the white background above it
    packs = [builtin_pack("amazon-main")]
    text = [f for f in check_item(Item("p", "memory", on_product, alpha), packs, detector) if f.rule == "text"]
    assert text == []
    (without_mask,) = [f for f in check_item(Item("p", "memory", on_product), packs, detector) if f.rule == "text"]
    assert without_mask.value == 1 and "no product mask" in without_mask.message
    (over,) = [f for f in check_item(Item("b", "memory", beside, alpha), packs, detector) if f.rule == "text"]
    assert over.value == 1 and "over the background, the first at x" in over.message
    x0, x1 = (int(v) for v in over.message.split(" at x ")[1].split(",")[0].split(".."))
    assert abs(x0 - truth[0]) <= 5 and abs(x1 - truth[2]) <= 5, (x0, x1, truth)
    two = Pack("two", {"text": TextSettings(max_regions=1)})
    assert check_item(Item("b", "memory", beside, alpha), [two], detector) == []
    # a box partly on the product counts by the share of it off the product: here about 70 %
    straddled = alpha.copy()
    straddled[: truth[3] + 20, : truth[0] + (truth[2] - truth[0]) * 3 // 10] = 255
    item = Item("s", "memory", beside, straddled)
    assert check_item(item, [Pack("half", {"text": TextSettings(outside=0.5)})], detector)[0].value == 1
    assert check_item(item, [Pack("most", {"text": TextSettings(outside=0.9)})], detector) == []


def test_the_packs_that_forbid_text() -> None:
    forbid = [
        name for name in ("amazon-main", "google-merchant", "zalando", "shopify") if "text" in builtin_pack(name).rules
    ]
    assert forbid == ["amazon-main", "google-merchant", "zalando"]  # Shopify is the merchant's own store
    assert builtin_pack("amazon-main").rules["text"].level == "error"


def test_the_stage_loads_its_detector_once_on_first_need_and_names_the_model() -> None:
    assert CheckMarketplace.models(CheckParams(rules=["amazon-main"])) == (TEXT_MODEL,)
    assert CheckMarketplace.models(CheckParams(rules=["shopify"])) == ()
    assert CheckMarketplace(CheckParams(rules=["shopify"])).text_detector is None
    stage = CheckMarketplace(
        CheckParams(rules=["google-merchant"], action="fail"), StageContext(registry=default_registry())
    )
    assert stage.text_detector is not None and not stage.text_detector.loaded
    photo = load_photo("chelsea")
    captioned, _ = caption(photo, "50% OFF", 20, 20, 30)
    (clean,) = stage([Item("clean", "memory", frozen(photo))])
    session = stage.text_detector._session
    assert clean.flags == () and session is not None
    with pytest.raises(StageError, match=r"text: got 1, expected <= 0 text regions over the background"):
        stage([Item("caption", "memory", captioned)])
    assert stage.text_detector._session is session  # the same session for every item
    stage.close()
    assert not stage.text_detector.loaded


def test_a_pack_without_the_text_rule_never_imports_onnxruntime() -> None:
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from imgx import Item
        from imgx_compliance import CheckMarketplace, CheckParams
        stage = CheckMarketplace(CheckParams(rules=["shopify"]))
        stage([Item("a", "memory", np.full((64, 64, 3), 200, np.uint8))])
        assert "onnxruntime" not in sys.modules, "onnxruntime imported"
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr


def test_check_marketplace_without_a_detector_uses_one_per_process() -> None:
    from imgx_compliance.text import default_detector

    photo = load_photo("motorcycle")
    captioned, _ = caption(photo, "LIMITED OFFER", 40, 30, 36)
    checked = check_marketplace(Item("m", "memory", captioned), [TEXT_ONLY])
    assert checked.flags == ("text",) and checked.metrics["text"] == 1
    assert default_detector().loaded and default_detector() is default_detector()
