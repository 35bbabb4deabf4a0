"""Catalogs: a folder of images or a manifest (CSV, JSONL, Parquet) of SKUs and image paths or URIs.

Reading is streaming: items are yielded one by one and nothing is held per item except the SKUs already seen (to
turn a duplicate SKU into a per-item failure instead of two items writing the same output).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import RecipeError
from ..hookspecs import hookimpl
from ..item import ItemRef

if TYPE_CHECKING:
    from ..recipe.loader import LoadedRecipe
    from ..registry import Registry

__all__ = [
    "Catalog",
    "CatalogReader",
    "CsvReader",
    "JsonlReader",
    "ParquetReader",
    "glob_to_regex",
    "open_catalog",
]

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class CatalogReader:
    """Reads one manifest format; register subclasses through the ``imgx_catalog_readers`` hook.

    :param path: the manifest file.
    :param columns: the two columns to read (SKU, image).
    """

    registers_as: ClassVar[str] = "catalog reader"
    suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path, columns: tuple[str, str]) -> None:
        self.path = path
        self.columns = columns

    @classmethod
    def registration_problem(cls) -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, CatalogReader) and cls.suffixes):
            return f"got {cls!r} from imgx_catalog_readers; expected a CatalogReader with suffixes"
        return None

    @classmethod
    def registry_keys(cls) -> tuple[str, ...]:
        return tuple(suffix.lower() for suffix in cls.suffixes)

    def rows(self) -> Iterator[tuple[Any, Any]]:
        """Yield ``(sku, image)`` per row, in file order. Raise :class:`RecipeError` if a column is missing."""
        raise NotImplementedError

    def _missing(self, available: list[str]) -> RecipeError:
        sku, image = self.columns
        missing = [c for c in self.columns if c not in available]
        return RecipeError(
            f"manifest {self.path} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, available))}. Set input.sku_column / input.image_column "
            f"(now {sku!r} / {image!r})",
            key_path="input",
        )


class CsvReader(CatalogReader):
    """CSV (comma) and TSV (tab) manifests with a header row."""

    suffixes = (".csv", ".tsv")

    def rows(self) -> Iterator[tuple[Any, Any]]:
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            fields = list(reader.fieldnames or [])
            if any(c not in fields for c in self.columns):
                raise self._missing(fields)
            sku, image = self.columns
            for row in reader:
                yield row.get(sku), row.get(image)


class JsonlReader(CatalogReader):
    """JSON Lines manifests: one object per line; a line that is not JSON becomes a failed item."""

    suffixes = (".jsonl", ".ndjson")

    def rows(self) -> Iterator[tuple[Any, Any]]:
        sku, image = self.columns
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield None, _RowError(f"manifest line {number} is not valid JSON: {exc.msg}")
                    continue
                if not isinstance(row, dict):
                    yield None, _RowError(f"manifest line {number} is a {type(row).__name__}; expected an object")
                    continue
                yield row.get(sku), row.get(image)


class ParquetReader(CatalogReader):
    """Parquet manifests, read in record batches (only the two columns)."""

    suffixes = (".parquet", ".pq")

    def rows(self) -> Iterator[tuple[Any, Any]]:
        import pyarrow.parquet as pq

        file = pq.ParquetFile(self.path)
        names = file.schema_arrow.names
        if any(c not in names for c in self.columns):
            raise self._missing(names)
        for batch in file.iter_batches(batch_size=8192, columns=list(self.columns)):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)


class _RowError(str):
    """A row the reader could not parse: its text is the reason."""


@hookimpl
def imgx_catalog_readers() -> list[type[CatalogReader]]:
    return [CsvReader, JsonlReader, ParquetReader]


def glob_to_regex(pattern: str, *, case_sensitive: bool = False) -> re.Pattern[str]:
    """Translate a glob over posix relative paths: ``**/`` spans folders (or none), ``*`` and ``?`` stay within one
    folder, ``[abc]`` / ``[!abc]`` classes and ``{jpg,png}`` alternatives."""

    def translate(text: str) -> str:
        out, i, n = [], 0, len(text)
        while i < n:
            c = text[i]
            if text.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            if text.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "[" and "]" in text[i + 2 :]:
                end = text.index("]", i + 2)
                body = text[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end
            elif c == "{" and "}" in text[i:]:
                end = text.index("}", i)
                out.append("(?:" + "|".join(translate(alt) for alt in text[i + 1 : end].split(",")) + ")")
                i = end
            else:
                out.append(re.escape(c))
            i += 1
        return "".join(out)

    return re.compile(f"^{translate(pattern)}$", 0 if case_sensitive else re.IGNORECASE)


class Catalog:
    """The items of a recipe's input, streamed in a stable order.

    :param root: the folder or manifest.
    :param kind: ``"folder"`` or ``"manifest"``.
    :param patterns: folders: compiled globs a relative path must match.
    :param excludes: folders: compiled globs that leave a path out.
    :param skip_dirs: folders never walked (the output folder, when it lies inside the catalog).
    :param limit: yield at most this many items.
    """

    def __init__(
        self,
        root: Path,
        kind: str,
        *,
        rows: Any = None,
        patterns: tuple[re.Pattern[str], ...] = (),
        excludes: tuple[re.Pattern[str], ...] = (),
        skip_dirs: tuple[Path, ...] = (),
        limit: int | None = None,
    ) -> None:
        self.root = root
        self.kind = kind
        self._reader = rows
        self._patterns = patterns
        self._excludes = excludes
        self._skip_dirs = tuple(os.path.realpath(p) for p in skip_dirs)
        self.limit = limit

    def __iter__(self) -> Iterator[ItemRef]:
        source = self._folder_items() if self.kind == "folder" else self._manifest_items()
        seen: dict[str, int] = {}
        for index, ref in enumerate(source):
            if self.limit is not None and index >= self.limit:
                return
            if ref.error is None:
                if ref.sku in seen:
                    ref = ItemRef(ref.sku, ref.source, index, f"duplicate sku: item {seen[ref.sku]} has the same sku")
                else:
                    seen[ref.sku] = index
            yield ItemRef(ref.sku, ref.source, index, ref.error)

    def count(self) -> int:
        """How many items iteration yields (walks the folder or reads the manifest once; reads no image)."""
        return sum(1 for _ in self)

    def _folder_items(self) -> Iterator[ItemRef]:
        for relative in self._walk(self.root, ""):
            if any(p.match(relative) for p in self._patterns) and not any(p.match(relative) for p in self._excludes):
                sku = relative.rsplit(".", 1)[0] if "." in relative.rsplit("/", 1)[-1] else relative
                yield ItemRef(sku, str(self.root / relative))

    def _walk(self, folder: Path, prefix: str) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "_imgx":
                continue
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=True):
                if os.path.realpath(entry.path) in self._skip_dirs:
                    continue
                yield from self._walk(Path(entry.path), relative + "/")
            else:
                yield relative

    def _manifest_items(self) -> Iterator[ItemRef]:
        base = self.root.parent
        for number, (sku, image) in enumerate(self._reader.rows(), start=1):
            if isinstance(image, _RowError):
                yield ItemRef(f"<row {number}>", str(self.root), error=str(image))
                continue
            sku_text = "" if sku is None else str(sku).strip()
            image_text = "" if image is None else str(image).strip()
            if not sku_text:
                yield ItemRef(f"<row {number}>", image_text, error=f"manifest row {number} has an empty sku")
            elif not image_text:
                yield ItemRef(sku_text, "", error=f"manifest row {number} has an empty image path")
            elif _URI.match(image_text) or os.path.isabs(image_text):
                yield ItemRef(sku_text, image_text)
            else:
                yield ItemRef(sku_text, str(base / image_text))


def open_catalog(loaded: LoadedRecipe, registry: Registry, *, skip_dirs: tuple[Path, ...] = ()) -> Catalog:
    """The catalog a recipe's ``input`` names. Raises :class:`RecipeError` if it does not exist or has no reader."""
    spec = loaded.recipe.input
    root = loaded.resolve(spec.path)
    if root.is_dir():
        patterns = tuple(glob_to_regex(p, case_sensitive=spec.case_sensitive) for p in spec.patterns)
        excludes = tuple(glob_to_regex(p, case_sensitive=spec.case_sensitive) for p in spec.excludes)
        return Catalog(root, "folder", patterns=patterns, excludes=excludes, skip_dirs=skip_dirs, limit=spec.limit)
    if not root.exists():
        raise loaded.error([(("input", "path"), f"got {spec.path!r}, resolved to {root}; no such folder or file")])
    reader = registry.reader_for_suffix(root.suffix)
    if reader is None:
        known = ", ".join(sorted(registry.catalog_readers))
        raise loaded.error(
            [(("input", "path"), f"got manifest {root.name!r}; expected a folder or a manifest ending in {known}")]
        )
    return Catalog(root, "manifest", rows=reader(root, (spec.sku_column, spec.image_column)), limit=spec.limit)
