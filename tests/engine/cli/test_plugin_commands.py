"""``imgx_commands``: a plugin adds a command to the installed ``imgx`` program (run as a separate process), which
lists it, runs it, refuses to let it replace a built-in command and survives one whose module fails to import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import imgx
from imgx.registry import PluginConfig, load_registry

IMGX = shutil.which("imgx", path=str(Path(sys.executable).parent)) or shutil.which("imgx")

PLUGIN = '''
"""A shop's own command: counts the images of a folder (a real file-system walk)."""
import imgx


@imgx.hookimpl
def imgx_commands():
    return [
        imgx.Command("count-images", "shop_cli:count_images", "Count the images in a folder."),
        imgx.Command("run", "shop_cli:count_images"),
        imgx.Command("broken", "shop_cli_missing:main"),
    ]
'''

COMMAND = '''
"""The command's code, imported only when the command is used."""
from pathlib import Path
from typing import Annotated

import typer

from imgx.cli.toolkit import EXIT_USAGE, err_console, out_console


def count_images(folder: Annotated[Path, typer.Argument(help="A folder.")]) -> None:
    """Count the images in FOLDER."""
    if not folder.is_dir():
        err_console.print(f"error: {folder} is not a folder")
        raise typer.Exit(EXIT_USAGE)
    out_console.print(f"{sum(1 for p in folder.rglob('*.jpg'))} image(s)")
'''


@pytest.fixture
def shop_plugin(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "shop_commands.py").write_text(textwrap.dedent(PLUGIN))
    (folder / "shop_cli.py").write_text(textwrap.dedent(COMMAND))
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, "IMGX_PLUGINS": "shop_commands", "COLUMNS": "200"}


def imgx_cli(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert IMGX is not None, "the imgx console script is not installed (pip install -e .)"
    return subprocess.run([IMGX, *map(str, args)], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_plugin_command_is_listed_and_runs(shop_plugin, photo_catalog: Path) -> None:
    listed = imgx_cli("--help", env=shop_plugin)
    assert listed.returncode == 0 and "count-images" in listed.stdout and "Count the images" in listed.stdout
    assert "audit" in listed.stdout  # imgx_compliance's command, through the same hook
    done = imgx_cli("count-images", photo_catalog, env=shop_plugin)
    assert done.returncode == 0, done.stderr
    assert f"{len(list(photo_catalog.rglob('*.jpg')))} image(s)" in done.stdout
    assert "broken" in done.stderr and "ModuleNotFoundError" in done.stderr  # named, and the others keep working
    refused = imgx_cli("count-images", photo_catalog / "nope", env=shop_plugin)
    assert refused.returncode == 2 and "is not a folder" in refused.stderr


def test_a_plugin_cannot_replace_a_built_in_command(shop_plugin, tmp_path: Path) -> None:
    done = imgx_cli("count-images", tmp_path, env=shop_plugin)
    assert "command 'run' is a built-in imgx command; left out" in done.stderr
    run_help = imgx_cli("run", "--help", env=shop_plugin)
    assert run_help.returncode == 0 and "RECIPE" in run_help.stdout  # still imgx's own run


def test_a_bad_command_registration_is_a_named_plugin_failure(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "odd.py").write_text(
        "import imgx\n\n@imgx.hookimpl\ndef imgx_commands():\n    return [imgx.Command('Bad Name', 'x:y')]\n"
    )
    registry = load_registry(PluginConfig(plugins_dirs=(str(folder),)))
    assert "Bad Name" not in registry.commands
    assert any("lower case" in failure.error for failure in registry.failures)
    assert imgx.Command("ok-name", "pkg.mod:fn").registration_problem() is None
    assert "module:function" in (imgx.Command("ok", "no-colon").registration_problem() or "")
