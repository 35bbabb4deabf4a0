"""Overlap inside a worker (``execution.overlap``): the next item is decoded and the last one encoded on helper threads
while the stages run on the current one, with the same outputs, the same ledger and the same per-item isolation."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest

from _support import basic_recipe, write_recipe
from imgx.executors import processor as processor_module
from imgx.ledger import read_ledger
from imgx.registry import PluginConfig
from imgx.runner import RunOptions, resolve_overlap, run_recipe
from imgx.samples import write_bad_input_zoo


def _rows(out: Path) -> list[tuple]:
    table = read_ledger(out).to_pylist()
    return sorted(
        (r["sku"], r["output"], r["status"], r["stage"], r["error"], r["path"], r["recipe_hash"]) for r in table
    )


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file() and "_imgx" not in p.parts}


def test_auto_overlaps_where_a_worker_has_a_core_to_spare_or_a_gpu() -> None:
    assert resolve_overlap("auto", device="cpu", threads=1) is False  # every core already runs a worker
    assert resolve_overlap("auto", device="cpu", threads=2) is True
    assert resolve_overlap("auto", device="cuda", threads=1) is True
    assert resolve_overlap(True, device="cpu", threads=1) is True
    assert resolve_overlap(False, device="cuda", threads=8) is False


@pytest.mark.parametrize("batch_size", [1, 3])
def test_overlap_writes_the_same_bytes_and_ledger_and_isolates_a_failing_item(
    photo_catalog: Path, tmp_path: Path, plugin_dir: Path, batch_size: int
) -> None:
    """A batchable stage that fails on one SKU (so the batch is retried item by item) and a per-item branch after
    it: with overlap on and off, the same files, the same rows, the same one failure."""
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugin_dir),)))
    results = {}
    for overlap in (False, True):
        out = tmp_path / f"out-{overlap}"
        recipe = basic_recipe(photo_catalog, out, batch_size=batch_size, max_failures=5, overlap=overlap)
        recipe["stages"].append(
            {"id": "inverted", "uses": "test.fail_on", "needs": ["enhanced"], "with": {"sku_contains": "coffee"}}
        )
        recipe["outputs"] = ["square", "inverted"]
        summary = run_recipe(write_recipe(tmp_path, recipe, f"{overlap}.yaml"), options)
        assert (summary.items_done, summary.items_failed) == (7, 1)
        results[overlap] = (_files(out), _rows(out))
    assert results[True] == results[False]
    files, rows = results[True]
    assert len(files) == 15
    failed = [row for row in rows if row[2] == "failed"]
    assert [(sku, output, stage) for sku, output, _, stage, *_ in failed] == [("food/coffee", "inverted", "inverted")]


def test_overlap_gives_each_bad_input_its_row(tmp_path: Path) -> None:
    catalog = tmp_path / "zoo"
    cases = write_bad_input_zoo(catalog)
    rows = [{"sku": c.name, "image": c.name} for c in cases] + [{"sku": "missing", "image": "nope.jpg"}]
    (catalog / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {}
    for overlap in (False, True):
        recipe = {
            "version": 1,
            "name": "zoo",
            "input": {"path": str(catalog / "list.jsonl")},
            "output": {"dir": str(tmp_path / f"out-{overlap}"), "format": "png", "naming": "{sku_hash}/{output}.{ext}"},
            "execution": {"workers": 1, "batch_size": 4, "max_failures": len(rows), "overlap": overlap},
            "stages": [{"id": "g", "uses": "color.gamma", "with": {"gamma": 1.2}}],
        }
        run_recipe(write_recipe(tmp_path, recipe, f"{overlap}.yaml"))
        results[overlap] = (_files(tmp_path / f"out-{overlap}"), _rows(tmp_path / f"out-{overlap}"))
    assert results[True] == results[False]
    by_sku = {row[0]: row for row in results[True][1]}
    assert len(by_sku) == len(rows)
    for case in cases:
        assert by_sku[case.name][2] == case.expect, (case.name, by_sku[case.name])
    assert by_sku["missing"][2:4] == ("failed", "read")


class _Recorder:
    """Wraps the processor's real decode and encode calls, each made ``delay`` seconds slower (a large photo's
    decode or encode), recording ``(what, sku, thread, start, end)``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
        self.calls: list[tuple[str, str, str, float, float]] = []
        self.lock = threading.Lock()
        self.delay = delay
        for name, what, sku in (
            ("decode_image", "decode", lambda args, kwargs: kwargs["sku"]),
            ("encode_image", "encode", lambda args, kwargs: args[0].sku),
        ):
            real = getattr(processor_module, name)
            monkeypatch.setattr(processor_module, name, self._wrap(real, what, sku))

    def _wrap(self, real, what, sku_of):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                time.sleep(self.delay)
                return real(*args, **kwargs)
            finally:
                with self.lock:
                    entry = (what, sku_of(args, kwargs), threading.current_thread().name, start, time.perf_counter())
                    self.calls.append(entry)

        return call

    def by_sku(self, what: str) -> dict[str, tuple[str, float, float]]:
        return {sku: (thread, start, end) for kind, sku, thread, start, end in self.calls if kind == what}


