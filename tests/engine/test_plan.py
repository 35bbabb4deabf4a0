"""The plan: DAG order, lineage of each output, and per-output hashes that drive --resume."""

from __future__ import annotations

import pickle

import pytest

from imgx.plan import build_plan
from imgx.recipe import parse_recipe
from imgx.registry import load_registry

VARIANTS = """\
version: 1
name: variants
input: {path: catalog/}
output: {dir: out/}
stages:
  - {id: square, uses: geometry.fit, needs: [base], with: {size: 512}}
  - {id: base, uses: color.white_balance}
  - {id: warm, uses: color.saturation, needs: [base], with: {saturation: 1.4}}
  - {id: gray, uses: color.saturation, needs: [base], with: {saturation: 0.0}}
outputs: [square, warm, gray]
"""


def plan_of(text: str, *overrides: str):
    return build_plan(parse_recipe(text, overrides=overrides), load_registry())


def test_nodes_run_after_what_they_need_whatever_the_recipe_order() -> None:
    plan = plan_of(VARIANTS)
    order = [n.id for n in plan.nodes]
    assert order.index("base") < min(order.index("square"), order.index("warm"), order.index("gray"))
    assert plan.lineage == {"square": ("base", "square"), "warm": ("base", "warm"), "gray": ("base", "gray")}
    assert plan.needed_nodes({"warm"}) == ("base", "warm")
    assert set(plan.needed_nodes({"warm", "gray"})) == {"base", "warm", "gray"}


def test_output_hash_changes_only_for_the_variant_whose_lineage_changed() -> None:
    before = plan_of(VARIANTS).output_hashes
    warmer = plan_of(VARIANTS, "stages.warm.with.saturation=1.5").output_hashes
    assert warmer["warm"] != before["warm"]
    assert warmer["square"] == before["square"] and warmer["gray"] == before["gray"]
    # A shared upstream change touches every variant; output encoding settings too.
    assert all(
        a != b
        for a, b in zip(
            plan_of(VARIANTS, "stages.base.with.method=white_patch").output_hashes.values(),
            before.values(),
            strict=True,
        )
    )
    assert all(plan_of(VARIANTS, "output.quality=50").output_hashes[k] != v for k, v in before.items())
    # Execution options never change what is produced.
    assert plan_of(VARIANTS, "execution.workers=3", "execution.batch_size=2").output_hashes == before


def test_default_outputs_are_the_leaves() -> None:
    text = VARIANTS.replace("outputs: [square, warm, gray]\n", "")
    assert set(plan_of(text).outputs) == {"square", "warm", "gray"}


def test_the_plan_pickles_for_worker_processes() -> None:
    plan = plan_of(VARIANTS)
    clone = pickle.loads(pickle.dumps(plan))
    assert [n.id for n in clone.nodes] == [n.id for n in plan.nodes]
    assert clone.node("warm").params == plan.node("warm").params


def test_png_compression_changes_the_hash_but_its_default_keeps_hashes_from_before_the_key() -> None:
    before = plan_of(VARIANTS).output_hashes
    assert plan_of(VARIANTS, "output.png_compression=6").output_hashes == before  # the default before "fast"
    assert plan_of(VARIANTS, "output.png_compression=fast").output_hashes == before
    assert all(plan_of(VARIANTS, "output.png_compression=1").output_hashes[k] != v for k, v in before.items())


def test_an_output_override_changes_only_that_outputs_hash_and_one_equal_to_the_defaults_none() -> None:
    before = plan_of(VARIANTS).output_hashes
    png = plan_of(VARIANTS, "output.overrides.warm.format=png").output_hashes
    assert png["warm"] != before["warm"]
    assert {k: png[k] for k in ("square", "gray")} == {k: before[k] for k in ("square", "gray")}
    same = plan_of(VARIANTS, "output.overrides.warm.format=webp", "output.overrides.gray.quality=90").output_hashes
    assert same == before


def test_a_parameter_added_later_is_hashed_only_off_its_default() -> None:
    """``StageParams.added_later``: a new parameter at its default leaves the fingerprint (the output hash) as it was
    before the parameter existed, so --resume redoes nothing; any other value is hashed."""
    from typing import ClassVar

    from imgx import StageParams

    class Before(StageParams):
        size: int = 96

    class After(StageParams):
        size: int = 96
        scope: str = "all"
        added_later: ClassVar[frozenset[str]] = frozenset({"scope"})

    assert After().fingerprint() == Before().fingerprint() == {"size": 96}
    assert After(scope="background").fingerprint() == {"size": 96, "scope": "background"}


def test_values_no_later_node_reads_are_released_after_their_last_reader() -> None:
    plan = plan_of(VARIANTS)
    last_base_reader = [n.id for n in plan.nodes if "base" in n.needs][-1]
    assert plan.released_after() == {"base": ("source",), last_base_reader: ("base",)}
    # a written node is never released, whoever reads it
    written = plan_of(VARIANTS.replace("outputs: [square, warm, gray]", "outputs: [base, square, warm, gray]"))
    assert written.released_after() == {"base": ("source",)}


@pytest.mark.parametrize("answer", ["raise", float("nan"), -1.0, "text"])
def test_a_node_weighs_by_megapixels_where_a_plugins_work_fails(answer) -> None:
    """``Node.work`` is what the ETA and imgx plan weigh items by: a plugin's ``work`` that raises or gives no finite
    number >= 0 costs the weighing (megapixels instead), never the item or the run."""
    import imgx
    from imgx.plan import Node

    class Odd(imgx.Stage):
        name = "test.odd_work"

        @classmethod
        def work(cls, params, h, w):
            if answer == "raise":
                raise RuntimeError("no idea")
            return answer

    class Tiled(imgx.Stage):
        name = "test.tiled_work"

        @classmethod
        def work(cls, params, h, w):
            return 3.0

    assert Node("odd", Odd.name, Odd, Odd.Params(), (), "test").work(1000, 2000) == 2.0
    assert Node("tiled", Tiled.name, Tiled, Tiled.Params(), (), "test").work(1000, 2000) == 3.0
