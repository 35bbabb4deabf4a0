"""The review page: one self-contained HTML file of a run's results, for a person to look through and reject SKUs.

:func:`write_review` reads an output folder's ledger (the current state of every (sku, output), streamed as Arrow by
:func:`imgx.ledger_report.current_state`), picks at most ``limit`` rows -- failed ones first, then flagged ones (ok but
flagged by a stage, the ledger's ``flags``), then ok ones -- and writes a page with, per row, the SKU, the output,
its status, the error or the flags and metrics, and before/after thumbnails (the source and the written output,
downscaled to JPEG and embedded as ``data:`` URIs). Only the rows put on the page become Python objects.

The page needs no server and loads nothing: its style and script are inline. Plain JavaScript filters the rows (by
status, by rule id, by output, by a SKU substring), counts what is shown, and lets the reader tick SKUs as rejected
and download them as ``rejected.csv`` (a ``sku`` column), which ``imgx run RECIPE --only rejected.csv`` takes back.

Outputs may be missing (a failed item, a file deleted since, an audit that writes no outputs): such a row shows its
source alone.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from .errors import ImgxError, InputError
from .io import fs
from .io.decode import decode_image
from .io.source import read_source
from .ledger import LedgerSnapshot, Location, StatePaths
from .ledger_report import _thumbnail, current_state

__all__ = ["NoLedgerError", "ReviewSummary", "rule_id", "write_review"]

_COLUMNS = ["sku", "source", "output", "path", "status", "stage", "error", "flags", "metrics"]
_RANK = {"failed": 0, "flagged": 1, "ok": 2}
_METRIC_TEXT = 160  # longest metric value shown (a rule's message is a sentence)


class NoLedgerError(ImgxError):
    """The folder holds no ledger rows: not the output folder of a run or an audit."""


@dataclasses.dataclass(frozen=True)
class ReviewSummary:
    """What :func:`write_review` put on the page.

    :param html_path: where the page was written.
    :param rows: rows shown (one per (sku, output)).
    :param total: rows in the ledger's current state.
    :param left_out: rows not shown (over ``limit``).
    :param failed: failed rows in the current state (shown or not); ``flagged`` and ``ok`` likewise.
    """

    html_path: str
    rows: int
    total: int
    left_out: int
    failed: int
    flagged: int
    ok: int


def rule_id(flag: str) -> str:
    """The rule id of a ledger flag: the flag without the node it was named after (``check:product.fill`` ->
    ``product.fill``, ``check:warning:aspect`` -> ``warning:aspect``); a flag with no node is its own id."""
    node, sep, rest = flag.partition(":")
    return rest if sep and node != "warning" and rest else flag


def _kinds(state: pa.Table) -> pa.Array:
    """Per state row: ``failed``, ``flagged`` (ok with a flag) or ``ok``."""
    flagged = pc.greater(pc.utf8_length(pc.fill_null(state["flags"], "")), 0)
    ok = pc.fill_null(pc.equal(state["status"], "ok"), False)
    return pc.if_else(ok, pc.if_else(flagged, "flagged", "ok"), "failed")


def _count(kinds: pa.Array | pa.ChunkedArray, kind: str) -> int:
    return int(pc.sum(pc.equal(kinds, kind)).as_py() or 0)


def write_review(
    out_dir: Location, html_path: str | Path, *, limit: int = 1000, thumb: int = 200, title: str | None = None
) -> ReviewSummary:
    """Write the review page of ``out_dir`` (a run's or an audit's output folder, local or an object-store URI) to
    ``html_path`` (a path or URI; written atomically).

    :param limit: most rows on the page; failed rows first, then flagged, then ok (each by SKU and output).
    :param thumb: longest side of a thumbnail, in pixels.
    :param title: the page's heading (default: the folder).
    :raises NoLedgerError: ``out_dir`` has no ledger rows.
    """
    location = StatePaths(out_dir).out_dir
    with LedgerSnapshot(location) as snapshot:
        if not snapshot.num_rows:
            raise NoLedgerError(
                f"no ledger in {out_dir}; expected the output folder of a run or an audit (it holds _imgx/ledger/)"
            )
    state = current_state(location, columns=_COLUMNS)
    kinds = _kinds(state)
    state = state.append_column("kind", kinds)
    rank = pc.if_else(pc.equal(kinds, "failed"), 0, pc.if_else(pc.equal(kinds, "flagged"), 1, 2))
    state = state.append_column("rank", pc.cast(rank, pa.int8()))
    keys = [("rank", "ascending"), ("sku", "ascending"), ("output", "ascending")]
    if state.num_rows > limit:
        state_shown = (
            state.take(pc.select_k_unstable(state, k=limit, sort_keys=keys)) if limit > 0 else state.slice(0, 0)
        )
    else:
        state_shown = state
    shown = state_shown.sort_by(keys).to_pylist()  # the only rows that become Python objects
    summary = ReviewSummary(
        html_path=str(html_path),
        rows=len(shown),
        total=state.num_rows,
        left_out=state.num_rows - len(shown),
        failed=_count(kinds, "failed"),
        flagged=_count(kinds, "flagged"),
        ok=_count(kinds, "ok"),
    )
    items = pc.count_distinct(state["sku"]).as_py() if state.num_rows else 0
    page = _page(location, shown, summary, items, thumb, title or str(out_dir))
    fs.write_bytes_atomic(str(html_path), page.encode("utf-8"))
    return summary


# -- thumbnails -----------------------------------------------------------------------------------------------------


def _data_uri(image: Image.Image, size: int) -> str:
    tile = _thumbnail(image, size)
    buffer = io.BytesIO()
    tile.save(buffer, "JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _source_thumb(source: str, sku: str, size: int) -> tuple[str | None, str]:
    """``(data URI, "")``, or ``(None, why)`` when the source cannot be read."""
    try:
        item = decode_image(read_source(source), sku=sku, source=source)
    except ImgxError as exc:
        return None, f"source unreadable: {exc}"
    rgb = Image.fromarray(item.image)
    if item.alpha is not None:
        rgb = rgb.convert("RGBA")
        rgb.putalpha(Image.fromarray(item.alpha))
    return _data_uri(rgb, size), ""


def _output_thumb(location: Location, relative: str, size: int) -> tuple[str | None, str]:
    """The written output's thumbnail, or ``(None, why)``: nothing written (an audit), or the file is gone."""
    if not relative:
        return None, "no output written"
    try:
        data = read_source(fs.join(str(location), relative, error=InputError))
        with Image.open(io.BytesIO(data)) as produced:
            produced.load()
            return _data_uri(produced.convert("RGBA" if "A" in produced.getbands() else "RGB"), size), ""
    except ImgxError as exc:
        return None, f"output not found: {exc}" if "not found" in str(exc) else f"output unreadable: {exc}"
    except (OSError, ValueError) as exc:
        return None, f"output unreadable: {exc}"


