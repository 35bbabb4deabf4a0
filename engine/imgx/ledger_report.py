"""What a catalog team reads after a run: the current state of every (sku, output), failures grouped by cause, and a
before/after contact sheet.

The ledger keeps every row of every run; the *current* state of a (sku, output) is its latest row that is not
``skipped`` (a skipped row means the earlier ``ok`` row still stands).
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageDraw

from .errors import ImgxError
from .io.atomic import atomic_write
from .io.decode import decode_image
from .io.source import read_source
from .ledger import StatePaths, read_ledger

__all__ = ["LedgerReport", "contact_sheet", "current_state", "summarize"]


def current_state(out_dir: Path, ledger: pa.Table | None = None) -> pa.Table:
    """One row per (sku, output): the latest non-skipped ledger row (of ``ledger``, when it was read already)."""
    table = read_ledger(out_dir) if ledger is None else ledger
    if table.num_rows == 0:
        raise ImgxError(f"no ledger in {out_dir}; expected the output.dir of a run (it holds _imgx/ledger/)")
    table = table.filter(pc.not_equal(table["status"], "skipped"))
    table = table.sort_by([("finished_at", "descending")])
    columns = [c for c in table.column_names if c not in ("sku", "output")]
    latest = table.group_by(["sku", "output"], use_threads=False).aggregate([(c, "first") for c in columns])
    latest = latest.rename_columns([n.removesuffix("_first") for n in latest.column_names])
    return latest.sort_by([("sku", "ascending"), ("output", "ascending")])


@dataclasses.dataclass
class LedgerReport:
    """Counts and the commonest failure causes of an output folder's current state."""

    out_dir: Path
    items: int
    outputs: int
    ok: int
    failed: int
    runs: int
    by_cause: list[tuple[str, str, int]]  # (stage, reason, count), commonest first
    slowest: list[tuple[str, str, float]]  # (sku, output, duration_ms)
    state: pa.Table  # the current state itself, one row per (sku, output)

    @property
    def flagged(self) -> int:
        """Outputs whose stages flagged them (the ledger's ``flags``, e.g. ``centred:fill_below_min``)."""
        flags = self.state["flags"] if "flags" in self.state.column_names else pa.nulls(0, pa.string())
        return int(pc.sum(pc.greater(pc.utf8_length(flags.fill_null("")), 0)).as_py() or 0)


def _reason(error: str) -> str:
    """An error without its item-specific tail, so identical causes group together."""
    head = error.split(": ", 2)
    return ": ".join(head[:2]) if len(head) > 2 and len(head[0]) < 40 else error[:120]


def summarize(out_dir: Path, *, top: int = 10) -> LedgerReport:
    """Summarise the current state of ``out_dir``'s ledger (read once)."""
    ledger = read_ledger(out_dir)
    state = current_state(out_dir, ledger)
    rows = state.select(["sku", "output", "status", "stage", "error", "duration_ms"]).to_pylist()
    causes = Counter((r["stage"], _reason(r["error"])) for r in rows if r["status"] == "failed")
    ok = [r for r in rows if r["status"] == "ok"]
    slowest = sorted(ok, key=lambda r: -(r["duration_ms"] or 0.0))[:top]
    runs = len(pc.unique(ledger["run_id"]))
    return LedgerReport(
        out_dir=out_dir,
        items=len({r["sku"] for r in rows}),
        outputs=len(rows),
        ok=len(ok),
        failed=len(rows) - len(ok),
        runs=runs,
        by_cause=[(stage, reason, count) for (stage, reason), count in causes.most_common(top)],
        slowest=[(r["sku"], r["output"], r["duration_ms"]) for r in slowest],
        state=state,
    )


def _thumbnail(image: Image.Image, cell: int) -> Image.Image:
    image = image.copy()
    image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    if image.mode == "RGBA":  # show transparency on a checkerboard, as editors do
        board = Image.new("RGB", image.size, (235, 235, 235))
        draw = ImageDraw.Draw(board)
        for y in range(0, image.height, 8):
            for x in range((y // 8 % 2) * 8, image.width, 16):
                draw.rectangle([x, y, x + 7, y + 7], fill=(205, 205, 205))
        board.paste(image, mask=image.getchannel("A"))
        image = board
    return image.convert("RGB")


def _place(sheet: Image.Image, tile: Image.Image, left: int, top: int, cell: int) -> None:
    """Centre ``tile`` in a light grey cell, so white canvases and padding show where they end."""
    sheet.paste((228, 228, 228), (left + 1, top + 1, left + cell - 1, top + cell - 1))
    sheet.paste(tile, (left + (cell - tile.width) // 2, top + (cell - tile.height) // 2))


def _message_cell(text: str, cell: int, colour: tuple[int, int, int]) -> Image.Image:
    tile = Image.new("RGB", (cell, cell), colour)
    draw = ImageDraw.Draw(tile)
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > cell // 7:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    draw.multiline_text((6, 6), "\n".join(lines[: cell // 14]), fill=(255, 255, 255))
    return tile


def contact_sheet(
    out_dir: Path, destination: Path, *, limit: int = 24, cell: int = 192, failed_first: bool = True
) -> int:
    """Write a JPEG/PNG contact sheet: one row per SKU, its source then each output (failed outputs show the reason).

    :return: how many SKUs the sheet shows.
    """
    state = current_state(out_dir).to_pylist()
    by_sku: dict[str, dict[str, dict]] = {}
    for row in state:
        by_sku.setdefault(row["sku"], {})[row["output"]] = row
    outputs = sorted({row["output"] for row in state})
    skus = sorted(by_sku, key=lambda s: (not any(r["status"] == "failed" for r in by_sku[s].values()), s))
    skus = skus[:limit] if failed_first else sorted(by_sku)[:limit]
    label = 18
    sheet = Image.new("RGB", ((1 + len(outputs)) * cell, label + len(skus) * (cell + label)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(["source", *outputs]):
        draw.text((column * cell + 4, 3), title, fill=(0, 0, 0))
    for row_index, sku in enumerate(skus):
        top = label + row_index * (cell + label)
        draw.text((4, top + 2), sku[:60], fill=(60, 60, 60))
        rows = by_sku[sku]
        source = next(iter(rows.values()))["source"]
        try:
            item = decode_image(read_source(source), sku=sku, source=source)
            tile = _thumbnail(Image.fromarray(item.image), cell - 8)
        except ImgxError as exc:
            tile = _message_cell(f"source unreadable: {exc}", cell - 8, (150, 40, 40))
        _place(sheet, tile, 0, top + label, cell)
        for column, output in enumerate(outputs, start=1):
            row = rows.get(output)
            if row is None:
                tile = _message_cell("not run", cell - 8, (120, 120, 120))
            elif row["status"] != "ok":
                tile = _message_cell(f"{row['stage']}: {row['error']}", cell - 8, (170, 30, 30))
            else:
                with Image.open(out_dir / row["path"]) as produced:
                    tile = _thumbnail(produced.convert("RGBA" if "A" in produced.mode else "RGB"), cell - 8)
            _place(sheet, tile, column * cell, top + label, cell)
    buffer = io.BytesIO()
    fmt = "PNG" if destination.suffix.lower() == ".png" else "JPEG"
    sheet.save(buffer, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    atomic_write(destination, buffer.getvalue(), tmp_dir=StatePaths(out_dir).tmp)
    return len(skus)
