"""The executor contract: run batches of work units through :class:`BatchProcessor` s somewhere, report each result.

The runner owns the catalog, resume filtering, batching, progress and the summary; an executor only decides where
batches run. It reads the plan (``spec.plan``: nodes and resolved :class:`~imgx.plan.RunSettings`, its own typed
options among them), never the recipe. Register executors through the ``imgx_executors`` hook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import ClassVar

from pydantic import BaseModel

from ..registry import PluginConfig, Registry
from .processor import BatchResult, RunSpec, WorkUnit

__all__ = ["Executor", "ExecutorOptions"]


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """How many workers, and how workers find the plugins.

    :param workers: worker processes (1 runs in-process).
    :param plugin_config: how workers rebuild the plugin registry (for ``--plugins-dir`` and ``-p`` plugins).
    """

    workers: int = 1
    plugin_config: PluginConfig = dataclasses.field(default_factory=PluginConfig)


class Executor:
    """Base class of executors (``local``, ``ray``, ...).

    Class attributes: ``name`` (what ``execution.executor`` selects) and ``Options`` (a pydantic model of the
    executor's own settings, read from the recipe's ``execution.<name>`` section and validated by the plan; ``None``
    for an executor without settings). The validated options reach the executor as
    ``spec.plan.settings.executor_options``.

    :param spec: the run, as workers see it.
    :param options: worker count and how workers load plugins.
    :param registry: the run's registry, for work done in this process (worker processes load their own from
        ``options.plugin_config``).
    """

    registers_as: ClassVar[str] = "executor"
    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel] | None] = None

    def __init__(self, spec: RunSpec, options: ExecutorOptions, registry: Registry | None = None) -> None:
        self.spec = spec
        self.options = options
        self.registry = registry

    @classmethod
    def registration_problem(cls) -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, Executor) and cls.name):
            return f"got {cls!r} from imgx_executors; expected an Executor with a name"
        if cls.Options is not None and not (isinstance(cls.Options, type) and issubclass(cls.Options, BaseModel)):
            return f"got Options {cls.Options!r} for executor {cls.name!r}; expected a pydantic model or None"
        return None

    @classmethod
    def registry_keys(cls) -> tuple[str, ...]:
        return (cls.name,)

    def run(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        """Process every batch; call ``on_result`` in the calling thread as each finishes (in any order).

        Raises :class:`imgx.ImgxError` if the run itself fails (a stage cannot start, a worker dies); per-item
        problems are never raised, they are failed rows.
        """
        raise NotImplementedError
