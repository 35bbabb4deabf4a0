"""Output file names from a template; SKUs are untrusted and nothing may land outside the output folder.

A template is a ``str.format`` string over :data:`TEMPLATE_FIELDS`, e.g. ``"{sku}/{output}.{ext}"``:

- ``sku``: the SKU itself; ``/`` in a SKU makes folders (``"shoes/red-1"`` -> ``out/shoes/red-1/...``);
- ``output``: the recipe's output name; ``ext``: the file extension of the output format;
- ``stem``: the last ``/``-separated component of the SKU;
- ``sku_hash``: the first 16 hex digits of the SHA-256 of the SKU (UTF-8): fixed length, for long or odd SKUs;
- ``variant``: the id of the variants row an output was made for (``hero@vintage`` is written as output ``hero``,
  variant ``vintage``); empty for an output no variant changes, and then a ``-``, ``_``, ``.`` or ``/`` right before
  it goes too (``{output}-{variant}.{ext}`` -> ``cutout.png``; ``{sku}/{variant}/{output}.{ext}`` ->
  ``sku/cutout.png``).

:func:`output_path` rejects, with an :class:`imgx.OutputError` naming the SKU: empty SKUs, control characters (NUL,
newlines, ...), backslashes, absolute paths, ``.``/``..`` or empty components, components over 255 bytes, paths over
4096 bytes, anything under the reserved top-level folder ``_imgx`` (the ledger), and, as a last line of defence, any
path whose normalised or symlink-resolved location is not inside the output folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import re
import string
import unicodedata

from ..errors import OutputError
from . import fs

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "RESERVED_DIR",
    "TEMPLATE_FIELDS",
    "VARIANT_SEPARATOR",
    "output_path",
    "split_output",
    "validate_template",
]

TEMPLATE_FIELDS: tuple[str, ...] = ("sku", "output", "ext", "stem", "sku_hash", "variant")
#: The top-level folder of the output directory that imgx keeps for itself (ledger, temp files).
RESERVED_DIR = "_imgx"
MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux/macOS file systems
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
_SHOWN_CHARS = 60
_NO_VARIANT = "\x00"  # {variant} of an output no variant changes: removed with the separator before it
_DANGLING = re.compile("^\x00/|[-_./]?\x00")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})  # control chars, lone surrogates, line/para separators


VARIANT_SEPARATOR = "@"  # a variants row's output: "<node>@<row>" (see imgx.recipe.variants)


def split_output(output: str) -> tuple[str, str]:
    """``"hero@vintage"`` -> ``("hero", "vintage")``; an output no variant changes -> ``(output, "")``."""
    base, _, variant = output.partition(VARIANT_SEPARATOR)
    return base, variant


def sku_hash(sku: str) -> str:
    """First 16 hex digits of the SHA-256 of the UTF-8 SKU."""
    return hashlib.sha256(sku.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def validate_template(template: str, *, n_outputs: int) -> None:
    """Check an ``output.naming`` template before any image is read.

    :param template: the ``str.format`` template.
    :param n_outputs: how many outputs the recipe writes (more than one needs ``{output}`` to tell them apart).
    :raises ValueError: with a message that says how to fix the template.
    """
    example = "'{sku}/{output}.{ext}'"
    if not template:
        raise ValueError(f"output.naming is empty; expected a template such as {example}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"output.naming {template!r} is not a valid template ({exc}); write fields as {{name}} and a literal "
            "brace as {{ or }}"
        ) from exc
    fields = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            raise ValueError(
                f"output.naming {template!r} uses unknown field {{{field}}}; expected only "
                + ", ".join(f"{{{name}}}" for name in TEMPLATE_FIELDS)
                + f", e.g. {example}"
            )
        if spec or conversion:
            raise ValueError(
                f"output.naming {template!r} formats field {{{field}}}; write plain fields such as {{{field}}} "
                "(no '!conversion' or ':spec')"
            )
        fields.add(field)
    if not fields & {"sku", "sku_hash"}:
        raise ValueError(
            f"output.naming {template!r} has neither {{sku}} nor {{sku_hash}}, so every SKU would write the same "
            f"file; add one, e.g. {example}"
        )
    if n_outputs > 1 and "output" not in fields:
        raise ValueError(
            f"output.naming {template!r} has no {{output}} but the recipe writes {n_outputs} outputs per SKU, which "
            f"would overwrite each other; add {{output}}, e.g. {example}"
        )
    if "ext" not in fields:
        raise ValueError(
            f"output.naming {template!r} has no {{ext}}, so file names would not match their format; end it with "
            f"'.{{ext}}', e.g. {example}"
        )
    # The literal parts must be safe too: render with a harmless SKU and apply the same rules as for real SKUs.
    rendered = template.format(sku="sku", output="output", ext="ext", stem="sku", sku_hash="0" * 16, variant="v")
    reason = _path_problem(rendered)
    if reason is not None:
        raise ValueError(
            f"output.naming {template!r} renders a path that {reason}; expected a relative path like {example}"
        )


def output_path(out_dir: pathlib.Path | str, template: str, *, sku: str, output: str, ext: str) -> pathlib.Path | str:
    """The file that output ``output`` of ``sku`` is written to: ``out_dir / template.format(...)``.

    :param out_dir: the run's output folder (need not exist yet): a local ``Path`` (gives a ``Path``) or an
        object-store URI ``str`` such as ``s3://bucket/prefix`` (gives the object's URI; the same rules apply to the
        key, and an object store has no symlinks to follow).
    :param template: a template that passed :func:`validate_template`.
    :param sku: the SKU (untrusted).
    :param output: the recipe's output name; :param ext: the file extension (no dot).
    :raises OutputError: naming the SKU, when the SKU or the rendered path is unsafe (see the module docs).
    """
    shown = _show(sku)
    if not isinstance(sku, str) or not sku:
        raise OutputError(f"unsafe SKU {shown}: SKU is empty")
    reason = _sku_problem(sku)
    if reason is not None:
        raise OutputError(f"unsafe SKU {shown}: the SKU {reason}")
    if not _is_plain_template(template):
        raise OutputError(f"output.naming {template!r} is not a valid template; run validate_template() on it first")
    output, variant = split_output(output)
    fields = {"sku": sku, "output": output, "ext": ext, "stem": sku.rsplit("/", 1)[-1], "sku_hash": sku_hash(sku)}
    fields["variant"] = variant or _NO_VARIANT
    try:
        relative = _DANGLING.sub("", template.format_map(fields)) if not variant else template.format_map(fields)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise OutputError(f"output.naming {template!r} cannot be rendered for SKU {shown}: {exc}") from exc
    reason = _path_problem(relative)
    if reason is not None:
        raise OutputError(f"unsafe SKU {shown}: its output path {_show(relative)} {reason}")
    path = pathlib.Path(out_dir) / relative if fs.is_local(out_dir) else fs.join(str(out_dir), relative)
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise OutputError(
            f"unsafe SKU {shown}: output path is longer than {MAX_PATH_BYTES} bytes; use {{sku_hash}} in "
            "output.naming for long SKUs"
        )
    if isinstance(path, str):
        return path
    # Defence in depth: lexically, then through symlinks that already exist under out_dir.
    root = os.path.abspath(out_dir)
    target = os.path.normpath(os.path.join(root, relative))
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(os.path.dirname(target))
    if _outside(target, root) or _outside(real_parent, real_root):
        raise OutputError(f"unsafe SKU {shown}: output path {path} resolves outside the output folder {out_dir}")
    return path


@functools.lru_cache(maxsize=64)
def _is_plain_template(template: str) -> bool:
    """Only plain :data:`TEMPLATE_FIELDS` (no ``{sku.attr}``, ``{sku[0]}``, conversions or specs): cached per run."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return False
    return all(field is None or (field in TEMPLATE_FIELDS and not spec and not conv) for _, field, spec, conv in parsed)


