"""What a recipe costs (issue 17): ``imgx plan`` estimates a run's time and peak memory per worker from what this
machine measured (an earlier run, or ``--calibrate``), says where every number comes from, and says "unknown" for
what it never measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from _support import REAL_PHOTOS, basic_recipe, real_photo, write_recipe
from imgx.costs import MAX_KEYS, CostBook, catalog_sizes, costs_path, estimate, node_keys
from imgx.io.catalog import open_catalog
from imgx.runner import RunOptions, prepare


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``IMGX_HOME``: the cost cache of these tests is theirs alone."""
    folder = tmp_path / "home"
    monkeypatch.setenv("IMGX_HOME", str(folder))
    monkeypatch.delenv("IMGX_COSTS", raising=False)  # the suite's own file (tests/conftest.py): these test the default
    return folder


@pytest.fixture
def sized_catalog(tmp_path: Path) -> Path:
    """Twelve real photos, their long side 400 to 840 px, so megapixels differ per item (and a run lasts long enough
    to time: at 200-420 px it took 0.04 s once PNG was written by fpng)."""
    root = tmp_path / "sized"
    root.mkdir()
    for index in range(12):
        photo = real_photo(REAL_PHOTOS[index % len(REAL_PHOTOS)], 400 + 40 * index)
        Image.fromarray(photo).save(root / f"p{index:02d}.jpg", quality=90)
    return root


def _sizes_of(recipe: Path, limit: int):
    loaded, registry, _ = prepare(recipe, RunOptions())
    catalog = open_catalog(loaded, registry)
    return catalog_sizes(iter(catalog), catalog.count(), limit=limit)


def test_catalog_megapixels_come_from_headers_and_a_sample_is_scaled(sized_catalog, tmp_path, home):
    recipe = write_recipe(tmp_path, basic_recipe(sized_catalog, tmp_path / "out"))
    true_mp = sum(w * h for w, h in (Image.open(p).size for p in sized_catalog.glob("*.jpg"))) / 1e6
    every = _sizes_of(recipe, limit=200)
    assert every.exact and every.items == every.sampled == 12
    assert every.megapixels == pytest.approx(true_mp)
    sampled = _sizes_of(recipe, limit=4)  # every 3rd item, their mean times 12
    assert sampled.sampled == 4 and not sampled.exact
    assert sampled.megapixels == pytest.approx(true_mp, rel=0.25) and sampled.megapixels != pytest.approx(true_mp)


def test_plan_says_unknown_before_any_measurement(imgx, photo_catalog, tmp_path, home):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("plan", recipe, "--estimate")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "estimate on this machine: 8 item(s)" in text
    assert re.search(r"│ enhanced\s*│ color\.enhance\s*│\s*unknown │ unknown \(never measured here", text), text
    assert "estimated wall time with 1 worker(s): unknown\n" in text
    assert "estimated peak memory per worker: unknown" in text
    assert "imgx plan --calibrate" in text
    assert not costs_path().exists() and not (tmp_path / "out").exists()


def test_plan_without_a_model_estimates_only_when_asked(imgx, photo_catalog, tmp_path, home):
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    result = imgx("plan", recipe)
    assert result.exit_code == 0, result.output
    assert "estimate" not in result.stdout


def _wall(text: str) -> float:
    found = re.search(r"estimated wall time with \d+ worker\(s\): \S+ \(([\d,.]+) s\)", text)
    assert found, text
    return float(found.group(1).replace(",", ""))


def _measured(text: str) -> float:
    found = re.search(r"images/s over ([\d,.]+) s", text)
    assert found, text
    return float(found.group(1).replace(",", ""))


