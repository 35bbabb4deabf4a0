"""Options and error handling shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import ImgxError, RecipeError
from ..registry import PluginConfig

PluginsDir = Annotated[
    list[Path] | None,
    typer.Option(
        "--plugins-dir",
        help="Load one-off plugin modules (*.py, packages) from this folder.",
        exists=True,
        file_okay=False,
        dir_okay=True,
    ),
]
Plugin = Annotated[
    list[str] | None,
    typer.Option("--plugin", "-p", help="Load this importable module as a plugin (also IMGX_PLUGINS=a,b)."),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe field: key.path=value (YAML value); stages by id or index."),
]

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def plugin_config(plugins_dir: list[Path] | None, plugin: list[str] | None) -> PluginConfig:
    return PluginConfig(plugins_dirs=tuple(str(p) for p in plugins_dir or ()), modules=tuple(plugin or ()))


def guarded(action: Callable[[], T]) -> T:
    """Run ``action``; a bad recipe exits 2, any other imgx error exits 1, each with one clear message."""
    try:
        return action()
    except RecipeError as exc:
        print_error("recipe error", exc)
        raise typer.Exit(EXIT_USAGE) from None
    except ImgxError as exc:
        print_error("error", exc)
        raise typer.Exit(EXIT_FAILED) from None


def print_error(label: str, exc: Exception) -> None:
    """One error on stderr: the message verbatim (``imgx[tensorrt]`` is text, not markup), never hard-wrapped."""
    err_console.print(f"[bold red]{label}:[/] {escape(str(exc))}", soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
