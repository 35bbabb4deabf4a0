"""What a plugin adds to the ``imgx`` command line: a :class:`Command` returned from the ``imgx_commands`` hook.

A command is named by the module and function that implement it (``"imgx_compliance.audit:audit_command"``), not
by the function itself, so that loading a plugin (in every worker of a run) never imports its command-line code:
the ``imgx`` program imports it only when the command is run or listed. The function is a Typer command (its
parameters annotated with ``typer.Argument``/``typer.Option``); :mod:`imgx.cli.toolkit` has what it may use to run
a recipe with the same progress, errors and exit codes as ``imgx run``.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["Command"]

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``imgx NAME ...`` command a plugin provides.

    :param name: the command's name on the command line (lower case, digits and ``-``); a built-in command's name
        is refused (the built-in keeps it).
    :param target: ``"module:function"``, the Typer command function, imported when the command is used.
    :param help: one line for ``imgx --help`` (default: the function's docstring).
    """

    name: str
    target: str
    help: str = ""

    registers_as: ClassVar[str] = "command"

    def registration_problem(self) -> str | None:
        if not isinstance(self, Command) or not _NAME.fullmatch(self.name or ""):
            return f"got {self!r} from imgx_commands; expected a Command whose name is lower case letters, digits, -"
        if not _TARGET.fullmatch(self.target or ""):
            return f"got target {self.target!r} for command {self.name!r}; expected 'package.module:function'"
        return None

    def registry_keys(self) -> tuple[str, ...]:
        return (self.name,)

    def load(self) -> Callable[..., Any]:
        """The command function, imported now."""
        module_name, function = self.target.split(":")
        return getattr(importlib.import_module(module_name), function)
