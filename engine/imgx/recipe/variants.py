"""Audience variants: one recipe, one output per row of a table (a look per audience), expanded before the plan.

A recipe's ``variants:`` is a table, inline (a list of mappings) or a CSV/Parquet/JSONL file relative to the recipe,
whose rows each have an ``id`` and any fields. A stage parameter refers to a field as ``${variant.NAME}``: a value that
is exactly that reference takes the row's value with its type (a number stays a number), and a reference inside a
longer string is replaced by the value's text. Every node whose parameters refer to a field, and every node
downstream of one, is instantiated once per row as ``NODE@ROW`` (``styled@vintage``); the others run once and are
shared. An output that depends on a variant node is written once per row: its id is ``OUTPUT@ROW``, the ledger's
``output`` column holds that id and its ``variant`` column the row's id, ``{variant}`` in ``output.naming`` is the row's
id, and the output's hash covers its own row only, so changing one row redoes only that variant.

Everything is checked before any image is read: a referenced field that a row lacks, a row id that is missing,
repeated or not a plain name, and (in the plan) a row value that a parameter's type refuses are recipe errors naming
the row and the recipe line that refers to it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io.naming import VARIANT_SEPARATOR

if TYPE_CHECKING:
    from .model import Recipe, StageSpec

KeyPath = tuple[Any, ...]

__all__ = ["Variant", "expand_variants", "references", "substitute"]

REFERENCE = re.compile(r"\$\{variant\.([A-Za-z_][A-Za-z0-9_]*)\}")
ROW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
VARIANT_NAMING = "{sku}/{output}-{variant}.{ext}"
FILE_SUFFIXES = (".csv", ".parquet", ".jsonl")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the variants table: its id, its fields (``id`` included) and where it was written."""

    id: str
    fields: dict[str, Any]
    where: str  # "variants[1]" or "audiences.csv row 2"


def references(value: Any) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every ``${variant.NAME}`` in a parameter value (nested lists and mappings too): ``(key path, NAME)``."""
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield (), match.group(1)
    elif isinstance(value, dict):
        for key, item in value.items():
            for path, name in references(item):
                yield (key, *path), name
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for path, name in references(item):
                yield (index, *path), name


def substitute(value: Any, fields: dict[str, Any]) -> Any:
    """``value`` with each reference replaced by the row's field: typed when the reference is the whole string."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return fields[whole.group(1)]
        return REFERENCE.sub(lambda m: str(fields[m.group(1)]), value)
    if isinstance(value, dict):
        return {key: substitute(item, fields) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, fields) for item in value]
    return value


def _table_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    if path.suffix == ".csv":
        # every column as text ("007" stays "007"): a parameter's own type decides what a value means
        names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows_after_names=1 << 30)).column_names
        types = pa.schema([(name, pa.string()) for name in names])
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    elif path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        table = pajson.read_json(path)
    return table.to_pylist()


def _rows(recipe: Recipe, base_dir: Path) -> tuple[list[Variant], list[tuple[KeyPath, str]]]:
    source = recipe.variants
    if isinstance(source, str):
        path = (base_dir / Path(source).expanduser()).resolve()
        if path.suffix.lower() not in FILE_SUFFIXES:
            return [], [(("variants",), f"got {source!r}; expected a table file ({', '.join(FILE_SUFFIXES)})")]
        if not path.is_file():
            return [], [(("variants",), f"variants file {path} does not exist (relative to the recipe's folder)")]
        try:
            raw = _table_rows(path)
        except Exception as exc:
            return [], [(("variants",), f"cannot read variants file {path}: {type(exc).__name__}: {exc}")]
        # a CSV's first data row is its line 2
        places = [f"{path.name} row {i + 2 if path.suffix == '.csv' else i + 1}" for i in range(len(raw))]
    else:
        raw, places = list(source or []), [f"variants[{i}]" for i in range(len(source or []))]
    inline = not isinstance(source, str)
    problems: list[tuple[KeyPath, str]] = []
    rows: list[Variant] = []
    seen: dict[str, str] = {}
    if not raw:
        problems.append((("variants",), "the variants table has no rows; give at least one, each with an id"))
    for index, (row, where) in enumerate(zip(raw, places, strict=True)):
        key: KeyPath = ("variants", index) if inline else ("variants",)
        where = "" if inline else f"{where}: "  # an inline row's key path says which row it is
        if not isinstance(row, dict):
            problems.append((key, f"{where}got {type(row).__name__}; expected a mapping with an id and fields"))
            continue
        ident = row.get("id")
        ident = str(ident) if isinstance(ident, int) and not isinstance(ident, bool) else ident
        if not isinstance(ident, str) or not ROW_ID.fullmatch(ident):
            problems.append(
                (key, f"{where}got id {ident!r}; expected a plain name (letters, digits, '_', '-'; it names files)")
            )
            continue
        if ident in seen:
            problems.append((key, f"{where}id {ident!r} is repeated; the first is {seen[ident]}"))
            continue
        seen[ident] = places[index]
        rows.append(Variant(ident, {**row, "id": ident}, places[index]))
    return rows, problems


