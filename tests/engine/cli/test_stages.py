"""``imgx stages``: what the loaded plugins provide, for people and for tools."""

from __future__ import annotations

import json
import re

import pytest

from imgx.registry import load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_lists_every_stage_with_its_plugin_and_parameters(imgx, registry):
    result = imgx("stages")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"{len(registry.stages)} stages" in text
    for name in registry.stages:
        info = registry.get_stage(name).describe()
        row = re.search(
            rf"│ {re.escape(name)}\s*│ {re.escape(registry.stage_plugin(name))}\s*│ {info['device']}\s*│", text
        )
        assert row, f"no row for {name}"
    assert "`imgx stages NAME` shows a stage's parameters" in text


def test_one_stage_shows_params_types_defaults_and_descriptions(imgx, registry):
    result = imgx("stages", "color.enhance")
    assert result.exit_code == 0, result.output
    text = result.stdout
    info = registry.get_stage("color.enhance").describe()
    assert text.startswith(f"color.enhance  (plugin {registry.stage_plugin('color.enhance')}, runs on cpu, ")
    assert info["summary"] in text
    for param in info["params"]:
        default = "(required)" if param["required"] else json.dumps(param["default"])
        cells = [param["name"], param["type"], default, param["description"]]
        assert re.search(r"│ " + r"\s*│ ".join(map(re.escape, cells)), text), f"no row for {param['name']}"


def test_unknown_stage_exits_2_with_close_names(imgx, registry):
    result = imgx("stages", "color.enhanc")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: got unknown stage 'color.enhanc'. Did you mean 'color.enhance'")
    assert f"Known stages: {', '.join(sorted(registry.stages))} (see" in " ".join(result.stderr.split())
    assert result.stdout == ""


def test_json_is_parseable(imgx, registry):
    result = imgx("stages", "--json")
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    assert [d["name"] for d in described] == sorted(registry.stages)
    enhance = next(d for d in described if d["name"] == "color.enhance")
    assert enhance["plugin"] == registry.stage_plugin("color.enhance")
    assert {p["name"] for p in enhance["params"]} >= {"saturation", "white_balance"}
    one = json.loads(imgx("stages", "geometry.fit", "--json").stdout)
    assert [d["name"] for d in one] == ["geometry.fit"]
    assert all({"name", "type", "required", "default", "description"} <= p.keys() for p in one[0]["params"])


def test_plugins_dir_stages_are_listed(imgx, plugin_dir):
    result = imgx("stages", "--plugins-dir", plugin_dir)
    assert result.exit_code == 0, result.output
    for name in ("test.fail_on", "test.slow", "test.bad_return", "test.broken_init"):
        assert re.search(rf"^│ {re.escape(name)}\s*│", result.stdout, re.MULTILINE)
    described = json.loads(imgx("stages", "--json", "--plugins-dir", plugin_dir).stdout)
    assert {d["name"]: d["plugin"] for d in described}["test.fail_on"] == str(plugin_dir / "faulty.py")
    one = imgx("stages", "test.slow", "-p", "imgx_color", "--plugins-dir", plugin_dir)
    assert one.exit_code == 0, one.output
    assert re.search(r"│ seconds\s*│ float\s*│ 0\.05\s*│ Sleep per item\.", one.stdout)


def test_a_plugin_that_fails_to_import_is_named_and_the_others_still_list(imgx, broken_plugin_dir, plugin_dir):
    result = imgx("stages", "--plugins-dir", broken_plugin_dir, "--plugins-dir", plugin_dir)
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if line.startswith("warning: plugin "))
    assert str(broken_plugin_dir / "needs_missing.py") in warning and "imgx_no_such_dependency" in warning
    assert "color.enhance" in result.stdout and "test.fail_on" in result.stdout


def test_missing_plugins_dir_is_bad_usage(imgx, tmp_path):
    result = imgx("stages", "--plugins-dir", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "--plugins-dir" in result.stderr