def test_a_run_teaches_plan_its_cost_and_the_next_run_takes_about_that(imgx, sized_catalog, tmp_path, home):
    """The first run records the costs; plan's estimate is then within 3x of what the second run takes."""
    recipe = write_recipe(tmp_path, basic_recipe(sized_catalog, tmp_path / "out", batch_size=2))
    first = imgx("run", recipe)
    assert first.exit_code == 0, first.output
    planned = imgx("plan", recipe)  # no model: the estimate is asked for
    assert "estimate" not in planned.stdout
    planned = imgx("plan", recipe, "--estimate")
    assert planned.exit_code == 0, planned.output
    text = planned.stdout
    assert re.search(r"│ enhanced\s*│ color\.enhance\s*│\s*[\d.]+ │ run of 20\d\d-\d\d-\d\d", text), text
    assert re.search(r"│ \(other\)\s*│ read, decode, encode, write, start-up\s*│\s*[\d.]+ │ run of", text), text
    assert re.search(r"estimated peak memory per worker: [\d,]+ MiB \(run of .*, peak RSS of the main process", text)
    expected = _wall(text)
    second = imgx("run", recipe, "--set", f"output.dir={tmp_path / 'out2'}")
    assert second.exit_code == 0, second.output
    took = _measured(second.stderr)
    assert took / 3 <= expected <= 3 * took, (expected, took)
    book = json.loads(costs_path().read_text())
    assert len(book["nodes"]) == 2 and all(len(e["observations"]) == 2 for e in book["nodes"].values())


def test_calibrate_measures_the_stages_on_real_catalog_images(imgx, sized_catalog, tmp_path, home):
    recipe = write_recipe(tmp_path, basic_recipe(sized_catalog, tmp_path / "out", workers=2))
    result = imgx("plan", recipe, "--calibrate")
    assert result.exit_code == 0, result.output
    assert "calibrating: running the stages on 2 catalog image(s)" in result.stderr
    text = result.stdout
    assert re.search(r"│ square\s*│ geometry\.fit\s*│\s*[\d.]+ │ calibration of .* \(2 measurements\)", text), text
    assert re.search(r"estimated wall time with 2 worker\(s\): \S+ \([\d,.]+ s\)", text), text
    assert "peak RSS of the plan process" in text
    assert not (tmp_path / "out").exists()
    book = json.loads(costs_path().read_text())
    observed = [o for e in book["nodes"].values() for o in e["observations"]]
    assert {o["source"] for o in observed} == {"calibration"} and len(observed) == 4
    assert len({o["work"] for o in observed}) == 2  # the smallest image and the median one (megapixels here)


def test_a_node_fit_separates_per_item_and_per_megapixel_time(photo_catalog, tmp_path, home):
    """Two measurements with different megapixels per item give both parts; the estimate follows them."""
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out"))
    _, _, plan = prepare(recipe, RunOptions())
    keys = node_keys(plan, device="cpu", threads=1)
    book = CostBook()
    for items, mp in ((10, 1.0), (10, 5.0)):  # seconds = 0.1 per item + 0.5 per megapixel
        observation = {"items": items, "work": mp, "seconds": 0.1 * items + 0.5 * mp, "source": "run"}
        book.observe(keys["enhanced"], "enhanced", {**observation, "date": "2026-12-05 10:00 UTC"})
    sizes = _sizes_of(recipe, limit=200)
    found = estimate(plan, sizes, workers=1, device="cpu", threads=1, book=book)
    enhanced, square = found.nodes
    assert enhanced.seconds == pytest.approx(0.1 * sizes.items + 0.5 * sizes.megapixels)
    assert enhanced.source == "run of 2026-12-05 10:00 UTC (2 measurements)"
    assert square.seconds is None and found.wall_seconds is None  # never invented
    other = estimate(plan, sizes, workers=1, device="cuda", threads=1, book=book)  # another device: not the same
    assert other.nodes[0].seconds is None


def test_the_cache_stays_small_and_survives_a_broken_file(home):
    book = CostBook()
    for index in range(MAX_KEYS + 30):
        observation = {"items": 1, "work": 1.0, "seconds": 1.0, "source": "run"}
        book.observe(f"k{index:04d}", "n", {**observation, "date": f"2026-12-05 {index:05d}"})
    book.save()
    kept = CostBook()
    assert len(kept.nodes) == MAX_KEYS and "k0000" not in kept.nodes and f"k{MAX_KEYS + 29:04d}" in kept.nodes
    costs_path().write_text("{ not json")
    broken = CostBook()
    assert broken.nodes == {} and "unreadable" in (broken.problem or "")


