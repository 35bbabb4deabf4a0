"""The ``imgx`` command line: parse, call the engine, print. No logic lives here."""

from __future__ import annotations

import typer

from .. import __version__
from .bench import bench_command
from .demo import demo_catalog_command
from .inspect import plan_command, validate_command
from .models import app as models_app
from .report import report_command, sheet_command
from .run import run_command
from .stages import stages_command

__all__ = ["app", "main"]

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
app.command("demo-catalog")(demo_catalog_command)
app.command("bench")(bench_command)
app.add_typer(models_app, name="models")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """imgx: recipes of stages over product catalogs."""


def main() -> None:
    app()
