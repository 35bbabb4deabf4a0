"""The unit of work: one catalog image and what the stages made of it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Item", "ItemRef", "freeze"]


@dataclasses.dataclass(frozen=True, slots=True)
class ItemRef:
    """Where an item comes from, before anything is read: cheap to pickle and send to a worker.

    :param sku: the item's SKU (untrusted text: never used as a path without checks).
    :param source: a local path or a URI of the image.
    :param index: position in the catalog, used for stable ordering.
    :param error: set when the catalog itself makes this item unusable (empty SKU, duplicate SKU, empty image
        cell): the item becomes a failed ledger row without being read.
    """

    sku: str
    source: str
    index: int = 0
    error: str | None = None


def freeze(array: np.ndarray | None) -> np.ndarray | None:
    """Mark ``array`` read-only so a stage that writes into its input fails loudly instead of corrupting a sibling
    branch of the DAG (several nodes may read the same upstream image)."""
    if array is not None and array.flags.writeable:
        array.flags.writeable = False
    return array


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One image flowing through the DAG.

    :param sku: the item's SKU.
    :param source: where it was read from.
    :param image: ``(H, W, 3)`` uint8 RGB, read-only.
    :param alpha: optional ``(H, W)`` uint8 alpha/mask (255 = opaque product), read-only.
    :param meta: metadata: ``icc_profile`` (bytes, kept on encode), ``orientation`` (EXIF value that was applied),
        ``source_mode`` (the decoder's pixel mode), ``source_size`` ((W, H) before any stage).
    :param flags: short names of what a stage found wrong without failing the item (``fill_below_min``); they
        travel downstream and land in the ledger's ``flags`` column, prefixed with the node id that set them.
    :param metrics: what stages measured (``{"fill": 0.62}``): numbers or short strings, written as JSON to the
        ledger's ``metrics`` column with each key prefixed by its node id. Add both with :meth:`noted`.
    """

    sku: str
    source: str
    image: np.ndarray
    alpha: np.ndarray | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    flags: tuple[str, ...] = ()
    metrics: dict[str, float | int | str | None] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        image, alpha = self.image, self.alpha
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"got image {image.dtype} {image.shape} for item {self.sku!r}; expected (H, W, 3) uint8 RGB"
            )
        if alpha is not None and (alpha.dtype != np.uint8 or alpha.shape != image.shape[:2]):
            raise ValueError(
                f"got alpha {alpha.dtype} {alpha.shape} for item {self.sku!r}; expected {image.shape[:2]} uint8"
            )
        freeze(image)
        freeze(alpha)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the image."""
        return self.image.shape[1], self.image.shape[0]

    def replace(self, **changes: Any) -> Item:
        """A copy with some fields changed (``image=``, ``alpha=``, ``meta=``). ``meta`` is copied, so a stage
        that edits its copy never changes what a sibling branch of the DAG sees."""
        changes.setdefault("meta", dict(self.meta))
        changes.setdefault("metrics", dict(self.metrics))
        return dataclasses.replace(self, **changes)

    def noted(self, *flags: str, **metrics: float | int | str | None) -> Item:
        """A copy with ``flags`` and ``metrics`` added (a stage's measurements of this item: what it achieved, why it
        fell short); the processor writes them to the ledger. ``item.noted("fill_below_min", fill=0.48)``."""
        added = tuple(flag for flag in flags if flag not in self.flags)
        return self.replace(flags=(*self.flags, *added), metrics={**self.metrics, **metrics})