# -- the page -------------------------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _metrics(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        return [("metrics", text[:_METRIC_TEXT])]
    if not isinstance(values, dict):
        return [("metrics", str(values)[:_METRIC_TEXT])]
    shown = []
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        value = str(value)
        shown.append((key, value if len(value) <= _METRIC_TEXT else value[: _METRIC_TEXT - 1] + "…"))
    return shown


def _json_attr(value: object) -> str:
    return _e(json.dumps(value, ensure_ascii=False))


def _page(location: Location, rows: list[dict], summary: ReviewSummary, items: int, size: int, title: str) -> str:
    classes: dict[str, str] = {}  # a source's thumbnail is one CSS class, however many outputs show it
    styles: list[str] = []
    body: list[str] = []
    rules: set[str] = set()
    outputs: set[str] = set()
    sources: dict[str, tuple[str | None, str]] = {}
    for index, row in enumerate(rows):
        source = row["source"] or ""
        if source not in sources:
            sources[source] = _source_thumb(source, row["sku"], size) if source else (None, "no source")
        source_uri, source_note = sources[source]
        if source_uri is not None and source not in classes:
            classes[source] = f"s{len(classes)}"
            styles.append(f".{classes[source]}{{background-image:url({source_uri})}}")
        if row["kind"] != "failed":
            output_uri, output_note = _output_thumb(location, row["path"] or "", size)
        else:
            output_uri, output_note = None, "failed: no output"
        flags = [f for f in (row["flags"] or "").split(",") if f]
        row_rules = sorted({rule_id(f) for f in flags})
        rules.update(row_rules)
        outputs.add(row["output"] or "")
        body.append(_row(index, row, flags, row_rules, classes.get(source), source_note, output_uri, output_note))
    shown = {kind: sum(1 for row in rows if row["kind"] == kind) for kind in _RANK}
    status_options = f'<option value="all">all ({len(rows):,})</option>' + "".join(
        f'<option value="{kind}">{kind} ({shown[kind]:,})</option>' for kind in _RANK
    )
    rule_options = '<option value="">any rule</option>' + "".join(
        f'<option value="{_e(r)}">{_e(r)}</option>' for r in sorted(rules)
    )
    output_options = '<option value="">every output</option>' + "".join(
        f'<option value="{_e(o)}">{_e(o)}</option>' for o in sorted(outputs)
    )
    if summary.left_out:
        note = (
            f"Showing {summary.rows:,} of {summary.total:,} rows (failed first, then flagged, then ok): "
            f'<strong id="left-out">{summary.left_out:,}</strong> rows left out; '
            f"<code>imgx review … --limit {summary.total}</code> shows them all."
        )
    else:
        note = f'Showing all {summary.rows:,} rows. <span id="left-out" hidden>0</span>'
    totals = (
        f"{items:,} SKUs, {summary.total:,} outputs: "
        f'<span class="failed">{summary.failed:,} failed</span>, '
        f'<span class="flagged">{summary.flagged:,} flagged</span>, '
        f'<span class="ok">{summary.ok:,} ok</span>.'
    )
    return _TEMPLATE.format(
        title=_e(title),
        thumb=size,
        styles="\n".join(styles),
        totals=totals,
        note=note,
        status_options=status_options,
        rule_options=rule_options,
        output_options=output_options,
        rows="\n".join(body),
        script=_SCRIPT,
    )