STAGES = '''
"""Test stages: one sleeps per item and logs when, by the process's perf_counter (an in-process run shares it);
one raises a Ctrl-C at one SKU."""
import time
from pathlib import Path

from pydantic import Field

import imgx


class SlowLogParams(imgx.StageParams):
    seconds: float = Field(default=0.4, description="Sleep per item.")
    log: str = Field(description="File each item's start and end are appended to.")


class SlowLog(imgx.Stage):
    name = "test.slow_log"
    Params = SlowLogParams
    summary = "Sleep per item and log when."

    def process(self, item):
        start = time.perf_counter()
        time.sleep(self.params.seconds)
        with Path(self.params.log).open("a") as log:
            log.write(f"{item.sku}\\t{start}\\t{time.perf_counter()}\\n")
        return item


class InterruptParams(imgx.StageParams):
    sku: str = Field(description="The SKU the Ctrl-C comes at.")


class Interrupt(imgx.Stage):
    """Passes items through and raises KeyboardInterrupt (a Ctrl-C) on one SKU."""

    name = "test.interrupt"
    Params = InterruptParams
    summary = "Ctrl-C at one SKU."

    def process(self, item):
        if item.sku == self.params.sku:
            raise KeyboardInterrupt
        return item


@imgx.hookimpl
def imgx_stages():
    return [SlowLog, Interrupt]
'''


def _plugins(tmp_path: Path) -> PluginConfig:
    """A --plugins-dir holding the test stages above."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "overlap_stages.py").write_text(STAGES)
    return PluginConfig(plugins_dirs=(str(folder),))


@pytest.mark.parametrize("mode", ["on", "off", "large"])
def test_the_next_item_is_decoded_and_the_last_encoded_while_a_stage_runs(
    photo_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A stage sleeping 0.4 s per item (the GIL released, as in a network's call), the real decoder and encoder each
    0.15 s slower: with overlap, each item after the first is decoded on the decode thread while the item before it
    is in the stage, and each item's encoding is still going when the next item's stage begins; without it, an item
    is decoded only after the stage is done with the one before, and the next stage waits for the encoding. With
    overlap on and items of ``OVERLAP_MAX_PIXELS`` or more (``large``: the bar lowered to one pixel, as a 4000 px
    photo meets the real one), the helper threads do the work but one item at a time: no two items' images at once."""
    overlap = mode != "off"
    if mode == "large":
        monkeypatch.setattr(processor_module, "OVERLAP_MAX_PIXELS", 1)
    log = tmp_path / "slow.log"
    recipe = basic_recipe(photo_catalog, tmp_path / "out", batch_size=8, overlap=overlap)
    recipe["stages"] = [{"id": "slow", "uses": "test.slow_log", "with": {"log": str(log)}}]
    recipe["outputs"] = ["slow"]
    recorder = _Recorder(monkeypatch, delay=0.15)
    summary = run_recipe(write_recipe(tmp_path, recipe), RunOptions(plugin_config=_plugins(tmp_path)))
    assert summary.items_done == 8
    stages = {}
    for line in log.read_text().splitlines():
        sku, start, end = line.split("\t")
        stages[sku] = (float(start), float(end))
    order = sorted(stages, key=lambda sku: stages[sku][0])
    decodes, encodes = recorder.by_sku("decode"), recorder.by_sku("encode")
    assert set(decodes) == set(encodes) == set(stages) and len(order) == 8
    threads = {thread for thread, _, _ in [*decodes.values(), *encodes.values()]}
    pairs = list(itertools.pairwise(order))
    if overlap:
        assert threads == {"imgx-decode_0", "imgx-encode_0"}
        assert {thread for thread, _, _ in decodes.values()} == {"imgx-decode_0"}
    if mode == "on":
        for earlier, later in pairs:
            assert decodes[later][2] < stages[earlier][1]  # decoded before the item ahead of it left the stage
            assert stages[later][0] < encodes[earlier][2]  # the next stage began while this one was encoded
    else:
        assert threads == ({"MainThread"} if mode == "off" else {"imgx-decode_0", "imgx-encode_0"})
        for earlier, later in pairs:
            assert decodes[later][1] >= stages[earlier][1]
            assert encodes[earlier][2] <= stages[later][0]


def test_a_ctrl_c_in_a_stage_keeps_the_items_already_encoded_in_the_ledger(photo_catalog: Path, tmp_path: Path) -> None:
    """With overlap the item before the interrupted one is still on the encode thread when the Ctrl-C comes: it is
    written and journaled before the run stops, so ``--resume`` redoes only what was not written."""
    skus = sorted(str(p.relative_to(photo_catalog).with_suffix("")) for p in photo_catalog.rglob("*.jpg"))
    out = tmp_path / "out"
    recipe = basic_recipe(photo_catalog, out, batch_size=8, overlap=True)
    recipe["stages"] = [{"id": "passed", "uses": "test.interrupt", "with": {"sku": skus[4]}}]
    recipe["outputs"] = ["passed"]
    with pytest.raises(KeyboardInterrupt):
        run_recipe(write_recipe(tmp_path, recipe), RunOptions(plugin_config=_plugins(tmp_path)))
    rows = read_ledger(out).to_pylist()
    assert sorted(row["sku"] for row in rows) == skus[:4]  # a folder catalog runs in SKU order
    assert all(row["status"] == "ok" and (out / row["path"]).is_file() for row in rows)
    assert sorted(_files(out)) == [f"{sku}/passed.png" for sku in skus[:4]]
