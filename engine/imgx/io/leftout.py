"""What a folder catalog's patterns leave out: files under the folder that no ``input.pattern`` takes, counted per
extension with a few examples, so a run never drops ``.jpeg`` files (or any others) without a word.

The folder is streamed with ``os.scandir`` and memory stays bounded however large it is: one counter per extension
and at most ``examples`` paths. Folders and files are skipped exactly as the catalog skips them (hidden entries,
``_imgx``, the output folder), and files that ``input.exclude`` leaves out on purpose are counted apart.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "LeftOut", "left_out"]

# What imgx decodes (the extensions of the default input.pattern).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})


@dataclasses.dataclass
class LeftOut:
    """Files of a folder catalog that its patterns did not take.

    :param by_extension: lower-case extension (``".jpeg"``, ``""`` for none) -> files left out.
    :param examples: up to a few relative paths, images first.
    :param excluded: files that a pattern took but ``input.exclude`` left out (on purpose; files under an excluded
        glob are never counted as left out by the patterns).
    """

    by_extension: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: list[str] = dataclasses.field(default_factory=list)
    excluded: int = 0

    @property
    def images(self) -> int:
        """Left-out files with an extension imgx decodes: the ones a user most likely wanted."""
        return sum(n for ext, n in self.by_extension.items() if ext in IMAGE_EXTENSIONS)

    @property
    def total(self) -> int:
        return sum(self.by_extension.values())

    def describe(self) -> str:
        """One line for ``imgx plan``, ``--dry-run`` and the run summary; ``""`` when nothing was left out."""
        if not self.total:
            return ""
        counts = ", ".join(
            f"{ext or '(no extension)'} {n:,}"
            for ext, n in sorted(
                self.by_extension.items(), key=lambda kv: (kv[0] not in IMAGE_EXTENSIONS, -kv[1], kv[0])
            )
        )
        text = f"input.pattern left out {self.total:,} file(s) of the folder"
        if self.images:
            text += f", {self.images:,} of them images imgx can read"
        text += f" ({counts}), e.g. {', '.join(self.examples)}"
        if self.images:
            text += "; widen input.pattern (or remove it: every image extension is the default) to take them"
        return text


def left_out(
    root: Path,
    patterns: Iterable[re.Pattern[str]],
    excludes: Iterable[re.Pattern[str]] = (),
    *,
    skip_dirs: Iterable[Path] = (),
    examples: int = 5,
) -> LeftOut:
    """Walk ``root`` as the folder catalog does and count what ``patterns`` do not take (see :class:`LeftOut`).

    :param patterns: the compiled ``input.pattern`` globs (``imgx.io.catalog.glob_to_regex``).
    :param excludes: the compiled ``input.exclude`` globs.
    :param skip_dirs: folders never walked (the output folder inside the catalog).
    :param examples: the most example paths kept.
    """
    patterns, excludes = tuple(patterns), tuple(excludes)
    skip = {os.path.realpath(p) for p in skip_dirs}
    found = LeftOut()
    other_examples: list[str] = []
    for relative in _walk(str(root), "", skip):
        if any(p.match(relative) for p in excludes):  # left out on purpose, whatever the patterns say
            found.excluded += any(p.match(relative) for p in patterns)
            continue
        if any(p.match(relative) for p in patterns):
            continue
        name = relative.rsplit("/", 1)[-1]
        ext = os.path.splitext(name)[1].lower()
        found.by_extension[ext] = found.by_extension.get(ext, 0) + 1
        if ext in IMAGE_EXTENSIONS and len(found.examples) < examples:
            found.examples.append(relative)
        elif ext not in IMAGE_EXTENSIONS and len(other_examples) < examples:
            other_examples.append(relative)
    found.examples += other_examples[: examples - len(found.examples)]
    return found


def _walk(folder: str, prefix: str, skip: set[str]) -> Iterator[str]:
    try:
        with os.scandir(folder) as entries:
            listed = sorted((e.name, e.path, e.is_dir(follow_symlinks=True)) for e in entries)  # one folder's
    except OSError:
        return
    for name, path, is_dir in listed:
        if name.startswith(".") or name == "_imgx":
            continue
        if is_dir:
            if os.path.realpath(path) not in skip:
                yield from _walk(path, f"{prefix}{name}/", skip)
        else:
            yield prefix + name
