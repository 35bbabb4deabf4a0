"""``imgx validate`` and ``imgx plan``: check a recipe and show what a run would do, reading no image."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from _support import basic_recipe, write_recipe
from imgx.runner import RunOptions, prepare

BAD_RECIPE_HEAD = """\
version: 1
name: bad
input: {path: ., pattern: "**/*.jpg"}
output: {dir: out, format: png}
"""


def test_validate_ok(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("validate", recipe)
    assert result.exit_code == 0, result.output
    loaded, _, _ = prepare(recipe, RunOptions())
    assert result.stdout == (
        f"ok {recipe}: 2 stage(s), 2 output(s) (enhanced, square), recipe hash {loaded.hash[:12]}\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("stages", "words"),
    [
        (
            "stages:\n  - id: a\n    uses: color.enhance\n    with: {saturaton: 2}\noutputs: [a]\n",
            ":8: stages[0].with.saturaton: unknown parameter of color.enhance",
        ),
        (
            "stages:\n  - id: a\n    uses: color.enhanc\noutputs: [a]\n",
            ":7: stages[0].uses: got unknown stage 'color.enhanc'. Did you mean 'color.enhance'",
        ),
        (
            "stages:\n  - id: a\n    uses: color.gamma\n    with: {gamma: bright}\noutputs: [a]\n",
            ":8: stages[0].with.gamma: got 'bright'",
        ),
        (
            "stages:\n  - id: a\n    uses: color.gamma\n    needs: [b]\noutputs: [a]\n",
            "stages[0].needs",
        ),
        ("stages:\n  - id: a\n    uses: color.gamma\noutputs: [a]\ncolour: red\n", ":9: colour: unknown key"),
    ],
    ids=["unknown-param", "unknown-stage", "wrong-type", "missing-input", "unknown-key"],
)
def test_validate_bad_recipe_exits_2_naming_file_line_and_key(imgx, tmp_path, stages, words):
    recipe = write_recipe(tmp_path, BAD_RECIPE_HEAD + stages)
    result = imgx("validate", recipe)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"recipe error: {recipe}:")
    assert words in result.stderr
    assert result.stdout == ""


def test_validate_not_yaml_names_the_line(imgx, tmp_path):
    recipe = write_recipe(tmp_path, BAD_RECIPE_HEAD + "stages: [\n  {id: a\n")
    result = imgx("validate", recipe)
    assert result.exit_code == 2
    assert re.search(rf"recipe error: {re.escape(str(recipe))}:\d+: not valid YAML", result.stderr)


def test_validate_checks_overrides(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("validate", recipe, "--set", "output.format=gif")
    assert result.exit_code == 2
    assert "--set output.format: output.format: got 'gif'" in result.stderr


def test_validate_with_plugins_dir(imgx, photo_catalog, plugin_dir, tmp_path):
    body = basic_recipe(photo_catalog, tmp_path / "out")
    body["stages"] = [{"id": "slow", "uses": "test.slow", "with": {"seconds": 0.0}}]
    body["outputs"] = ["slow"]
    recipe = write_recipe(tmp_path, body)
    assert imgx("validate", recipe).exit_code == 2
    result = imgx("validate", recipe, "--plugins-dir", plugin_dir)
    assert result.exit_code == 0, result.output
    assert "1 stage(s), 1 output(s) (slow)" in result.stdout


def test_plan_shows_nodes_placement_outputs_and_hashes(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("plan", recipe, "--count")
    assert result.exit_code == 0, result.output
    text = result.stdout
    _, _, plan = prepare(recipe, RunOptions())
    assert f"input: folder {photo_catalog}  pattern **/*.jpg" in text
    assert "items: 8" in text
    skus = sorted(p.relative_to(photo_catalog).with_suffix("").as_posix() for p in photo_catalog.rglob("*.jpg"))
    first = skus[0]
    assert f"first items: {', '.join(skus[:3])}\n" in text
    # device auto resolves to the CPU: a plan of CPU stages never runs on a GPU, and the plan says where it runs
    assert "execution: local executor, 1 worker(s), batch size 3, device cpu (auto), max_failures 0.05, overlap" in text
    # one worker on a machine of more cores has a core to spare for decoding and encoding
    cores = len(os.sched_getaffinity(0))
    assert ("overlap on (decode ahead, encode behind) (auto)" if cores > 1 else "overlap off (auto)") in text
    for node in plan.nodes:
        needs = ", ".join(node.needs) or "(catalog image)"
        batch = "batched" if node.stage.batchable else "per item"
        cells = (node.id, node.uses, node.plugin, needs, "cpu, in-process", batch)
        assert re.search(r"│ " + r"\s*│ ".join(map(re.escape, cells)) + r"\s*│", text), f"no row for {node.id}"
    assert f"outputs -> {tmp_path / 'out'}" in text
    for output, lineage in (("enhanced", "enhanced"), ("square", "enhanced -> square")):
        assert re.search(
            rf"│ {output}\s*│ png\s*│ {lineage}\s*│ {first}/{output}\.png\s*│ {plan.output_hashes[output]} │", text
        ), text
    assert f"ledger: {tmp_path / 'out' / '_imgx' / 'ledger'}" in text
    assert not (tmp_path / "out").exists()


def test_plan_without_count_does_not_count(imgx, photo_catalog, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("plan", recipe, "--set", "execution.workers=3")
    assert result.exit_code == 0, result.output
    assert "\nitems:" not in result.stdout
    assert "cpu, process pool, 3 workers" in result.stdout


def test_plan_reads_no_image(imgx, tmp_path):
    """Corrupt JPEGs that no decoder could open still plan (and count) fine, and nothing is written."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for index in range(5):
        (catalog / f"sku-{index}.jpg").write_bytes(b"\xff\xd8\xff not a jpeg " + os.urandom(64))
    recipe = write_recipe(tmp_path, basic_recipe(catalog, tmp_path / "out"))
    before = {p: p.stat().st_atime_ns for p in catalog.iterdir()}
    result = imgx("plan", recipe, "--count")
    assert result.exit_code == 0, result.output
    assert "items: 5" in result.stdout
    assert "first items: sku-0, sku-1, sku-2" in result.stdout
    assert "sku-0/square.png" in result.stdout
    assert not (tmp_path / "out").exists()
    assert {p: p.stat().st_atime_ns for p in catalog.iterdir()} == before
    # ... whereas running it fails every item at decode: the plan really did not read them.
    ran = imgx("run", recipe, "--max-failures", "5")
    assert ran.exit_code == 0, ran.output
    assert re.search(r"│ failed\s*│\s*5 │", ran.stderr)


def test_plan_bad_recipe_exits_2(imgx, tmp_path: Path):
    recipe = write_recipe(tmp_path, BAD_RECIPE_HEAD + "stages: []\noutputs: []\n")
    result = imgx("plan", recipe)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"recipe error: {recipe}")


def test_plan_names_a_broken_plugin(imgx, photo_catalog, broken_plugin_dir, tmp_path):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("plan", recipe, "--plugins-dir", broken_plugin_dir)
    assert result.exit_code == 0, result.output
    assert f"warning: plugin {broken_plugin_dir / 'needs_missing.py'}" in result.stderr
