"""The plugin contract: every hook imgx calls, in one place.

A plugin is a module (or object) with functions named like these hooks and decorated with ``@imgx.hookimpl``. It is
found through the ``imgx`` entry-point group (``[project.entry-points.imgx]`` in its ``pyproject.toml``), through
``--plugins-dir DIR`` for one-off modules, or through ``IMGX_PLUGINS=module,module``. imgx's own stages, executors and
catalog formats register through these same hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .executors.base import Executor
    from .io.catalog import CatalogReader
    from .models.spec import ModelSource, ModelSpec
    from .runtime.base import Backend
    from .stage import Stage

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "imgx"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def imgx_stages() -> Sequence[type[Stage]]:
    """Stage classes this plugin provides.

    Each is a :class:`imgx.Stage` subclass with a unique ``name`` (``"group.verb"``), a ``Params`` model and a
    ``summary``. A name registered twice warns and the later registration wins.

    :return: the stage classes, in the order ``imgx stages`` should list them.
    """


@hookspec
def imgx_executors() -> Sequence[type[Executor]]:
    """Executors this plugin provides: classes that run a plan over a catalog (``local``, ``ray``, ...).

    Each is an :class:`imgx.executors.Executor` subclass whose ``name`` is what ``execution.executor`` and
    ``imgx run --executor`` select.

    :return: the executor classes.
    """


@hookspec
def imgx_catalog_readers() -> Sequence[type[CatalogReader]]:
    """Catalog manifest formats this plugin reads (CSV, JSONL, Parquet, ...).

    Each is an :class:`imgx.io.catalog.CatalogReader` subclass that declares the file ``suffixes`` it reads and
    yields ``(sku, image)`` rows from a manifest.

    :return: the reader classes.
    """


@hookspec
def imgx_models() -> Sequence[ModelSpec]:
    """Pretrained models this plugin provides: named weight files with pinned sha256s, their sources, and how to
    build the reference ``torch.nn.Module`` from them.

    ``imgx models list`` shows them, ``imgx models pull NAME`` fetches them into the cache, and model stages and
    ``imgx bench --model NAME`` load them by name. A name registered twice warns and the later registration wins.

    :return: the :class:`imgx.models.ModelSpec` instances.
    """


@hookspec
def imgx_model_sources() -> Sequence[type[ModelSource]]:
    """Ways to fetch weight files, chosen by the scheme of a source URI (``pip:``, ``https://``, ``file://``, ...).

    Each is an :class:`imgx.models.ModelSource` subclass whose ``schemes`` it handles; a plugin can add, say, an
    internal artifact store.

    :return: the source classes.
    """


@hookspec
def imgx_backends() -> Sequence[type[Backend]]:
    """Inference backends this plugin provides (``eager``, ``compile``, ``onnxruntime``, ``tensorrt``, ...).

    Each is an :class:`imgx.runtime.Backend` subclass whose ``name`` is what ``execution.backend`` and
    ``imgx bench --backends`` select.

    :return: the backend classes.
    """
