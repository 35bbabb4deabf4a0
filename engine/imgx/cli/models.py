"""``imgx models list | pull | path``: the registered pretrained models and their cached weights."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ModelError
from ..models import FileStatus, fetch_model, file_statuses, get_spec, models_dir
from ..registry import Registry, load_registry
from ._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    Plugin,
    PluginsDir,
    guarded,
    out_console,
    plugin_config,
    print_error,
    print_warning,
)

app = typer.Typer(
    name="models",
    help="Pretrained models: list them with their cache state, pull (fetch and verify) their weights.",
    no_args_is_help=True,
)


def _registry(plugins_dir: PluginsDir, plugin: Plugin) -> Registry:
    registry = guarded(lambda: load_registry(plugin_config(plugins_dir, plugin)))
    for failure in registry.failures:
        print_warning(f"plugin {failure.plugin}: {failure.error}")
    return registry


def _check_names(registry: Registry, names: list[str]) -> None:
    for name in names:
        try:
            get_spec(name, registry)
        except ModelError as exc:
            print_error("error", exc)
            raise typer.Exit(EXIT_USAGE) from None


def human_size(size: int | None) -> str:
    """``751171`` -> ``"751.2 kB"``; ``None`` -> ``"?"``."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def short_source(uri: str) -> str:
    """The first source as the table shows it: a pip source without its member path (``--json`` has it all)."""
    return uri.split("#", 1)[0] if uri.startswith("pip:") else uri


def cache_summary(statuses: list[FileStatus]) -> str:
    """``yes``, ``no``, ``partly (1/2)`` or ``wrong hash: a.bin``."""
    wrong = [s.filename for s in statuses if s.state == "wrong hash"]
    if wrong:
        return "wrong hash: " + ", ".join(wrong)
    cached = sum(s.state == "cached" for s in statuses)
    if cached == len(statuses):
        return "yes"
    return "no" if cached == 0 else f"partly ({cached}/{len(statuses)})"


def describe(registry: Registry, name: str) -> dict[str, Any]:
    spec = registry.get_model(name)
    statuses = file_statuses(spec)
    sizes = [s.size for s in statuses]
    return {
        "name": spec.name,
        "plugin": registry.models[name].plugin,
        "summary": spec.summary,
        "licence": spec.licence,
        "homepage": spec.homepage,
        "size": None if None in sizes else sum(s or 0 for s in sizes),
        "cached": cache_summary(statuses),
        "files": [
            {
                "role": s.role,
                "filename": s.filename,
                "sha256": s.sha256,
                "size": s.size,
                "state": s.state,
                "path": str(s.path),
                "sources": list(s.sources),
            }
            for s in statuses
        ],
    }


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for tools).")] = False,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Every registered model: files, size, licence, source and whether its verified weights are cached."""
    registry = _registry(plugins_dir, plugin)
    described = [guarded(lambda n=name: describe(registry, n)) for name in sorted(registry.models)]
    if as_json:
        out_console.print_json(json.dumps({"cache": str(models_dir()), "models": described}))
        return
    table = Table(title=f"{len(described)} model{'' if len(described) == 1 else 's'}", header_style="bold")
    for column in ("model", "plugin", "files", "size", "licence", "source", "cached"):
        table.add_column(column, overflow="fold", no_wrap=column in ("model", "size", "cached"))
    for info in described:
        files = ", ".join(f["filename"] for f in info["files"])
        sources = dict.fromkeys(short_source(f["sources"][0]) if f["sources"] else "(none)" for f in info["files"])
        cells = (info["name"], info["plugin"], files, human_size(info["size"]), info["licence"], "\n".join(sources))
        table.add_row(*map(escape, (*cells, info["cached"])))
    out_console.print(table)
    out_console.print(escape(f"cache: {models_dir()} (set IMGX_HOME to move it)"), soft_wrap=True)
    out_console.print(
        "`imgx models pull NAME` fetches and verifies a model's weights; `imgx models path NAME` shows where to place "
        "them by hand on a machine without access to their source.",
        soft_wrap=True,
    )


@app.command("pull")
def pull_command(
    names: Annotated[list[str] | None, typer.Argument(help="Models to pull (default: every registered model).")] = None,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Fetch and verify the weights of models NAME... (all by default) into the cache; exit 1 if any failed."""
    registry = _registry(plugins_dir, plugin)
    names = list(dict.fromkeys(names or sorted(registry.models)))
    _check_names(registry, names)
    if not names:
        out_console.print("no models are registered (is a plugin missing? see `imgx stages`)")
        return
    failed = []
    for name in names:
        try:
            fetched = fetch_model(registry.get_model(name), registry=registry)
        except ModelError as exc:
            failed.append(name)
            print_error("error", exc)
            continue
        for item in fetched:
            origin = "already cached" if item.origin is None else f"fetched from {item.origin}"
            line = f"{name}: {item.path.name} ({human_size(item.size)}) {origin} -> {item.path}"
            out_console.print(escape(line), soft_wrap=True)
    if failed:
        print_error("error", ModelError(f"{len(failed)} of {len(names)} models failed: {', '.join(failed)}"))
        raise typer.Exit(EXIT_FAILED)


@app.command("path")
def path_command(
    name: Annotated[str, typer.Argument(help="The model.")],
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Where each file of model NAME is cached, with its pinned sha256: place files there by hand when offline."""
    registry = _registry(plugins_dir, plugin)
    _check_names(registry, [name])
    for status in guarded(lambda: file_statuses(registry.get_model(name))):
        line = f"{status.path}  sha256 {status.sha256}  ({status.state}; from {', '.join(status.sources) or '-'})"
        out_console.print(escape(line), soft_wrap=True)
