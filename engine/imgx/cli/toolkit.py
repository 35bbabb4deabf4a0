"""What a plugin's command (``imgx_commands``, :class:`imgx.Command`) may use from the ``imgx`` program.

- Run a recipe the way ``imgx run`` does: :func:`run_with_progress` with :class:`RunOptions` (progress, model
  downloads announced, Ctrl-C, exit codes) and the :class:`RunSummary` it returns.
- Read what a run recorded: :func:`scan_ledger` streams the ledger of an output folder as Arrow record batches;
  :func:`write_review` writes its review page (what ``imgx review`` writes).
- The options every command takes (``--plugins-dir``, ``--plugin``: :data:`PluginsDir`, :data:`Plugin`,
  :func:`plugin_config`) and imgx's way to fail: :func:`guarded`, :func:`print_error`, :func:`print_warning`, exit
  codes :data:`EXIT_FAILED` (1) and :data:`EXIT_USAGE` (2), and the consoles (:data:`out_console`,
  :data:`err_console`).
"""

from __future__ import annotations

from ..ledger import scan_ledger
from ..review import write_review
from ..runner import RunOptions
from ..summary import RunSummary
from ._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    Plugin,
    PluginsDir,
    err_console,
    guarded,
    out_console,
    plugin_config,
    print_error,
    print_warning,
)
from .run import run_with_progress

__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "Plugin",
    "PluginsDir",
    "RunOptions",
    "RunSummary",
    "err_console",
    "guarded",
    "out_console",
    "plugin_config",
    "print_error",
    "print_warning",
    "run_with_progress",
    "scan_ledger",
    "write_review",
]
