"""imgx: a batch image engine for e-commerce catalogs.

The public plugin API is what this module exports: write a :class:`Stage` with a :class:`StageParams` model and
register it from a ``@hookimpl`` of ``imgx_stages``.
"""

from __future__ import annotations

from .errors import BackendError, ImgxError, InputError, OutputError, PluginError, RecipeError, StageError
from .hookspecs import hookimpl
from .item import Item, ItemRef
from .stage import Stage, StageContext, StageParams, recipe_path

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ImgxError",
    "InputError",
    "Item",
    "ItemRef",
    "OutputError",
    "PluginError",
    "RecipeError",
    "Stage",
    "StageContext",
    "StageError",
    "StageParams",
    "__version__",
    "hookimpl",
    "recipe_path",
]
