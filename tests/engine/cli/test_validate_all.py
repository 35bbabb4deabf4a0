"""``imgx validate`` finds everything knowable before reading a pixel, in one pass (issue 16, item 4): a missing
input folder, a stage that needs alpha with nothing upstream producing it, and every misspelt recipe key together
with every bad stage parameter, each with its file:line."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from _support import real_photo, write_recipe

RECIPE = """\
version: 1
name: day-one
input:
  path: {path}
  patern: "**/*.jpg"
output:
  dir: out/
  fromat: png
stages:
  - id: fitted
    uses: geometry.fit
    with: {{size: 256}}
  - id: cut
    uses: segment.cutout
    needs: [fitted]
  - id: square
    uses: geometry.fit
    needs: [cut]
    with: {{size: 128, backgrund: "#fff"}}
"""


def test_validate_lists_every_problem_at_once(imgx, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, RECIPE.format(path="no-such-catalog/"))
    result = imgx("validate", recipe)
    assert result.exit_code == 2
    text = result.stderr
    assert "5 problems in the recipe" in text, text
    assert f"{recipe}:5: input.patern: unknown key" in text and "Did you mean 'pattern'?" in text
    assert f"{recipe}:8: output.fromat: unknown key" in text
    assert f"{recipe}:19: stages[2].with.backgrund: unknown parameter of geometry.fit" in text
    assert f"{recipe}:4: input.path: got 'no-such-catalog/'" in text and "no such folder or file" in text
    assert f"{recipe}:14: stages[1].uses: segment.cutout needs a product alpha" in text


def test_fixing_the_keys_leaves_the_problems_that_remain(imgx, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(real_photo("coffee", 64)).save(catalog / "a.jpg")
    text = RECIPE.format(path="catalog/").replace("patern", "pattern").replace("fromat", "format")
    recipe = write_recipe(tmp_path, text)
    result = imgx("validate", recipe)
    assert result.exit_code == 2 and "2 problems in the recipe" in result.stderr, result.stderr
    fixed = write_recipe(tmp_path, text.replace("backgrund", "background"), "fixed.yaml")
    result = imgx("validate", fixed)
    assert (
        result.exit_code == 2 and f"{fixed}:14: stages[1].uses: segment.cutout needs a product alpha" in result.stderr
    )
    # a catalog of cut-outs says so, and the recipe is fine; so is one with a mask stage upstream
    assert imgx("validate", fixed, "--set", "input.alpha=true").exit_code == 0
    masked = text.replace("backgrund", "background").replace(
        "uses: geometry.fit\n    with: {size: 256}", "uses: segment.product"
    )
    assert imgx("validate", write_recipe(tmp_path, masked, "masked.yaml")).exit_code == 0


def test_max_failures_over_100_percent_says_what_a_percentage_must_be(imgx, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, RECIPE.format(path="."))
    result = imgx("validate", recipe, "--set", "execution.max_failures=150%")
    assert "a percentage must be below 100%" in result.stderr and "whole number" not in result.stderr
