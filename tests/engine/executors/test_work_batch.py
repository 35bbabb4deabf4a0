"""Work batches on the CPU: a small catalog is cut so every worker gets batches (``imgx.runner.work_batch``)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from _support import basic_recipe, real_photo, write_recipe
from imgx.ledger import read_ledger
from imgx.registry import PluginConfig
from imgx.runner import BATCHES_PER_WORKER, RunOptions, run_recipe, work_batch


def test_work_batch_cuts_small_catalogs_on_the_cpu_only():
    assert BATCHES_PER_WORKER == 4
    assert work_batch(8, 40, 2, "cpu") == 5  # 8 batches, 4 per worker, instead of 5 batches of 8 (one worker idles)
    assert work_batch(8, 10_000, 2, "cpu") == 8  # large catalogs keep the recipe's batch
    assert work_batch(8, 3, 2, "cpu") == 1
    assert work_batch(8, 40, 1, "cpu") == 8  # one worker: nothing to balance
    assert work_batch(8, 40, 2, "cuda") == 8  # on a GPU the batch is the inference batch
    assert work_batch(8, 0, 2, "cpu") == 8


def test_two_workers_share_a_catalog_smaller_than_one_batch(tmp_path: Path, model_plugin_dir: Path):
    """Seven photos, a recipe batch of 8, two CPU workers: the catalog is cut into batches of one, so either worker
    can take any of them. The model stage logs the SKUs of each call it gets, per process: no call holds more than
    one item (one batch of 8 would have been one call of 7 in one worker, the other idle). Which worker takes which
    batch depends on how fast each starts, so the test does not ask that both took some."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    skus = []
    for i, name in enumerate(("coffee", "astronaut", "chelsea", "rocket", "motorcycle", "grace_hopper", "china")):
        Image.fromarray(real_photo(name, 256)).save(catalog / f"sku-{i}.jpg", quality=90)
        skus.append(f"sku-{i}")
    out = tmp_path / "out"
    log = tmp_path / "log"
    recipe = basic_recipe(catalog, out, workers=2, batch_size=8, device="cpu")
    recipe["stages"].append({"id": "model", "uses": "test.model", "needs": ["square"], "with": {"log_dir": str(log)}})
    recipe["outputs"] = ["model"]
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(model_plugin_dir),)))
    summary = run_recipe(write_recipe(tmp_path, recipe), options)
    assert summary.items_done == 7 and summary.items_failed == 0
    calls = [json.loads(line) for path in log.glob("calls-*") for line in path.read_text().splitlines()]
    assert sorted(sku for call in calls for sku in call) == skus
    assert max(len(call) for call in calls) == 1
    rows = read_ledger(out).to_pylist()
    assert sorted(row["sku"] for row in rows) == skus
    # each row names the worker process that ran the model on it
    assert {row["worker"] for row in rows} == {"w" + path.name.split("-")[1] for path in log.glob("calls-*")}
