"""The executor contract: run batches of work units through :class:`BatchProcessor` s somewhere, report each result.

The runner owns the catalog, resume filtering, batching, progress and the summary; an executor only decides where
batches run. Register executors through the ``imgx_executors`` hook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import ClassVar

from .._registry import PluginConfig
from .processor import BatchResult, RunSpec, WorkUnit

__all__ = ["Executor", "ExecutorOptions"]


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """How many workers, and how to start them.

    :param workers: worker processes (1 runs in-process).
    :param start_method: multiprocessing start method, ``None`` for the platform's best.
    :param plugin_config: how workers rebuild the plugin registry (for ``--plugins-dir`` stages under spawn).
    """

    workers: int = 1
    start_method: str | None = None
    plugin_config: PluginConfig = dataclasses.field(default_factory=PluginConfig)


class Executor:
    """Base class of executors (``local``, ``ray``, ...).

    :param spec: the run, as workers see it.
    :param options: worker count and start-up options.
    """

    name: ClassVar[str] = ""

    def __init__(self, spec: RunSpec, options: ExecutorOptions) -> None:
        self.spec = spec
        self.options = options

    def run(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        """Process every batch; call ``on_result`` in the calling thread as each finishes (in any order).

        Raises :class:`imgx.ImgxError` if the run itself fails (a stage cannot start, a worker dies); per-item
        problems are never raised, they are failed rows.
        """
        raise NotImplementedError
