"""YAML -> typed :class:`Recipe`, with errors that name the file, the line and the key path.

YAML is loaded safely; ``--set key.path=value`` overrides are applied to the parsed document before validation, so an
override is checked exactly like the file (an error in one names ``--set key.path``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import RecipeError
from .model import Recipe
from .variants import expand_variants

__all__ = [
    "IncompleteRecipe",
    "LoadedRecipe",
    "Locator",
    "Override",
    "apply_override",
    "format_key_path",
    "load_recipe",
    "parse_recipe",
    "validation_problems",
]

KeyPath = tuple[Any, ...]
# "key.path=value", or ("key.path=value", "--workers") to name the flag the user typed in errors.
Override = str | tuple[str, str]


@dataclasses.dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe and where it came from.

    :param recipe: the typed recipe.
    :param path: the recipe file (or ``"<string>"``).
    :param base_dir: the folder that relative paths in the recipe resolve against.
    :param locator: maps key paths to ``file:line`` for error messages after loading (plan, stage params).
    """

    recipe: Recipe
    path: str
    base_dir: Path
    locator: Locator

    def resolve(self, relative: str) -> Path:
        """A path from the recipe, resolved against the recipe's folder (``~`` expanded)."""
        path = Path(relative).expanduser()
        return (path if path.is_absolute() else self.base_dir / path).resolve()

    def error(self, problems: Sequence[tuple[KeyPath, str]]) -> RecipeError:
        """One :class:`RecipeError` for ``(key path, message)`` problems, each with its line."""
        return self.locator.error(problems)

    @property
    def hash(self) -> str:
        """sha256 of the recipe's content (stages, outputs, output settings); execution options excluded."""
        payload = self.recipe.model_dump(mode="json", by_alias=True, exclude={"execution", "description"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def format_key_path(key_path: KeyPath) -> str:
    text = ""
    for part in key_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclasses.dataclass(frozen=True)
class Locator:
    """Where each key of a recipe was written: a line of the file, or a ``--set`` override."""

    path: str
    lines: dict[KeyPath, int]
    overridden: dict[KeyPath, str] = dataclasses.field(default_factory=dict)  # key path -> the flag as typed
    # variants: stage j of the expanded recipe is stage origin[j][0] of the file, made for row origin[j][1] ("": none)
    origin: tuple[tuple[int, str], ...] = ()

    def remapped(self, origin: Sequence[tuple[int, Any]]) -> Locator:
        """This locator for a recipe whose stage ``j`` was copied from stage ``origin[j][0]`` of the one it locates
        (variants): a problem in a copy is placed on, and named by, the original's key path, and labelled with its
        variants row (``origin[j][1]``, with ``id`` and ``where``, or ``None``)."""
        rows = tuple((i, f"variant {row.id!r} ({row.where})" if row else "") for i, row in origin)
        return dataclasses.replace(self, origin=rows)

    def original(self, key_path: KeyPath) -> tuple[KeyPath, str]:
        """``key_path`` as written in the file (a variant copy's stage index mapped back), and its variant's label."""
        if self.origin and len(key_path) >= 2 and key_path[0] == "stages" and isinstance(key_path[1], int):
            index, label = self.origin[key_path[1]]
            return ("stages", index, *key_path[2:]), label
        return tuple(key_path), ""

    def locate(self, key_path: KeyPath) -> str:
        """``"file:line"`` (or ``"--set a.b"``) for the innermost known prefix of ``key_path``."""
        return self._written(self.original(key_path)[0])

    def _written(self, key_path: KeyPath) -> str:
        for end in range(len(key_path), -1, -1):
            prefix = tuple(key_path[:end])
            if prefix in self.overridden:
                return self.overridden[prefix]
            if prefix in self.lines:
                return f"{self.path}:{self.lines[prefix]}"
        return self.path

    def error(self, problems: Sequence[tuple[KeyPath, str]]) -> RecipeError:
        """One :class:`RecipeError` for all ``problems``; its ``problems`` attribute keeps them, so a later check can
        add its own and report everything in one message."""
        shown = []
        for key_path, message in problems:
            written, label = self.original(key_path)
            shown.append((written, f"{label}: {message}" if label else message))
        if len(shown) == 1:
            key_path, message = shown[0]
            error = RecipeError(message, location=self._written(key_path), key_path=format_key_path(key_path))
        else:
            rendered = "\n  ".join(f"{self._written(k)}: {format_key_path(k) or '(top level)'}: {m}" for k, m in shown)
            error = RecipeError(f"{len(shown)} problems in the recipe:\n  {rendered}", location=self.path)
        error.problems = list(problems)  # type: ignore[attr-defined]
        return error


class IncompleteRecipe(RecipeError):
    """The recipe has problems of its own (keys, types, ids); it carries the parsed document, so the checks that
    need the registry (stage names and parameters) can still run on it and every problem is reported at once.

    :param locator: where each key was written.
    :param problems: ``(key path, message)`` found so far.
    :param document: the recipe as parsed YAML (overrides applied).
    :param base_dir: the recipe's folder.
    """

    def __init__(
        self, locator: Locator, problems: Sequence[tuple[KeyPath, str]], document: dict[str, Any], base_dir: Path
    ) -> None:
        self.locator, self.problems, self.document, self.base_dir = locator, list(problems), document, base_dir
        error = locator.error(problems)
        super().__init__(error.message, location=error.location, key_path=error.key_path)


def _line_map(node: yaml.Node, source: str) -> dict[KeyPath, int]:
    """Walk the composed YAML tree: key path -> line. Duplicate mapping keys are errors (PyYAML keeps the last)."""
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}

    def walk(current: yaml.Node, prefix: KeyPath) -> None:
        if isinstance(current, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in current.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise RecipeError(
                        f"duplicate key {key!r} (first on line {seen[key]}); remove one of them",
                        location=f"{source}:{line}",
                        key_path=format_key_path((*prefix, key)),
                    )
                seen[key] = line
                lines[(*prefix, key)] = line
                walk(value_node, (*prefix, key))
        elif isinstance(current, yaml.SequenceNode):
            for index, child in enumerate(current.value):
                lines[(*prefix, index)] = child.start_mark.line + 1
                walk(child, (*prefix, index))

    walk(node, ())
    return lines


def apply_override(document: dict[str, Any], assignment: str) -> KeyPath:
    """Apply ``key.path=value`` (value parsed as YAML) to ``document`` in place; return the key path.

    List items are addressed by index (``stages.0.with.saturation=1.2``) or, in ``stages``, by node id
    (``stages.enhanced.with.saturation=1.2``).
    """
    if "=" not in assignment:
        raise RecipeError(f"got --set {assignment!r}; expected key.path=value, e.g. execution.workers=4")
    dotted, _, raw_value = assignment.partition("=")
    parts = [p for p in dotted.strip().split(".")]
    if not all(parts):
        raise RecipeError(f"got --set {assignment!r}; the key path has an empty part")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError as exc:
        raise RecipeError(f"got --set {assignment!r}; the value is not valid YAML: {exc}") from None
    target: Any = document
    key_path: list[Any] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(target, list):
            index = _list_index(target, part, assignment)
            key_path.append(index)
            if last:
                target[index] = value
            else:
                target = target[index]
        elif isinstance(target, dict):
            key = "with" if (part == "with_") else part
            key_path.append(key)
            if last:
                target[key] = value
            else:
                if not isinstance(target.get(key), (dict, list)):
                    target[key] = {}
                target = target[key]
        else:
            raise RecipeError(
                f"got --set {assignment!r}; {'.'.join(parts[:depth])} is a {type(target).__name__}, not a mapping"
            )
    return tuple(key_path)


def _list_index(items: list[Any], part: str, assignment: str) -> int:
    if part.lstrip("-").isdigit():
        index = int(part)
        if -len(items) <= index < len(items):
            return index % len(items)
        raise RecipeError(f"got --set {assignment!r}; index {index} is out of range (the list has {len(items)} items)")
    for index, entry in enumerate(items):
        if isinstance(entry, dict) and entry.get("id") == part:
            return index
    ids = [e.get("id") for e in items if isinstance(e, dict)]
    raise RecipeError(f"got --set {assignment!r}; no item with id {part!r}; known: {', '.join(map(str, ids))}")


def validation_problems(
    exc: ValidationError, document: Any, model: type[BaseModel], prefix: KeyPath = ()
) -> list[tuple[KeyPath, str]]:
    """pydantic errors as ``(key path, message)``: one problem per key (a value tried against a union gives one
    error per member; they are merged), key paths as the user wrote them (no pydantic type tags), and the close
    names for an unknown key.

    :param document: the raw value that was validated (the recipe document, a stage's ``with:``).
    :param model: the model it was validated against.
    :param prefix: the key path of ``document`` within the recipe.
    """
    merged: dict[KeyPath, list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = _real_loc(tuple(error["loc"]), document, missing=error["type"] == "missing")
        message = _friendly(error)
        if error["type"] == "extra_forbidden":
            known = _sibling_keys(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            message += f" Did you mean {close[0]!r}?" if close else ""
            message += f" Known keys here: {', '.join(known)}." if known else ""
        messages = merged.setdefault(prefix + loc, [])
        if message not in messages:
            messages.append(message)
    return [(loc, _join_alternatives(messages)) for loc, messages in merged.items()]


def _real_loc(loc: KeyPath, document: Any, *, missing: bool) -> KeyPath:
    """The part of pydantic's ``loc`` that names keys of the document; the rest are union-member tags
    (``size.constrained-int``). A missing key is kept: it names what to add."""
    real: list[Any] = []
    current = document
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            current = current[part]
        else:
            if missing and isinstance(part, str) and isinstance(current, dict):
                real.append(part)
            break
        real.append(part)
    return tuple(real)


def _sibling_keys(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys a model accepts at ``loc`` (for "did you mean"), following nested models through lists."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        field = next((f for n, f in fields.items() if part in (n, f.alias)), None)
        if field is None:
            return []
        current = field.annotation
        for candidate in (current, *typing.get_args(current)):
            inner = typing.get_args(candidate)
            found = next((a for a in (candidate, *inner) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            if found is not None:
                current = found
                break
    fields = getattr(current, "model_fields", None) or {}
    return [f.alias or n for n, f in fields.items()]


def _join_alternatives(messages: list[str]) -> str:
    if len(messages) == 1:
        return messages[0]
    head, *rest = messages
    return head + "".join(f"; or {m.split('; ', 1)[-1]}" for m in rest)


def _friendly(error: dict[str, Any]) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key; remove it or fix its spelling."
    if kind == "missing":
        return "required key is missing"
    text = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind.startswith(("literal", "greater", "less", "int_", "float_")):
        return f"got {given!r}; {text[0].lower()}{text[1:]}"
    return text


def parse_recipe(
    text: str, *, path: str = "<string>", base_dir: Path | None = None, overrides: Sequence[Override] = ()
) -> LoadedRecipe:
    """Parse and validate recipe text. Raises :class:`RecipeError` naming the line and key path of each problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise RecipeError(f"not valid YAML: {exc.problem or exc}", location=f"{path}{line}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"not valid YAML: {exc}", location=path) from None
    if node is None or not isinstance(document, dict):
        raise RecipeError(
            "expected a mapping with version, name, input, stages; got "
            + ("an empty file" if node is None else type(document).__name__),
            location=path,
        )
    overridden: dict[KeyPath, str] = {}
    for override in overrides:
        assignment, label = (override, "") if isinstance(override, str) else override
        key_path = apply_override(document, assignment)
        overridden[key_path] = label or f"--set {assignment.partition('=')[0].strip()}"
    locator = Locator(path, _line_map(node, path), overridden)
    folder = (base_dir or Path.cwd()).resolve()
    try:
        recipe = Recipe.model_validate(document)
    except ValidationError as exc:
        raise IncompleteRecipe(locator, validation_problems(exc, document, Recipe), document, folder) from None
    problems = recipe.problems()
    if problems:
        raise IncompleteRecipe(locator, problems, document, folder)
    recipe, locator = expand_variants(recipe, locator, folder)
    return LoadedRecipe(recipe=recipe, path=path, base_dir=folder, locator=locator)


def load_recipe(path: str | Path, *, overrides: Sequence[Override] = ()) -> LoadedRecipe:
    """Read, parse and validate a recipe file; relative paths in it resolve against its folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read recipe {file}: {exc}") from None
    return parse_recipe(text, path=str(file), base_dir=file.parent, overrides=overrides)
