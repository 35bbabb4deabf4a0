"""``imgx stages``: what the loaded plugins provide."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from .._registry import load_registry
from ._common import Plugin, PluginsDir, err_console, guarded, out_console, plugin_config


def stages_command(
    name: Annotated[str | None, typer.Argument(help="Show one stage's parameters.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for tools).")] = False,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """List every registered stage with its plugin and parameters, or show stage NAME in full."""
    registry = guarded(lambda: load_registry(plugin_config(plugins_dir, plugin)))
    for failure in registry.failures:
        err_console.print(f"[yellow]warning:[/] plugin {failure.plugin}: {failure.error}")
    names = [name] if name else sorted(registry.stages)
    described: list[dict[str, Any]] = []
    for stage_name in names:
        cls = guarded(lambda n=stage_name: registry.get_stage(n))
        described.append({**cls.describe(), "plugin": registry.stage_plugin(stage_name)})
    if as_json:
        out_console.print_json(json.dumps(described, default=str))
        return
    if not name:
        table = Table(title=f"{len(described)} stages", header_style="bold")
        for column in ("stage", "plugin", "runs on", "summary", "parameters"):
            table.add_column(column, overflow="fold")
        for info in described:
            params = ", ".join(p["name"] for p in info["params"])
            table.add_row(info["name"], info["plugin"], info["device"], info["summary"], params)
        out_console.print(table)
        out_console.print("`imgx stages NAME` shows a stage's parameters with types, defaults and descriptions.")
        return
    info = described[0]
    out_console.print(
        f"[bold]{info['name']}[/]  (plugin {info['plugin']}, runs on {info['device']}, "
        f"{'batched' if info['batchable'] else 'per item'}, {info['inputs']} input(s))"
    )
    if info["summary"]:
        out_console.print(info["summary"])
    table = Table(header_style="bold")
    for column in ("parameter", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for param in info["params"]:
        default = "(required)" if param["required"] else json.dumps(param["default"], default=str)
        table.add_row(param["name"], param["type"], default, param["description"])
    out_console.print(table)
