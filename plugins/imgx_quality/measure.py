"""Full-reference and no-reference measurements of an output: SSIM, PSNR, product CIEDE2000, sharpness, BRISQUE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from imgx import Item, Stage, StageContext, StageError, StageParams

from .brisque import BRISQUE_MODEL, Brisque

__all__ = ["ALL_METRICS", "METRICS", "Metric", "MetricsParams", "QualityMetrics", "measure", "sharpness"]

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
    # imported here: scikit-image (with scipy) takes ~0.4 s to import, and every `imgx run` loads this plugin to know
    # its stages, used or not
    from skimage.color import deltaE_ciede2000, rgb2lab
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    size = (image.shape[1], image.shape[0])
    ref = _to_size(reference, size)
    out: dict[str, float | None] = {}
    if "ssim" in metrics:
        out["ssim"] = float(structural_similarity(image, ref, channel_axis=2, data_range=255))
    if "psnr" in metrics:
        identical = np.array_equal(ref, image)  # skimage would divide by a zero error
        out["psnr"] = None if identical else float(peak_signal_noise_ratio(ref, image, data_range=255))
    if "product_delta_e" in metrics:
        mask = alpha if alpha is not None else None
        if mask is None and reference_alpha is not None:
            mask = _to_size(reference_alpha, size)
        if mask is None or not (mask >= 128).any():
            out["product_delta_e"] = None
        else:
            keep = mask >= 128
            lab_a = rgb2lab(image[keep][None])
            lab_b = rgb2lab(ref[keep][None])
            out["product_delta_e"] = float(deltaE_ciede2000(lab_a, lab_b).mean())
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
