"""Ledgers written before stay valid: the output hashes (the ledger's ``recipe_hash``, what ``--resume`` matches) of
every shipped recipe are the ones imgx computed before the plugin-host rework (commit 0691f9f). A change that moves
one makes every catalog team's next ``--resume`` redo that output: bump a stage's ``version`` on purpose, never by
accident of a refactor."""

from __future__ import annotations

import pytest

from _support import REPO
from imgx.runner import RunOptions, prepare

BEFORE = {
    # changed on purpose (issue 15): segment.product 2 re-estimates the mask's edge band by closed-form matting by
    # default (was 08f8e6d22fba8a97, 56c82b9c709375f1)
    "cutouts.yaml": {"cutout": "014e9bc86ecb2306", "cutout_web": "e92ee2364e5ff652"},
    "demo.yaml": {"enhanced": "4f36c87bea695890", "square": "2b66f4bd3dddcc53"},
    # main changed on purpose (issue 14): it now ends in check.marketplace and is written without the product mask
    # (was 856da28480f72bb0); both changed on purpose (issue 15): segment.product 2 mattes the mask's edge band by
    # default (were c9c496a18ff3145e, 3c48885046e06efe)
    "marketplace-white.yaml": {"main": "6ae0b9abf224aa2d", "cutout": "929ff8d15e488a2b"},
    # catalog changed on purpose (issue 17): execution.precision fp32 -> auto, so Real-ESRGAN may run BF16 on an AMX
    # CPU and its outputs are not FP32's (was 756259c2cfddb2bd)
    "restore-lowres.yaml": {"catalog": "af8161715cd98f62"},
    "style-variants.yaml": {
        "style_7": "2e4c0843aad254ca",
        "style_19": "112ab3c1f20cf1c6",
        "blend_3_12": "bf2722ac01abb714",
    },
    "vintage-campaign.yaml": {"hero": "716637051d3aa193", "social": "3c060bddb8e97413"},
}


@pytest.mark.parametrize("recipe", sorted(BEFORE))
def test_output_hashes_are_those_of_earlier_ledgers(recipe: str) -> None:
    _, _, plan = prepare(REPO / "recipes" / recipe, RunOptions())
    assert dict(plan.output_hashes) == BEFORE[recipe]


@pytest.mark.parametrize("recipe", ["marketplace-white.yaml", "audience-variants.yaml"])
def test_output_hashes_do_not_depend_on_where_the_checkout_is(recipe: str, tmp_path) -> None:
    """A recipe naming files beside it (a rule pack, style pictures) hashes the same from another folder: file
    parameters are stored absolute for the workers, but hashed relative to the recipe."""
    import shutil

    copy = shutil.copytree(REPO / "recipes", tmp_path / "elsewhere" / "recipes")
    hashes = [dict(prepare(folder / recipe, RunOptions())[2].output_hashes) for folder in (REPO / "recipes", copy)]
    assert hashes[0] == hashes[1]