def _sku_problem(sku: str) -> str | None:
    for char in sku:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return f"contains the control character {char!r}; SKUs must be printable text"
    if "\\" in sku:
        return "contains a backslash; use '/' to make folders"
    if sku.startswith("/"):
        return "is an absolute path; SKUs must be relative"
    return _components_problem(sku.split("/"), check_length=False)  # lengths: on the rendered path ({sku_hash}!)


def _path_problem(relative: str) -> str | None:
    """Why a rendered relative path is unsafe, or ``None``."""
    if "\x00" in relative or "\\" in relative:
        return "contains a NUL or a backslash"
    if relative.startswith("/"):
        return "is absolute; it must be relative to the output folder"
    parts = relative.split("/")
    if parts[0].casefold() == RESERVED_DIR:
        return f"lands in the reserved folder {RESERVED_DIR}/ (kept for the ledger)"
    return _components_problem(parts)


def _components_problem(parts: list[str], *, check_length: bool = True) -> str | None:
    for part in parts:
        if part == "":
            return "has an empty path component ('a//b' or a leading/trailing '/')"
        if part in (".", ".."):
            return f"has a {part!r} path component"
        if check_length and len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
            return (
                f"has a path component longer than {MAX_COMPONENT_BYTES} bytes; use {{sku_hash}} in output.naming "
                "for long SKUs"
            )
    return None


def _outside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) != root
    except ValueError:  # different drives (Windows) or a mix of absolute and relative
        return True


def _show(sku: object) -> str:
    """``repr`` of a SKU, truncated so a 10 kB SKU does not flood the ledger."""
    if isinstance(sku, str) and len(sku) > _SHOWN_CHARS:
        return f"{sku[:_SHOWN_CHARS]!r}... ({len(sku)} chars)"
    return repr(sku)
