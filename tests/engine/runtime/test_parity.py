"""parity.compare: the numbers bench and the tests report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _support import load_photo
from imgx.runtime.parity import compare


def test_differences_of_a_real_photo_and_a_shifted_copy() -> None:
    image = load_photo("astronaut").astype(np.float32) / 255
    shifted = np.clip(image + 0.01, 0, 1)
    result = compare(image, shifted)
    expected = np.abs(shifted.astype(np.float64) - image)
    assert result["max_abs"] == pytest.approx(expected.max()) and result["mean_abs"] == pytest.approx(expected.mean())
    assert result["nonfinite"] == 0
    assert compare(torch.from_numpy(image), torch.from_numpy(image).to(torch.bfloat16))["max_abs"] < 0.004


def test_nan_and_inf_are_counted_not_hidden() -> None:
    reference = np.zeros((2, 3, 4, 4), np.float32)
    other = reference.copy()
    other[0, 0, 0, 0], other[1, 2, 3, 3], other[1, 1, 1, 1] = np.nan, np.inf, 0.5
    result = compare(reference, other)
    assert result["nonfinite"] == 2 and result["max_abs"] == 0.5
    with pytest.raises(ValueError, match="same shape"):
        compare(reference, other[0])