def _row(
    index: int,
    row: dict,
    flags: list[str],
    rules: list[str],
    source_class: str | None,
    source_note: str,
    output_uri: str | None,
    output_note: str,
) -> str:
    kind, sku, output = row["kind"], row["sku"], row["output"] or ""
    details = []
    if kind == "failed":
        stage = f"<b>{_e(row['stage'])}</b>: " if row["stage"] else ""
        details.append(f'<div class="error">{stage}{_e(row["error"] or "")}</div>')
    if flags:
        chips = "".join(f'<span class="flag" title="{_e(f)}">{_e(rule_id(f))}</span>' for f in flags)
        details.append(f'<div class="flags">{chips}</div>')
    metrics = _metrics(row["metrics"])
    metric_list = "".join(f"<li><b>{_e(k)}</b> {_e(v)}</li>" for k, v in metrics)
    source = (
        f'<span class="thumb {source_class}" role="img" aria-label="source of {_e(sku)}"></span>'
        if source_class
        else f'<span class="missing">{_e(source_note)}</span>'
    )
    produced = (
        f'<img class="thumb" alt="{_e(output)} of {_e(sku)}" src="{output_uri}">'
        if output_uri
        else f'<span class="missing">{_e(output_note)}</span>'
    )
    return (
        f'<tr class="{kind}" data-sku="{_e(sku)}" data-status="{kind}" data-output="{_e(output)}" '
        f'data-rules="{_json_attr(rules)}">'
        f'<td><input type="checkbox" class="reject" id="reject-{index}" aria-label="reject {_e(sku)}"></td>'
        f'<td class="sku">{_e(sku)}</td><td>{_e(output)}</td><td><span class="status">{kind}</span></td>'
        f'<td>{"".join(details)}</td><td><ul class="metrics">{metric_list}</ul></td>'
        f"<td>{source}</td><td>{produced}</td></tr>"
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>imgx review: {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }}
header {{ padding: 12px 16px 4px; }}
h1 {{ font-size: 18px; margin: 0 0 4px; word-break: break-all; }}
p {{ margin: 2px 0; }}
.controls {{ position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 8px; align-items: center;
  padding: 8px 16px; background: #fff; border-bottom: 1px solid #ddd; }}
.controls label {{ display: flex; gap: 4px; align-items: center; }}
#counter {{ margin-left: auto; font-weight: 600; }}
button {{ padding: 4px 10px; }}
table {{ border-collapse: collapse; margin: 8px 16px 24px; background: #fff; }}
th, td {{ border-bottom: 1px solid #eee; padding: 6px 8px; text-align: left; vertical-align: top; }}
th {{ position: sticky; top: 45px; background: #f0f0f0; }}
td.sku {{ font-family: ui-monospace, monospace; word-break: break-all; max-width: 220px; }}
.thumb {{ display: block; width: {thumb}px; height: {thumb}px; object-fit: contain;
  background: #e4e4e4 no-repeat center; background-size: contain; }}
.missing {{ display: flex; width: {thumb}px; height: {thumb}px; align-items: center; justify-content: center;
  text-align: center; background: #eee; color: #777; font-size: 12px; overflow: hidden; }}
.status {{ padding: 1px 6px; border-radius: 8px; background: #e6f4ea; }}
tr.failed .status {{ background: #fde2e1; color: #a11; }}
tr.flagged .status {{ background: #fff3cd; color: #7a5a00; }}
tr.rejected {{ background: #fff0f0; }}
span.failed {{ color: #a11; }} span.flagged {{ color: #7a5a00; }} span.ok {{ color: #176b2c; }}
.error {{ color: #a11; max-width: 320px; word-break: break-word; }}
.flag {{ display: inline-block; margin: 0 4px 4px 0; padding: 1px 6px; border-radius: 8px; background: #fff3cd;
  font-family: ui-monospace, monospace; font-size: 12px; }}
ul.metrics {{ margin: 0; padding: 0; list-style: none; font-size: 12px; max-width: 320px; word-break: break-word; }}
{styles}
</style>
</head>
<body>
<header>
<h1>imgx review: {title}</h1>
<p>{totals}</p>
<p>{note}</p>
</header>
<div class="controls">
<label>status <select id="status">{status_options}</select></label>
<label>rule <select id="rule">{rule_options}</select></label>
<label>output <select id="output">{output_options}</select></label>
<label>SKU <input id="search" type="search" placeholder="search SKUs" autocomplete="off"></label>
<span id="counter"><span id="shown">0</span> shown &middot; <span id="marked">0</span> rejected</span>
<button id="download" type="button" disabled>Download rejected CSV</button>
</div>
<table id="rows">
<thead><tr><th>reject</th><th>SKU</th><th>output</th><th>status</th><th>error / flags</th><th>metrics</th>
<th>source</th><th>output image</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>
{script}
</script>
</body>
</html>
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#rows tbody tr"));
  var status = document.getElementById("status");
  var rule = document.getElementById("rule");
  var output = document.getElementById("output");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var marked = document.getElementById("marked");
  var download = document.getElementById("download");
  var rejected = new Set();
  rows.forEach(function (row) { row.rules = JSON.parse(row.getAttribute("data-rules")); });

  function apply() {
    var wanted = status.value, r = rule.value, o = output.value, q = search.value.trim().toLowerCase();
    var visible = 0;
    rows.forEach(function (row) {
      var show = (wanted === "all" || row.dataset.status === wanted)
        && (!r || row.rules.indexOf(r) >= 0)
        && (!o || row.dataset.output === o)
        && (!q || row.dataset.sku.toLowerCase().indexOf(q) >= 0);
      row.hidden = !show;
      if (show) { visible += 1; }
    });
    shown.textContent = String(visible);
  }

  function mark(sku, on) {
    if (on) { rejected.add(sku); } else { rejected.delete(sku); }
    rows.forEach(function (row) {  // every output of a SKU: rejecting a SKU rejects all its rows
      if (row.dataset.sku === sku) {
        row.querySelector("input.reject").checked = on;
        row.classList.toggle("rejected", on);
      }
    });
    marked.textContent = String(rejected.size);
    download.disabled = rejected.size === 0;
  }

  function cell(text) {
    return /[",\r\n]/.test(text) || text !== text.trim() ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  [status, rule, output].forEach(function (control) { control.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  document.querySelector("#rows tbody").addEventListener("change", function (event) {
    var box = event.target;
    if (box.classList.contains("reject")) { mark(box.closest("tr").dataset.sku, box.checked); }
  });
  download.addEventListener("click", function () {
    var lines = ["sku"].concat(Array.from(rejected).sort().map(cell));
    var blob = new Blob([lines.join("\n") + "\n"], {type: "text/csv"});
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "rejected.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  });
  apply();
})();
"""
