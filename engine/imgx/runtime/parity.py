"""How far a backend's output is from the reference (eager FP32) on the same input."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["compare"]


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, on any device and dtype
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def compare(reference: Any, other: Any) -> dict[str, float | int]:
    """Max and mean absolute difference of ``other`` from ``reference`` and the count of NaN/Inf in ``other``.

    Both are arrays or tensors of the same shape (``(B, C, H, W)`` float tensors or ``(H, W, C)`` arrays). Non-finite
    values are left out of the differences and counted in ``nonfinite``, so one NaN cannot hide the rest.

    :return: ``{"max_abs": float, "mean_abs": float, "nonfinite": int}``.
    """
    ref, out = _as_array(reference), _as_array(other)
    if ref.shape != out.shape:
        raise ValueError(f"got shapes {ref.shape} and {out.shape} to compare; expected the same shape")
    finite = np.isfinite(out)
    nonfinite = int(out.size - np.count_nonzero(finite))
    diff = np.abs(ref - out)[finite & np.isfinite(ref)]
    if diff.size == 0:
        return {"max_abs": float("nan"), "mean_abs": float("nan"), "nonfinite": nonfinite}
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "nonfinite": nonfinite}
