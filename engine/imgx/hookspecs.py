"""The plugin contract: every hook imgx calls, in one place.

A plugin is a module (or object) with functions named like these hooks and decorated with ``@imgx.hookimpl``. It is
found through the ``imgx`` entry-point group (``[project.entry-points.imgx]`` in its ``pyproject.toml``), through
``--plugins-dir DIR`` for one-off modules, or through ``IMGX_PLUGINS=module,module``. imgx's own stages, executors and
catalog formats register through these same hooks.

Every hook here is a *registration* hook: it takes no argument and returns the things a plugin provides. The registry
(:mod:`imgx.registry`) calls each plugin's implementation on its own rather than through one pluggy call, so that a
plugin whose hook raises is named and dropped while the others keep working, and so that each result is known to
come from its plugin. Precedence is pluggy's: ``@hookimpl(tryfirst=True)`` wins over other plugins' things of the
same name, ``trylast=True`` yields to them, and otherwise the plugin loaded last wins (with a warning). Hook wrappers
(``wrapper=True``/``hookwrapper=True``) are not called for registration hooks: there is no call to wrap.

Return types are written as the base classes they must subclass (``type[imgx.Stage]``); this module imports none of
them, so that the contract sits at the bottom of the package and everything else may import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "imgx"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def imgx_stages() -> Sequence[type[Any]]:
    """Stage classes this plugin provides.

    Each is a :class:`imgx.Stage` subclass with a unique ``name`` (``"group.verb"``), a ``Params`` model and a
    ``summary``. A name registered twice warns and the later registration wins. A renamed stage lists its old names
    in ``aliases``: recipes using them keep working, with a deprecation note in ``imgx validate`` and ``imgx plan``.

    :return: the :class:`imgx.Stage` subclasses, in the order ``imgx stages`` should list them.
    """


@hookspec
def imgx_executors() -> Sequence[type[Any]]:
    """Executors this plugin provides: classes that run a plan over a catalog (``local``, ``ray``, ...).

    Each is an :class:`imgx.executors.Executor` subclass whose ``name`` is what ``execution.executor`` and
    ``imgx run --executor`` select. An executor with settings of its own declares them as a pydantic model in its
    ``Options`` class attribute: the recipe's ``execution.<name>`` section is validated against it (unknown keys and
    wrong types are recipe errors with their line) and reaches the executor resolved, in the plan.

    :return: the :class:`imgx.executors.Executor` subclasses.
    """


@hookspec
def imgx_catalog_readers() -> Sequence[type[Any]]:
    """Catalog manifest formats this plugin reads (CSV, JSONL, Parquet, ...).

    Each is an :class:`imgx.io.catalog.CatalogReader` subclass that declares the file ``suffixes`` it reads and
    yields ``(sku, image)`` rows from a manifest.

    :return: the :class:`imgx.io.CatalogReader` subclasses.
    """


@hookspec
def imgx_models() -> Sequence[Any]:
    """Pretrained models this plugin provides: named weight files with pinned sha256s, their sources, and how to
    build the reference ``torch.nn.Module`` from them.

    ``imgx models list`` shows them, ``imgx models pull NAME`` fetches them into the cache, and model stages and
    ``imgx bench --model NAME`` load them by name. A name registered twice warns and the later registration wins.

    :return: the :class:`imgx.models.ModelSpec` instances.
    """


@hookspec
def imgx_model_sources() -> Sequence[type[Any]]:
    """Ways to fetch weight files, chosen by the scheme of a source URI (``pip:``, ``https://``, ``file://``, ...).

    Each is an :class:`imgx.models.ModelSource` subclass whose ``schemes`` it handles; a plugin can add, say, an
    internal artifact store.

    :return: the :class:`imgx.models.ModelSource` subclasses.
    """


@hookspec
def imgx_backends() -> Sequence[type[Any]]:
    """Inference backends this plugin provides (``eager``, ``compile``, ``onnxruntime``, ``tensorrt``, ...).

    Each is an :class:`imgx.runtime.Backend` subclass whose ``name`` is what ``execution.backend`` and
    ``imgx bench --backends`` select. Its ``auto_rank(device, precision)`` says where it stands in ``auto``'s order
    on a device kind (``"cpu"``, ``"cuda"``) at a precision (lower runs first; ``None``: ``auto`` never picks it).

    :return: the :class:`imgx.runtime.Backend` subclasses.
    """


@hookspec
def imgx_commands() -> Sequence[Any]:
    """Commands this plugin adds to the ``imgx`` program (``imgx audit ...``).

    Each is an :class:`imgx.Command`: a name and the ``"module:function"`` of a Typer command function, imported
    only when the command is run or ``imgx --help`` lists it. A built-in command's name is refused; a name registered
    twice warns and the later registration wins. :mod:`imgx.cli.toolkit` is what such a function may use to run a
    recipe the way ``imgx run`` does (progress, errors, exit codes).

    :return: the :class:`imgx.Command` instances.
    """