def test_imgx_costs_names_another_cost_file(imgx, sized_catalog, tmp_path, home, monkeypatch):
    """``IMGX_COSTS`` moves the cost cache (the test suite keeps its own there): a run records into it, the plan
    estimates from it, and ``$IMGX_HOME/costs.json`` is never written."""
    elsewhere = tmp_path / "elsewhere" / "costs.json"
    monkeypatch.setenv("IMGX_COSTS", str(elsewhere))
    assert costs_path() == elsewhere
    recipe = write_recipe(tmp_path, basic_recipe(sized_catalog, tmp_path / "out", workers=1))
    assert imgx("run", recipe).exit_code == 0
    assert elsewhere.exists() and not (home / "costs.json").exists()
    assert len(json.loads(elsewhere.read_text())["nodes"]) == 2
    assert "estimated peak memory per worker" in imgx("plan", recipe, "--estimate").stdout
    monkeypatch.delenv("IMGX_COSTS")
    assert costs_path() == home / "costs.json"
    assert "estimated wall time with 1 worker(s): unknown" in imgx("plan", recipe, "--estimate").stdout


def test_the_estimate_follows_each_stages_work_not_the_megapixels(sized_catalog, tmp_path, home):
    """gan.upscale enlarges only the images below ``only_below`` (its work: their tiles' pixels, 0 for the others):
    learned on the whole catalog, its estimate for the large images alone is 0 s and for the small ones alone all of
    it, where megapixels would give the large ones the most (restore-lowres on the demo catalog: 622 s estimated
    before the first result, 84 s taken)."""
    from imgx.costs import expected_work

    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    for path in sorted(sized_catalog.glob("*.jpg")):
        with Image.open(path) as image:
            (small if max(image.size) < 600 else large).joinpath(path.name).write_bytes(path.read_bytes())
    assert 0 < len(list(small.iterdir())) < 12

    def upscaling(catalog: Path, name: str) -> Path:
        recipe = basic_recipe(catalog, tmp_path / f"out-{name}")
        recipe["stages"] = [
            {"id": "upscaled", "uses": "gan.upscale", "with": {"scale": 2, "only_below": 600, "tile": 64}},
            {"id": "square", "uses": "geometry.fit", "needs": ["upscaled"], "with": {"size": 128}},
        ]
        recipe["outputs"] = ["square"]
        return write_recipe(tmp_path, recipe, f"{name}.yaml")

    whole = upscaling(sized_catalog, "whole")
    _, _, plan = prepare(whole, RunOptions())
    keys = node_keys(plan, device="cpu", threads=1)
    sizes = _sizes_of(whole, 200)
    work = expected_work(plan, sizes)
    assert work is not None and work["upscaled"] > 0 and work["square"] == pytest.approx(sizes.megapixels)
    book = CostBook()
    for node, seconds in (("upscaled", 60.0), ("square", 1.0)):  # as a run over the whole catalog measured them
        observation = {"items": 12, "work": work[node], "seconds": seconds, "source": "run"}
        book.observe(keys[node], node, {**observation, "date": "2026-12-06 04:00 UTC"})
    for name, catalog in (("small", small), ("large", large)):
        path = upscaling(catalog, name)
        _, _, other = prepare(path, RunOptions())
        assert node_keys(other, device="cpu", threads=1) == keys  # the same plan over another catalog
        part = _sizes_of(path, 200)
        found = {n.node: n.seconds for n in estimate(other, part, workers=1, device="cpu", threads=1, book=book).nodes}
        share = expected_work(other, part)["upscaled"] / work["upscaled"]
        assert found["upscaled"] == pytest.approx(60.0 * share)
        assert found["square"] == pytest.approx(part.megapixels / sizes.megapixels)
        if name == "large":
            assert share == 0 and found["upscaled"] == 0.0
        else:
            assert share == pytest.approx(1.0)
