"""imgx: a batch image engine for e-commerce catalogs.

The public plugin API is what this module exports: write a :class:`Stage` with a :class:`StageParams` model and
register it from a ``@hookimpl`` of ``imgx_stages``. The documented public subpackages are :mod:`imgx.arrays` and
:mod:`imgx.color` (the stage author's toolkit), :mod:`imgx.models` (registering weights), :mod:`imgx.runtime`
(model stages and backends), :mod:`imgx.registry` (the plugin host), :mod:`imgx.executors` and :mod:`imgx.io`
(executors and catalog formats), :mod:`imgx.samples` (sample catalogs) and :mod:`imgx.cli.toolkit` (a plugin's
command: ``imgx_commands`` returns :class:`Command` objects).
"""

from __future__ import annotations

from .command import Command
from .errors import BackendError, ImgxError, InputError, OutputError, PluginError, RecipeError, StageError
from .hookspecs import hookimpl
from .item import Item, ItemRef
from .registry import PluginConfig, Registry, load_registry
from .stage import ScopedParams, Stage, StageContext, StageParams, recipe_path

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Command",
    "ImgxError",
    "InputError",
    "Item",
    "ItemRef",
    "OutputError",
    "PluginConfig",
    "PluginError",
    "RecipeError",
    "Registry",
    "ScopedParams",
    "Stage",
    "StageContext",
    "StageError",
    "StageParams",
    "__version__",
    "hookimpl",
    "load_registry",
    "recipe_path",
]
