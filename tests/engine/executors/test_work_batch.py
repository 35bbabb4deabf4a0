"""Work batches on the CPU: a small catalog is cut so every worker gets batches (``imgx.runner.work_batch``)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from _support import basic_recipe, real_photo, write_recipe
from imgx.ledger import read_ledger
from imgx.runner import BATCHES_PER_WORKER, RunOptions, run_recipe, work_batch


def test_work_batch_cuts_small_catalogs_on_the_cpu_only():
    assert BATCHES_PER_WORKER == 4
    assert work_batch(8, 40, 2, "cpu") == 5  # 8 batches, 4 per worker, instead of 5 batches of 8 (one worker idles)
    assert work_batch(8, 10_000, 2, "cpu") == 8  # large catalogs keep the recipe's batch
    assert work_batch(8, 3, 2, "cpu") == 1
    assert work_batch(8, 40, 1, "cpu") == 8  # one worker: nothing to balance
    assert work_batch(8, 40, 2, "cuda") == 8  # on a GPU the batch is the inference batch
    assert work_batch(8, 0, 2, "cpu") == 8


def test_two_workers_share_a_catalog_smaller_than_one_batch(tmp_path: Path):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for i, name in enumerate(("coffee", "astronaut", "chelsea", "rocket", "motorcycle", "grace_hopper", "china")):
        Image.fromarray(real_photo(name, 256)).save(catalog / f"sku-{i}.jpg", quality=90)
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, basic_recipe(catalog, out, workers=2, batch_size=8, device="cpu"))
    summary = run_recipe(recipe, RunOptions())
    assert summary.items_done == 7 and summary.items_failed == 0
    rows = read_ledger(out).to_pylist()
    assert len({row["worker"] for row in rows}) == 2  # one batch of 8 would have gone to one worker
