"""``imgx bench`` feeds real photos: one per batch element, in 0..1, with grey and conditioning channels as stated."""

from __future__ import annotations

import pytest
import torch

from imgx.runtime.bench import CONDITION_FILL, bench_input


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_bench_input_is_real_photos_with_the_models_channels(channels: int) -> None:
    x = bench_input(48, 2, channels)
    assert x.shape == (2, channels, 48, 48) and x.dtype == torch.float32
    rgb = x[:, : min(channels, 3)]
    assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
    assert float(rgb.std()) > 0.05, "a photo, not a flat tensor"
    assert not torch.equal(x[0], x[1]), "each batch element is a different photo"
    if channels == 4:
        assert torch.all(x[:, 3] == CONDITION_FILL)
    if channels == 1:
        torch.testing.assert_close(x, bench_input(48, 2, 3).mean(dim=1, keepdim=True))
