"""``imgx stages``: what the loaded plugins provide."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import PluginError
from ..registry import load_registry
from ._common import (
    EXIT_USAGE,
    Plugin,
    PluginsDir,
    guarded,
    out_console,
    plugin_config,
    print_error,
    print_warning,
)


def stages_command(
    name: Annotated[str | None, typer.Argument(help="Show one stage's parameters.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for tools).")] = False,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """List every registered stage with its plugin and parameters, or show stage NAME in full."""
    registry = guarded(lambda: load_registry(plugin_config(plugins_dir, plugin)))
    for failure in registry.failures:
        print_warning(f"plugin {failure.plugin}: {failure.error}")
    if name and name not in registry.stages:
        try:
            registry.get_stage(name)  # raises, listing the close names
        except PluginError as exc:
            print_error("error", exc)
            raise typer.Exit(EXIT_USAGE) from None
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
            table.add_row(*map(escape, (info["name"], info["plugin"], info["device"], info["summary"], params)))
        out_console.print(table)
        out_console.print("`imgx stages NAME` shows a stage's parameters with types, defaults and descriptions.")
        return
    info = described[0]
    out_console.print(
        f"[bold]{escape(info['name'])}[/]  (plugin {escape(info['plugin'])}, runs on {info['device']}, "
        f"{'batched' if info['batchable'] else 'per item'}, {info['inputs']} input(s)"
        f"{', needs a mask (alpha)' if info['needs_alpha'] else ''})"
    )
    if info["summary"]:
        out_console.print(escape(info["summary"]))
    table = Table(header_style="bold")
    for column in ("parameter", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for param in info["params"]:
        default = "(required)" if param["required"] else json.dumps(param["default"], default=str)
        table.add_row(*map(escape, (param["name"], param["type"], default, param["description"])))
    out_console.print(table)
    if info["example"]:
        example = ", ".join(f"{key}: {json.dumps(value)}" for key, value in info["example"].items())
        out_console.print(escape(f"example: {{uses: {info['name']}, with: {{{example}}}}}"), soft_wrap=True)
