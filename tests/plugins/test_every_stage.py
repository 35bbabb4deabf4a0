"""Every registered stage, first-party or not, runs on real photos with and without alpha and documents itself.

New stages are covered automatically: the test loops over the registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from _support import default_registry, real_photo
from imgx import Item, StageContext, StageError
from imgx.registry import load_registry

REGISTRY = load_registry()
STAGES = sorted(REGISTRY.stages)


def test_the_registry_has_the_first_party_stages() -> None:
    assert {"color.enhance", "geometry.fit"} <= set(STAGES)


@pytest.mark.parametrize("name", STAGES)
def test_stage_documents_every_parameter(name: str) -> None:
    info = REGISTRY.get_stage(name).describe()
    assert info["summary"], f"{name} has no summary"
    for param in info["params"]:
        assert param["description"], f"{name}.{param['name']} has no description"
        assert param["type"] and "typing." not in param["type"]


@pytest.mark.parametrize("name", STAGES)
@pytest.mark.parametrize("with_alpha", [False, True])
def test_stage_runs_on_a_real_photo_with_its_example_params(name: str, with_alpha: bool) -> None:
    cls = REGISTRY.get_stage(name)
    stage = cls(cls.Params.model_validate(cls.example), StageContext(batch_size=2, registry=default_registry()))
    photos = [real_photo("coffee", 96), real_photo("astronaut", 64)]
    items = []
    for index, image in enumerate(photos):
        alpha = None
        if with_alpha:
            alpha = np.zeros(image.shape[:2], np.uint8)
            alpha[image.shape[0] // 4 : -image.shape[0] // 4, image.shape[1] // 4 : -image.shape[1] // 4] = 255
        items.append(Item(f"sku-{index}", "memory", image, alpha))
    inputs = [items] * cls.inputs
    if cls.needs_alpha and not with_alpha:
        with pytest.raises(StageError, match="alpha"):
            stage(*inputs)
        stage.close()
        return
    result = stage(*inputs)
    assert len(result) == 2
    for before, after in zip(items, result, strict=True):
        assert isinstance(after, Item) and after.sku == before.sku
        assert after.image.dtype == np.uint8 and after.image.ndim == 3 and after.image.shape[2] == 3
        if with_alpha:
            assert after.alpha is not None and after.alpha.shape == after.image.shape[:2], f"{name} dropped alpha"
    stage.close()
