"""The README stays true: every recipe key is in its reference, and its two commands are what CI runs."""

from __future__ import annotations

import re

import pytest

from _support import REPO
from imgx.recipe.model import ExecutionSpec, InputSpec, OutputSpec, Recipe

README = (REPO / "README.md").read_text(encoding="utf-8")


def recipe_keys() -> list[str]:
    keys = [name for name in Recipe.model_fields if name not in ("input", "output", "execution", "stages")]
    for prefix, model in (("input", InputSpec), ("output", OutputSpec), ("execution", ExecutionSpec)):
        keys += [f"{prefix}.{name}" for name in model.model_fields]
    return keys


@pytest.mark.parametrize("key", recipe_keys())
def test_every_recipe_key_is_in_the_reference(key: str) -> None:
    assert f"`{key}`" in README or re.search(rf"`{re.escape(key)}` / `", README) or f"/ `{key}`" in README, key


def test_the_quick_start_is_two_make_targets_and_ci_runs_the_same_test_command() -> None:
    quick = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "imgx run recipes/demo.yaml" in makefile
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
