"""Full-reference and no-reference measurements of an output: SSIM, PSNR, product CIEDE2000, sharpness, BRISQUE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageContext, StageError, StageParams
from imgx.arrays import by_row_strips

from .brisque import BRISQUE_MODEL, Brisque

__all__ = [
    "ALL_METRICS",
    "CHUNK_PIXELS",
    "METRICS",
    "Metric",
    "MetricsParams",
    "QualityMetrics",
    "measure",
    "product_delta_e",
    "psnr",
    "sharpness",
    "ssim",
]

Metric = Literal["ssim", "psnr", "product_delta_e", "sharpness", "brisque"]
#: What ``quality.metrics`` measures by default (the output hashes of existing recipes depend on it: never extend it).
METRICS: tuple[str, ...] = ("ssim", "psnr", "product_delta_e", "sharpness")
#: Every metric ``metrics:`` may name: the defaults and ``brisque`` (a model, fetched on first use), asked for by name.
ALL_METRICS: tuple[str, ...] = (*METRICS, "brisque")


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (OpenCV, float64): higher is sharper. ``image``: ``(H, W, 3)``
    uint8 RGB."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


#: Pixels per strip of rows (or chunk of product pixels) that the full-reference metrics go through
#: (:func:`imgx.arrays.by_row_strips`), so a 4000 px photo's float64 copies are never made whole: on a 12 MP photo
#: scikit-image's SSIM held ~1.5 GB at once and its CIEDE2000 of the product's pixels ~1 GB, which made
#: ``recipes/audience-variants.yaml`` peak at 3.3 GB per worker. The values are scikit-image's, to within float
#: summation order.
CHUNK_PIXELS = 1 << 18
_SSIM_PAD = 3  # scikit-image's default 7 x 7 window reads 3 pixels around each one and leaves them out of the mean


def _rows(height: int, width: int, least: int = 1) -> int:
    """Rows per strip: :data:`CHUNK_PIXELS` worth, and no last strip of fewer than ``least`` rows."""
    rows = max(least, CHUNK_PIXELS // max(1, width))
    while 0 < height % rows < least:
        rows += 1
    return rows


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """scikit-image's ``structural_similarity(image, reference, channel_axis=2, data_range=255)`` (a 7 x 7 uniform
    window, sample covariance, each channel's mean over the image less its 3 px border, averaged over channels) of
    two ``(H, W, C)`` uint8 images of one size: each channel's local SSIM is computed a strip of rows at a time (each
    strip with the 3 rows on either side that its windows read) and summed per row, so no float64 plane is whole."""
    # scikit-image is imported where a metric uses it: with SciPy it takes ~0.4 s, and every `imgx run` loads this
    # plugin to know its stages, used or not
    from skimage.metrics import structural_similarity

    h, w = image.shape[:2]

    def row_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # each row's local SSIM summed, less the side borders
        return structural_similarity(a, b, data_range=255, full=True)[1][:, _SSIM_PAD : w - _SSIM_PAD].sum(axis=1)

    rows = _rows(h, w, least=2 * _SSIM_PAD + 1)
    inner = (h - 2 * _SSIM_PAD) * (w - 2 * _SSIM_PAD)
    means = []
    for channel in range(image.shape[2]):
        sums = by_row_strips(row_sums, image[..., channel], reference[..., channel], reach=_SSIM_PAD, rows=rows)
        means.append(float(sums[_SSIM_PAD : h - _SSIM_PAD].sum(dtype=np.float64)) / inner)
    return float(np.mean(means))


def psnr(image: np.ndarray, reference: np.ndarray) -> float | None:
    """scikit-image's ``peak_signal_noise_ratio(reference, image, data_range=255)`` in dB, from the exact sum of
    squared differences (integers, a strip of rows at a time); ``None`` for identical images (JSON has no infinity)."""

    def squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        diff = a.astype(np.int32) - b  # at most 255 ** 2 squared: exact in int32, summed per row in int64
        return np.square(diff).reshape(len(diff), -1).sum(axis=1, dtype=np.int64)

    total = int(by_row_strips(squares, image, reference, rows=_rows(*image.shape[:2])).sum())
    if total == 0:
        return None
    return float(10 * np.log10(255.0**2 / (total / image.size)))


def product_delta_e(image: np.ndarray, reference: np.ndarray, keep: np.ndarray) -> float:
    """Mean CIEDE2000 (scikit-image's ``rgb2lab`` and ``deltaE_ciede2000``) between ``image`` and ``reference`` over
    the pixels where ``keep`` is True (at least one), :data:`CHUNK_PIXELS` pixels at a time."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return deltaE_ciede2000(rgb2lab(a[None]), rgb2lab(b[None]))[0]

    return float(by_row_strips(delta_e, image[keep], reference[keep], rows=CHUNK_PIXELS).mean(dtype=np.float64))


def _to_size(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if array.shape[1] == size[0] and array.shape[0] == size[1]:
        return array
    return cv2.resize(np.ascontiguousarray(array), size, interpolation=cv2.INTER_AREA)


def measure(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    reference_alpha: np.ndarray | None = None,
    metrics: tuple[str, ...] = METRICS,
    brisque: Callable[[np.ndarray], float | None] | None = None,
) -> dict[str, float | None]:
    """Measure ``image`` against ``reference``.

    The reference (and its alpha) is resized to the image's size (``cv2.INTER_AREA``) when sizes differ: the output
    is what ships, so it is measured as it is. SSIM is skimage's on RGB (``channel_axis=2``, ``data_range=255``);
    PSNR is skimage's in dB (``inf`` for identical images is reported as ``None``, since JSON has no infinity).
    ``product_delta_e`` is the mean CIEDE2000 between the Lab of the two images over product pixels (alpha >= 128 on
    the image's alpha, else the reference's); ``None`` when neither carries alpha or the mask is empty.
    ``brisque`` is the no-reference BRISQUE score of the image alone (RGB, alpha ignored; lower is better, about 0 to
    100; ``None`` for a picture it cannot fit, e.g. one flat colour), by the scorer given.

    :param image: ``(H, W, 3)`` uint8 RGB, the output measured.
    :param reference: ``(h, w, 3)`` uint8 RGB.
    :param alpha: ``(H, W)`` uint8 product mask of ``image``, or ``None``.
    :param reference_alpha: ``(h, w)`` uint8 product mask of ``reference``, or ``None``.
    :param metrics: which of :data:`ALL_METRICS` to compute.
    :param brisque: the BRISQUE scorer, needed when ``metrics`` names ``brisque``:
        :meth:`imgx_quality.Brisque.from_registry` (the ``brisque-live`` model).
    """
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"got metrics {unknown}; expected some of {list(ALL_METRICS)}")
    if "brisque" in metrics and brisque is None:
        raise ValueError("got metric brisque and no scorer; expected brisque=Brisque.from_registry(registry)")
    size = (image.shape[1], image.shape[0])
    ref = _to_size(reference, size)
    out: dict[str, float | None] = {}
    if "ssim" in metrics:
        out["ssim"] = ssim(image, ref)
    if "psnr" in metrics:
        out["psnr"] = psnr(image, ref)
    if "product_delta_e" in metrics:
        mask = alpha if alpha is not None else None
        if mask is None and reference_alpha is not None:
            mask = _to_size(reference_alpha, size)
        if mask is None or not (mask >= 128).any():
            out["product_delta_e"] = None
        else:
            out["product_delta_e"] = product_delta_e(image, ref, mask >= 128)
    if "sharpness" in metrics:
        out["sharpness"] = sharpness(image)
    if "brisque" in metrics and brisque is not None:
        out["brisque"] = brisque(image)
    return out


class MetricsParams(StageParams):
    """Parameters of ``quality.metrics``."""

    metrics: tuple[Metric, ...] = Field(
        default=METRICS,
        min_length=1,
        description="which measurements to take: ssim, psnr, product_delta_e, sharpness (the default: all four), "
        "and brisque (no-reference, lower is better; the brisque-live model, fetched on first use) when named",
    )


class QualityMetrics(Stage):
    """``quality.metrics``: ``needs: [measured, reference]``; notes the metrics on the measured item, unchanged."""

    name: ClassVar[str] = "quality.metrics"
    Params: ClassVar[type[StageParams]] = MetricsParams
    summary: ClassVar[str] = (
        "measure an output against a reference node (needs: [output, reference]): SSIM, PSNR, product CIEDE2000, "
        "sharpness; BRISQUE (no reference) when named; values go to the ledger's metrics"
    )
    inputs: ClassVar[int] = 2
    example: ClassVar[dict[str, Any]] = {"metrics": ["ssim", "psnr", "sharpness"]}
    params: MetricsParams

    def __init__(self, params: StageParams | None = None, context: StageContext | None = None) -> None:
        super().__init__(params, context)
        self._brisque: Brisque | None = None

    @classmethod
    def models(cls, params: StageParams) -> tuple[str, ...]:
        return (BRISQUE_MODEL,) if "brisque" in getattr(params, "metrics", ()) else ()

    def _scorer(self) -> Brisque | None:
        """The BRISQUE scorer when ``brisque`` is asked for: loaded through the run's registry on the first item,
        then kept for every later one."""
        if "brisque" not in self.params.metrics:
            return None
        if self._brisque is None:
            self._brisque = Brisque.from_registry(self.context.require_registry(self.name))
        return self._brisque

    def process(self, item: Item, *others: Item) -> Item:
        if len(others) != 1:
            raise StageError(f"got {len(others) + 1} input(s) for {self.name}; expected 2: needs: [output, reference]")
        reference = others[0]
        params = self.params
        values = measure(
            item.image,
            reference.image,
            alpha=item.alpha,
            reference_alpha=reference.alpha,
            metrics=tuple(params.metrics),
            brisque=self._scorer(),
        )
        return item.noted(**values)
