"""Recipes: typed parsing, and errors that name the file, the line and the key path and say how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgx import RecipeError
from imgx.plan import build_plan
from imgx.recipe import load_recipe, parse_recipe
from imgx.recipe.model import parse_failure_budget
from imgx.registry import load_registry

GOOD = """\
version: 1
name: demo
input:
  path: catalog/
  pattern: "**/*.jpg"
output:
  dir: out/
  format: webp
  quality: 90
  naming: "{sku}/{output}.{ext}"
execution:
  executor: local
  workers: 2
  batch_size: 8
  device: auto
  max_failures: 0.05
stages:
  - id: enhanced
    uses: color.enhance
    with: {white_balance: gray_world, auto_contrast: true, saturation: 1.1}
  - id: square
    uses: geometry.fit
    needs: [enhanced]
    with: {size: 1024, background: "#FFFFFF"}
outputs: [enhanced, square]
"""


def error_of(text: str, *overrides: str) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        loaded = parse_recipe(text, path="r.yaml", overrides=overrides)
        build_plan(loaded, load_registry())
    return info.value


def test_the_issue_example_parses_into_typed_models(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(GOOD)
    loaded = load_recipe(path)
    recipe = loaded.recipe
    assert recipe.input.patterns == ("**/*.jpg",)
    assert recipe.execution.workers == 2 and recipe.execution.max_failures == 0.05
    assert recipe.stages[1].needs == ["enhanced"] and recipe.stages[0].with_["saturation"] == 1.1
    assert recipe.output_ids == ("enhanced", "square")
    # Relative paths resolve against the recipe's folder, not the working directory.
    assert loaded.resolve(recipe.input.path) == (tmp_path / "catalog").resolve()
    plan = build_plan(loaded, load_registry())
    assert [n.id for n in plan.nodes] == ["enhanced", "square"]


@pytest.mark.parametrize(
    ("replace", "by", "line", "key_path", "words"),
    [
        ("  quality: 90", "  quality: 90\n  qualty: 80", 10, "output.qualty", "unknown key"),
        ("  workers: 2", "  workers: two", 13, "execution.workers", "'two'"),
        ("  format: webp", "  format: gif", 8, "output.format", "'jpeg', 'png' or 'webp'"),
        ("  quality: 90", "  quality: 900", 9, "output.quality", "less than or equal to 100"),
        ("    uses: geometry.fit", "    uses: geometry.fitt", 22, "stages[1].uses", "did you mean 'geometry.fit'"),
        ("saturation: 1.1}", "saturaton: 1.1}", 20, "stages[0].with.saturaton", "did you mean 'saturation'"),
        ("  quality: 90", "  qualiti: 90", 9, "output.qualiti", "did you mean 'quality'? known keys here"),
        ("saturation: 1.1}", "saturation: lots}", 20, "stages[0].with.saturation", "'lots'"),
        ("    needs: [enhanced]", "    needs: [enhance]", 23, "stages[1].needs[0]", "did you mean 'enhanced'"),
        ("outputs: [enhanced, square]", "outputs: [enhanced, squares]", 25, "outputs[1]", "names no node"),
        ("  - id: square", "  - id: enhanced", 21, "stages[1].id", "duplicate id"),
        ('  naming: "{sku}/{output}.{ext}"', '  naming: "{sku}.{ext}"', 10, "output.naming", "{output}"),
        ("  max_failures: 0.05", "  max_failures: -3", 16, "execution.max_failures", "max_failures"),
        ('background: "#FFFFFF"', 'background: "white"', 24, "stages[1].with.background", "#RRGGBB"),
    ],
)
def test_errors_name_line_key_path_and_fix(replace: str, by: str, line: int, key_path: str, words: str) -> None:
    assert replace in GOOD
    error = error_of(GOOD.replace(replace, by))
    text = str(error)
    assert f"r.yaml:{line}" in text, text
    assert key_path in text, text
    assert words.lower() in text.lower(), text


def test_flags_are_named_as_typed() -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(GOOD, overrides=[("execution.workers=0", "--workers")])
    assert str(info.value).startswith("--workers: execution.workers: got workers=0")


def test_a_cycle_is_reported_with_its_path() -> None:
    text = GOOD.replace("    uses: color.enhance\n", "    uses: color.enhance\n    needs: [square]\n")
    error = str(error_of(text))
    assert "cycle" in error and ("enhanced -> square -> enhanced" in error or "square -> enhanced -> square" in error)
    assert "r.yaml:" in error


def test_several_problems_are_all_listed() -> None:
    text = GOOD.replace("  quality: 90", "  quality: 90\n  qualty: 1").replace("  workers: 2", "  workers: 0")
    error = str(error_of(text))
    assert "2 problems" in error and "r.yaml:10" in error and "r.yaml:14" in error


def test_missing_required_keys_and_wrong_version() -> None:
    error = str(error_of("version: 2\nname: x\nstages: []\n"))
    assert "input" in error and "required" in error and "version" in error and "stages" in error


def test_yaml_syntax_error_names_the_line() -> None:
    error = str(error_of(GOOD.replace("  workers: 2", "  workers: [2")))
    assert "not valid YAML" in error and "r.yaml:1" in error


def test_duplicate_yaml_keys_are_errors_not_silently_last_wins() -> None:
    error = str(error_of(GOOD.replace("  quality: 90", "  quality: 90\n  quality: 50")))
    assert "duplicate key 'quality'" in error and "r.yaml:10" in error


def test_yaml_is_loaded_safely() -> None:
    evil = GOOD.replace("name: demo", "name: !!python/object/apply:os.system ['echo pwned']")
    assert "not valid YAML" in str(error_of(evil))


def test_empty_and_non_mapping_files() -> None:
    assert "empty file" in str(error_of(""))
    assert "mapping" in str(error_of("- a\n- b\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_set_overrides_any_field_and_addresses_stages_by_id_or_index() -> None:
    loaded = parse_recipe(
        GOOD,
        overrides=[
            "execution.workers=4",
            "stages.enhanced.with.saturation=1.3",
            "stages.1.with.size=512",
            "output.format=png",
            "input.pattern=[a/*.jpg, b/*.jpg]",
        ],
    )
    recipe = loaded.recipe
    assert recipe.execution.workers == 4
    assert recipe.stages[0].with_["saturation"] == 1.3
    assert recipe.stages[1].with_["size"] == 512
    assert recipe.output.format == "png"
    assert recipe.input.patterns == ("a/*.jpg", "b/*.jpg")


def test_an_error_from_set_names_the_override_not_a_line() -> None:
    error = str(error_of(GOOD, "stages.square.with.size=huge"))
    assert "--set stages.square.with.size" in error and "'huge'" in error  # as the user typed it
    # One problem per key even though size accepts an int or a pair (pydantic reports each union member).
    assert "1 problems" not in error and "problems" not in error and "constrained" not in error
    assert "no item with id 'nope'" in str(error_of(GOOD, "stages.nope.with.size=1"))
    assert "key.path=value" in str(error_of(GOOD, "execution.workers"))


@pytest.mark.parametrize(
    ("given", "expected"),
    [(0.05, 0.05), ("5%", 0.05), ("0.1", 0.1), (10, 10), ("10", 10), (0, 0), (2.0, 2)],
)
def test_failure_budget_is_a_fraction_or_a_count(given: object, expected: float) -> None:
    value = parse_failure_budget(given)  # type: ignore[arg-type]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("given", [-1, "lots", 2.5, "-5%"])
def test_bad_failure_budgets(given: object) -> None:
    with pytest.raises(ValueError, match="max_failures"):
        parse_failure_budget(given)  # type: ignore[arg-type]


def test_recipe_hash_ignores_execution_options_but_not_params() -> None:
    base = parse_recipe(GOOD).hash
    assert parse_recipe(GOOD, overrides=["execution.workers=7"]).hash == base
    assert parse_recipe(GOOD, overrides=["stages.enhanced.with.saturation=1.2"]).hash != base


def test_output_overrides_give_one_output_its_own_encoding_and_name_bad_keys() -> None:
    text = GOOD.replace(
        '  naming: "{sku}/{output}.{ext}"\n',
        '  naming: "{sku}/{output}.{ext}"\n  overrides:\n    square: {format: png}\n',
    )
    output = parse_recipe(text).recipe.output
    assert output.settings("square").format == "png" and output.settings("square").quality == 90
    assert output.settings("enhanced").format == "webp"
    error = str(error_of(text.replace("    square: {format: png}", "    sqare: {format: png}")))
    assert "r.yaml:12" in error and "'sqare' is not a written node; written: enhanced, square" in error
    error = str(error_of(text.replace("{format: png}", "{format: gif}")))
    assert "r.yaml:12" in error and "output.overrides.square.format" in error


def test_input_download_settings() -> None:
    from imgx.recipe.model import InputSpec

    spec = InputSpec(path="manifest.csv")
    assert spec.allowed_hosts == [] and spec.max_download_bytes == 64 << 20
    spec = InputSpec(path="m.csv", allowed_hosts=["images.intra", "10.2.0.0/16", "::1"], max_download_bytes=1000)
    assert spec.allowed_hosts == ["images.intra", "10.2.0.0/16", "::1"]
    with pytest.raises(ValueError, match=r"expected a CIDR range like 10\.2\.0\.0/16"):
        InputSpec(path="m.csv", allowed_hosts=["10.0.0.0/99"])
    with pytest.raises(ValueError, match="expected a host name, an address or a CIDR range"):
        InputSpec(path="m.csv", allowed_hosts=[" "])