def expand_variants(recipe: Recipe, locator: Any, base_dir: Path) -> tuple[Recipe, Any]:
    """The recipe with its variant nodes instantiated per row (see the module's docstring), and ``locator`` (the
    recipe's :class:`~imgx.recipe.loader.Locator`) remapped so each copy's keys sit on the line of the node it was
    copied from, labelled with its row.

    :raises RecipeError: naming each problem's line.
    """
    direct: dict[int, list[tuple[tuple[Any, ...], str]]] = {}
    for index, spec in enumerate(recipe.stages):
        found = [(("stages", index, "with", *path), name) for path, name in references(spec.with_)]
        if found:
            direct[index] = found
    if recipe.variants is None:
        if direct:
            found = [p for refs in direct.values() for p in refs]
            raise locator.error(
                [
                    (path, f"refers to ${{variant.{name}}}, but the recipe has no variants: table")
                    for path, name in found
                ]
            )
        return recipe, locator
    rows, problems = _rows(recipe, base_dir)
    if not direct and not problems:
        problems.append(
            (("variants",), "no stage parameter refers to a variant field; write ${variant.NAME} in a stage's with:")
        )
    for found in direct.values():
        for path, name in found:
            for row in rows:
                if name not in row.fields:
                    fields = ", ".join(row.fields)
                    message = f"${{variant.{name}}}: {row.where} ({row.id!r}) has no {name!r}; its fields: {fields}"
                    problems.append((path, message))
    naming_set = "naming" in recipe.output.model_fields_set
    if naming_set and "{variant}" not in recipe.output.naming:
        problems.append(
            (
                ("output", "naming"),
                f"output.naming {recipe.output.naming!r} has no {{variant}}, so the variants of an output would "
                f"overwrite each other; add it, e.g. {VARIANT_NAMING!r}",
            )
        )
    if problems:
        raise locator.error(problems)

    varied = {recipe.stages[i].id for i in direct}
    changed = True  # stages may be listed in any order: close over needs until nothing changes
    while changed:
        changed = False
        for spec in recipe.stages:
            if spec.id not in varied and any(n in varied for n in spec.needs):
                varied.add(spec.id)
                changed = True

    stages: list[StageSpec] = []
    origin: list[tuple[int, Variant | None]] = []
    for index, spec in enumerate(recipe.stages):
        if spec.id not in varied:
            stages.append(spec)
            origin.append((index, None))
            continue
        for row in rows:
            needs = [f"{n}{VARIANT_SEPARATOR}{row.id}" if n in varied else n for n in spec.needs]
            copy = spec.model_copy(
                update={
                    "id": f"{spec.id}{VARIANT_SEPARATOR}{row.id}",
                    "needs": needs,
                    "with_": substitute(spec.with_, row.fields),
                }
            )
            stages.append(copy)
            origin.append((index, row))
    outputs = [
        name
        for out in recipe.output_ids
        for name in ([f"{out}{VARIANT_SEPARATOR}{row.id}" for row in rows] if out in varied else [out])
    ]
    output = recipe.output if naming_set else recipe.output.model_copy(update={"naming": VARIANT_NAMING})
    expanded = recipe.model_copy(update={"stages": stages, "outputs": outputs, "output": output})
    return expanded, locator.remapped(origin)
