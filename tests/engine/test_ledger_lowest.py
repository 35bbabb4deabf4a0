"""The lowest items of a metric (``imgx report``'s least confident masks), from ledgers written by a real
:class:`imgx.ledger.LedgerWriter`: the same answer as sorting every row, however many batches and parts the ledger is
read in, over the current ``ok`` rows only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imgx import ledger_report
from imgx.ledger import LedgerRow, LedgerWriter, StatePaths
from imgx.ledger_report import metric_matches, metric_report


def write_ledger(out: Path, rows: list[tuple[str, str, str, dict]], run: str = "run1") -> None:
    """(sku, output, status, metrics) rows, in Parquet parts of 500 rows (so many batches)."""
    writer = LedgerWriter(StatePaths(out), run, "w0", compact_rows=500)
    writer.write(
        LedgerRow(sku, f"/src/{sku}.jpg", output, f"{sku}/{output}.png", status, "", "", 1.0, "h", (), json.dumps(m))
        for sku, output, status, m in rows
    )
    writer.close()


def test_the_lowest_are_those_of_a_full_sort_across_batches_and_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(0.0, 1.0, 3000)
    rows = [(f"s{i:04d}", "cutout", "ok", {"masked.confidence": float(v), "q.ssim": float(1 - v)}) for i, v in
            enumerate(values)]  # fmt: skip
    rows += [("broken", "cutout", "failed", {"masked.confidence": -1.0})]  # failed rows are not listed
    rows += [("text", "cutout", "ok", {"masked.confidence": "n/a"}), ("none", "cutout", "ok", {})]
    write_ledger(tmp_path, rows)
    monkeypatch.setattr(ledger_report, "REPORT_PASS_ROWS", 700)  # five parts of the item space, as a huge ledger
    found = metric_report(tmp_path, lowest=["confidence", "q.ssim"], top=7)
    order = np.argsort(values)
    assert [least.metric for least in found.lowest] == ["masked.confidence", "q.ssim"]
    confidence, ssim = found.lowest
    assert [row[0] for row in confidence.rows] == [f"s{i:04d}" for i in order[:7]]
    assert [row[2] for row in confidence.rows] == pytest.approx(values[order[:7]])
    assert confidence.rows[0][1] == "cutout" and confidence.rows[0][3] == f"s{order[0]:04d}/cutout.png"
    assert [row[0] for row in ssim.rows] == [f"s{i:04d}" for i in order[::-1][:7]]  # 1 - v: the highest v
    assert {m.metric for m in found.distributions} == {"masked.confidence", "q.ssim"}


def test_an_upstream_metric_on_several_outputs_is_one_item_and_a_later_run_wins(tmp_path: Path) -> None:
    """``masked.confidence`` travels to every output below the mask: one row per item, with its first output. A
    rerun that replaced an item's row replaces its value."""
    rows = []
    for i, value in enumerate([0.9, 0.2, 0.5, 0.7]):
        for output in ("cutout", "hero@teens", "hero@classic"):
            rows.append((f"s{i}", output, "ok", {"masked.confidence": value}))
    write_ledger(tmp_path, rows)
    write_ledger(tmp_path, [("s1", output, "ok", {"masked.confidence": 0.95}) for output in ("cutout", "hero@teens",
                 "hero@classic")], run="run2")  # fmt: skip
    (least,) = metric_report(tmp_path, top=3).lowest
    assert least.metric == "masked.confidence"
    assert least.rows == [
        ("s2", "cutout", 0.5, "s2/cutout.png"),
        ("s3", "cutout", 0.7, "s3/cutout.png"),
        ("s0", "cutout", 0.9, "s0/cutout.png"),
    ]
    assert metric_report(tmp_path, lowest=[]).lowest == []
    alone = ledger_report.metric_distributions(tmp_path)
    assert [(m.output, m.metric, m.count, m.low) for m in alone] == [
        (m.output, m.metric, m.count, m.low) for m in metric_report(tmp_path).distributions
    ]


def test_which_metric_keys_a_name_matches() -> None:
    assert metric_matches("masked.confidence", ["confidence"])
    assert metric_matches("masked.confidence", ["masked.confidence"])
    assert not metric_matches("masked.confidence", ["matte.confidence"])
    assert not metric_matches("masked.ocr_confidence", ["confidence"])  # the convention: the name, after the node
    assert not metric_matches("q.ssim", ["confidence"])
