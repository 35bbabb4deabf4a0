"""The ``imgx`` command line: parse, call the engine, print. No logic lives here."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from .. import __version__
from ._common import print_warning
from .bench import bench_command
from .build import build_command
from .demo import demo_catalog_command
from .inspect import plan_command, validate_command
from .models import app as models_app
from .report import report_command, sheet_command
from .review import review_command
from .run import run_command
from .stages import stages_command

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["BUILTIN_COMMANDS", "add_plugin_commands", "app", "main"]

app = typer.Typer(
    name="imgx",
    help="Batch image engine for e-commerce catalogs: run YAML recipes of stages over catalogs of SKU images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run_command)
app.command("validate")(validate_command)
app.command("plan")(plan_command)
app.command("stages")(stages_command)
app.command("report")(report_command)
app.command("sheet")(sheet_command)
app.command("review")(review_command)
app.command("demo-catalog")(demo_catalog_command)
app.command("bench")(bench_command)
app.command("build")(build_command)
app.add_typer(models_app, name="models")
BUILTIN_COMMANDS = frozenset({c.name for c in app.registered_commands} | {g.name for g in app.registered_groups})


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """imgx: recipes of stages over product catalogs."""


def add_plugin_commands(registry: Registry | None = None) -> list[str]:
    """Add the commands plugins register (``imgx_commands``) to :data:`app` (once each); returns their names. One
    named like a built-in command is left out with a warning, and so is one whose module fails to import (the other
    commands keep working)."""
    from ..registry import load_registry

    registry = registry or load_registry()
    added = []
    for name, entry in sorted(registry.commands.items()):
        if name in BUILTIN_COMMANDS:
            print_warning(f"plugin {entry.plugin}: command {name!r} is a built-in imgx command; left out")
            continue
        if name not in _plugin_commands:
            try:
                function = entry.obj.load()
            except Exception as exc:
                print_warning(f"plugin {entry.plugin}: command {name!r} failed to load: {type(exc).__name__}: {exc}")
                continue
            app.command(name, help=entry.obj.help or None)(function)
            _plugin_commands.add(name)
        added.append(name)
    return added


_plugin_commands: set[str] = set()


def main() -> None:
    # Plugins are loaded only when the command is not one of imgx's own (a plugin's, --help, or a typo to list
    # against): a built-in command starts without importing every plugin.
    words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    if not words or words[0] not in BUILTIN_COMMANDS:
        add_plugin_commands()
    app()
