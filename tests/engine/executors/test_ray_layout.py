"""How the Ray executor lays a plan out (no Ray needed): stage groups, block counts, windows; Ray stays optional."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _support import REPO, basic_recipe, write_recipe
from imgx import RecipeError
from imgx.executors.processor import WorkUnit
from imgx.executors.ray_layout import StageGroup, choose_blocks, stage_groups, windows
from imgx.executors.ray_options import RaySpec
from imgx.item import ItemRef
from imgx.registry import PluginConfig
from imgx.runner import RunOptions, prepare


def plan_of(tmp_path: Path, stages: list[dict], plugins: Path) -> object:
    recipe = basic_recipe(tmp_path / "catalog", tmp_path / "out")
    recipe["stages"], recipe["outputs"] = stages, None
    (tmp_path / "catalog").mkdir(exist_ok=True)
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(plugins),)))
    return prepare(write_recipe(tmp_path, recipe), options)[2]


def test_cpu_stages_fuse_into_one_group_and_model_stages_get_their_own(tmp_path: Path, model_plugin_dir: Path) -> None:
    log = {"log_dir": str(tmp_path / "log")}
    cpu_only = plan_of(
        tmp_path,
        [{"id": "a", "uses": "color.gamma"}, {"id": "b", "uses": "geometry.fit", "needs": ["a"], "with": {"size": 8}}],
        model_plugin_dir,
    )
    assert stage_groups(cpu_only) == (StageGroup("cpu", ("a", "b"), first=True, last=True),)

    mixed = plan_of(
        tmp_path,
        [
            {"id": "a", "uses": "color.gamma"},
            {"id": "b", "uses": "color.sharpen", "needs": ["a"]},
            {"id": "m", "uses": "test.model", "needs": ["b"], "with": log},
            {"id": "n", "uses": "test.model", "needs": ["m"], "with": log},
            {"id": "c", "uses": "geometry.fit", "needs": ["n"], "with": {"size": 8}},
        ],
        model_plugin_dir,
    )
    assert stage_groups(mixed) == (
        StageGroup("cpu", ("a", "b"), first=True),
        StageGroup("model", ("m",)),
        StageGroup("model", ("n",)),
        StageGroup("cpu", ("c",), last=True),
    )
    # A model first and last: reading and writing still happen in CPU tasks of their own.
    only_model = plan_of(tmp_path, [{"id": "m", "uses": "test.model", "with": log}], model_plugin_dir)
    assert [(g.kind, g.nodes, g.first, g.last) for g in stage_groups(only_model)] == [
        ("cpu", (), True, False),
        ("model", ("m",), False, False),
        ("cpu", (), False, True),
    ]


def test_block_count_follows_the_catalog_size_and_the_cluster() -> None:
    spec = RaySpec()
    # Small run on 2 CPUs: several blocks per CPU, never more blocks than chunks.
    assert choose_blocks(chunks=63, items=500, cpus=2, spec=spec) == 16
    assert choose_blocks(chunks=3, items=8, cpus=2, spec=spec) == 3
    # More CPUs, more blocks; a big window is cut into blocks of at most max_items_per_block items.
    assert choose_blocks(chunks=63, items=500, cpus=16, spec=spec) == 63
    assert choose_blocks(chunks=2048, items=16384, cpus=2, spec=spec) == 64
    assert choose_blocks(chunks=2048, items=16384, cpus=2, spec=RaySpec(max_items_per_block=1024)) == 16
    # Each task reserving 2 CPUs halves the slots; an explicit count wins.
    assert choose_blocks(chunks=63, items=500, cpus=4, spec=RaySpec(num_cpus=2)) == 16
    assert choose_blocks(chunks=63, items=500, cpus=2, spec=RaySpec(blocks=5)) == 5
    assert choose_blocks(chunks=0, items=0, cpus=2, spec=spec) == 1


def test_windows_are_pulled_lazily_and_keep_every_unit_once() -> None:
    pulled = 0

    def batches():
        nonlocal pulled
        for index in range(10):
            pulled += 1
            yield [WorkUnit(ItemRef(f"sku-{index}-{k}", "x.jpg", index * 3 + k), ("out",)) for k in range(3)]

    stream = windows(batches(), window_items=7)
    first = next(stream)
    assert pulled == 3 and [c.items for c in first] == [3, 3, 3]  # stops as soon as the window is full
    rest = list(stream)
    units = [u for w in [first, *rest] for c in w for u in pickle.loads(c.units)]
    assert [u.ref.sku for u in units] == [f"sku-{i}-{k}" for i in range(10) for k in range(3)]
    assert [c.id for w in [first, *rest] for c in w] == list(range(10))


def test_importing_imgx_and_loading_its_plugins_never_imports_ray() -> None:
    code = "import sys, imgx, imgx.runner; imgx.runner.load_registry(); print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_missing_ray_says_which_extra_to_install(photo_catalog: Path, tmp_path: Path) -> None:
    """Ray made unimportable in a child process (``sys.modules['ray'] = None``), as on a machine without it."""
    recipe = write_recipe(tmp_path, basic_recipe(photo_catalog, tmp_path / "out", executor="ray"))
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["ray"] = None
        from imgx.cli import main
        sys.argv = ["imgx", "run", {str(recipe)!r}, "--no-progress"]
        main()
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pip install 'imgx[ray]'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("key", ["blocks", "concurrency", "max_retries"])
def test_ray_options_are_typed_and_checked(tmp_path: Path, photo_catalog: Path, key: str) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "out", executor="ray")
    recipe["execution"]["ray"] = {key: -1}
    with pytest.raises(RecipeError, match=rf"execution\.ray\.{key}"):
        prepare(write_recipe(tmp_path, recipe), RunOptions())
    recipe["execution"]["ray"] = {"no_such_option": 1}
    with pytest.raises(RecipeError, match=r"execution\.ray\.no_such_option"):
        prepare(write_recipe(tmp_path, recipe), RunOptions())


@pytest.mark.ray
def test_ray_data_runs_without_its_resource_reservation_and_gets_it_back_after(ray_address: str) -> None:
    """On a small cluster the reservation held a CPU back (one task at a time on 2 CPUs; benchmarks/README.md).

    ``ray_address`` (the session's cluster) is asked for so that its auth token is set before Ray is imported in this
    process: Ray reads the token once, at its import, and a worker that imported it first failed every later test
    that joins the session's cluster (``InvalidAuthToken``)."""
    ray = pytest.importorskip("ray", reason="needs Ray: pip install 'imgx[ray]'")
    from imgx.executors.ray_executor import _quiet_ray_data

    context = ray.data.DataContext.get_current()
    before = context.op_resource_reservation_enabled
    with _quiet_ray_data(ray):
        assert context.op_resource_reservation_enabled is False
        assert context.enable_progress_bars is False
    assert context.op_resource_reservation_enabled == before
