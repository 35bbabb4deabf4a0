"""Strict loading of a PyTorch state dict into a port, with messages that say what differs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

__all__ = ["load_state_strict"]

M = TypeVar("M", bound="torch.nn.Module")


def load_state_strict(module: M, state: Mapping[str, Any], what: str) -> M:
    """Fill ``module`` from ``state``: exactly its keys, every value a tensor of the same shape, cast to float32.

    :param what: names the network in messages, e.g. ``"FFDNet colour (12 convs x 96 channels)"``.
    :raises ValueError: "got missing [...] and unexpected [...] keys ...; expected exactly the N tensors of WHAT", or
        "got shape S for KEY; expected T" (checked before ``load_state_dict(strict=True)``, which says the same less
        plainly).
    :return: ``module``, loaded.
    """
    import torch

    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"got missing {missing} and unexpected {unexpected} keys in the state dict; expected exactly the "
            f"{len(expected)} tensors of {what}"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"got shape {shape} for {key}; expected {tuple(expected[key].shape)}")
    module.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    return module
