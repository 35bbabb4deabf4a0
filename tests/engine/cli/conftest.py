"""Fixtures for the CLI tests: invoke ``imgx`` in-process, as a user would type it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from imgx.cli import app

Invoke = Callable[..., Result]


@pytest.fixture
def imgx(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``imgx("run", path, "--resume")`` -> the click ``Result`` (exit_code, stdout, stderr, output).

    ``COLUMNS=200`` so rich does not wrap the words the tests look for.
    """
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def broken_plugin_dir(tmp_path: Path) -> Path:
    """A --plugins-dir whose only module fails to import (a missing dependency)."""
    folder = tmp_path / "broken-plugins"
    folder.mkdir()
    (folder / "needs_missing.py").write_text("import imgx_no_such_dependency  # noqa: F401\n")
    return folder
