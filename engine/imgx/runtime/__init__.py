"""The model runtime: backends behind one interface, ``auto`` selection, shape buckets, tiling, parity and model
stages.

Importing this package does not import torch; backends import it when they load.
"""

from __future__ import annotations

from ..arrays import pad_min, to_float, to_uint8, working_size  # re-exported: model stages import them from here
from ._common import onnx_run_options
from .base import Backend, BackendOptions
from .buckets import bucket_shape, crop, pad_to
from .factory import BackendChoice, auto_order, choose_backend, create_backend, resolve_backend
from .keys import cache_key, engines_dir
from .model_stage import ModelStage
from .tiling import run_tiled, tile_boxes

__all__ = [
    "Backend",
    "BackendChoice",
    "BackendOptions",
    "ModelStage",
    "auto_order",
    "bucket_shape",
    "cache_key",
    "choose_backend",
    "create_backend",
    "crop",
    "engines_dir",
    "onnx_run_options",
    "pad_min",
    "pad_to",
    "resolve_backend",
    "run_tiled",
    "tile_boxes",
    "to_float",
    "to_uint8",
    "working_size",
]
