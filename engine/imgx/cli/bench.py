"""``imgx bench``: compare the backends of a model per size, batch and precision; write JSON and a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BackendError
from ._common import Plugin, PluginsDir, guarded, out_console, plugin_config, print_warning


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _ints(value: str, what: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in _names(value))
    except ValueError:
        raise BackendError(f"got {what} {value!r}; expected comma-separated whole numbers, e.g. 512,1024") from None
    if not numbers or min(numbers) < 1:
        raise BackendError(f"got {what} {value!r}; expected comma-separated numbers >= 1, e.g. 512,1024")
    return numbers


def bench_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model name (imgx models list).")],
    backends: Annotated[
        str, typer.Option("--backends", help="Comma-separated backends; eager fp32 is always measured.")
    ] = "eager,compile,onnxruntime,tensorrt",
    sizes: Annotated[
        str, typer.Option("--sizes", help="Comma-separated input sides in px (default: the model's bench sides).")
    ] = "",
    batch: Annotated[str, typer.Option("--batch", help="Comma-separated batch sizes.")] = "1",
    precision: Annotated[str, typer.Option("--precision", help="Comma-separated: fp32, fp16, bf16.")] = "fp32",
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs per configuration.")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs per configuration after its build.")] = 2,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")] = "auto",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSON file (default ./imgx-bench/bench-<model>-<host>-<date>.json)."),
    ] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="PNG chart (default: the JSON path with .png).")] = None,
    no_chart: Annotated[bool, typer.Option("--no-chart", help="Write no chart.")] = False,
    plugins_dir: PluginsDir = None,
    plugin: Plugin = None,
) -> None:
    """Time warm inference of MODEL on each backend, size, batch and precision, with parity against eager fp32."""
    from ..registry import load_registry
    from ..runtime.bench import TABLE_COLUMNS, BenchOptions, default_out, reasons, run_bench, table_rows, write_chart

    options = guarded(
        lambda: BenchOptions(
            model=model,
            backends=_names(backends),
            sizes=_ints(sizes, "--sizes") if sizes.strip() else (),
            batches=_ints(batch, "--batch"),
            precisions=_names(precision),
            repeats=repeats,
            warmup=warmup,
            device=device,
        )
    )
    registry = load_registry(plugin_config(plugins_dir, plugin))
    for failure in registry.failures:
        print_warning(f"plugin {failure.plugin}: {failure.error}")
    report = guarded(lambda: run_bench(options, registry, log=lambda line: out_console.print(escape(line))))

    # into the working directory's imgx-bench/, never into the installed package or a checkout's benchmarks/
    path = out or default_out(model, Path("imgx-bench"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    table = Table(title=escape(f"imgx bench {model} ({report['parameters']['device']})"), header_style="bold")
    for column in TABLE_COLUMNS:
        table.add_column(column)
    for cells in table_rows(report):
        table.add_row(*map(escape, cells))
    out_console.print(table)
    for line in reasons(report):
        out_console.print(escape(line), soft_wrap=True)
    out_console.print(f"wrote {escape(str(path.resolve()))}", soft_wrap=True)
    if not no_chart:
        chart_path = chart or path.with_suffix(".png")
        problem = write_chart(report, chart_path)
        if problem:
            print_warning(problem)
        else:
            out_console.print(f"wrote {escape(str(chart_path.resolve()))}", soft_wrap=True)
