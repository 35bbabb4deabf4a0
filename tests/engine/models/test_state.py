"""``load_state_strict``: a port takes exactly its own tensors, or says what differs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imgx.models import load_state_strict


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))


def test_a_matching_state_loads_as_float32() -> None:
    source = net().half()
    target = load_state_strict(net(), source.state_dict(), "a test net")
    for key, value in target.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, source.state_dict()[key].float())


def test_missing_unexpected_and_reshaped_tensors_are_named() -> None:
    state = net().state_dict()
    with pytest.raises(ValueError, match=r"missing \['2.bias'\] and unexpected \[\] .* the 4 tensors of a test net"):
        load_state_strict(net(), {k: v for k, v in state.items() if k != "2.bias"}, "a test net")
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        load_state_strict(net(), {**state, "extra": torch.zeros(1)}, "a test net")
    with pytest.raises(ValueError, match=r"got shape \(4, 3, 1, 1\) for 0.weight; expected \(4, 3, 3, 3\)"):
        load_state_strict(net(), {**state, "0.weight": torch.zeros(4, 3, 1, 1)}, "a test net")
    with pytest.raises(ValueError, match=r"got shape list for 0.bias"):
        load_state_strict(net(), {**state, "0.bias": [0.0] * 4}, "a test net")
