"""``scope`` on the stages that change a look (style.transfer, style.reference, gan.vintage), through the real
registry, weights and eager backend, on matplotlib's RGBA gift pack (a real product with its own mask): with
``scope: background`` the product's colours stay (mean CIEDE2000 under 2 on its pixels) while the scene moves by more
than 10; ``product`` is the reverse; outputs made before ``scope`` existed keep their hash."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion
from skimage.color import deltaE_ciede2000, rgb2lab

from _support import default_registry, frozen, load_rgba_pack
from imgx import Item, StageContext
from imgx_gan import VintageLook, VintageParams
from imgx_style import StyleReference, StyleReferenceParams, StyleTransfer, StyleTransferParams

SIDE = 256


@pytest.fixture(scope="module")
def gift() -> tuple[np.ndarray, np.ndarray]:
    image, alpha = load_rgba_pack()
    scene = frozen(np.asarray(Image.fromarray(image).resize((SIDE, SIDE), Image.Resampling.LANCZOS)))
    matte = frozen(np.asarray(Image.fromarray(alpha).resize((SIDE, SIDE), Image.Resampling.LANCZOS)))
    return scene, matte


def _style_picture(tmp_path_factory: pytest.TempPathFactory) -> str:
    from skimage import data

    path = tmp_path_factory.mktemp("style") / "coffee.png"
    Image.fromarray(np.asarray(data.coffee())).save(path)
    return str(path)


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[type, type, dict]]:
    return {
        "style.transfer": (StyleTransfer, StyleTransferParams, {"style": 7}),
        "style.reference": (StyleReference, StyleReferenceParams, {"style_image": _style_picture(tmp_path_factory)}),
        "gan.vintage": (VintageLook, VintageParams, {}),
    }


def delta_e(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))[where].mean())


@pytest.mark.parametrize("name", ["style.transfer", "style.reference", "gan.vintage"])
def test_scope_background_keeps_the_product_true(gift, stages, name: str) -> None:
    scene, matte = gift
    stage_cls, params_cls, given = stages[name]
    context = StageContext(backend="eager", batch_size=2, registry=default_registry())
    core = binary_erosion(matte == 255, iterations=3)
    far = binary_erosion(matte == 0, iterations=3)
    outs = {}
    for scope in ("all", "background", "product"):
        stage = stage_cls(params_cls(**given, scope=scope), context)
        (outs[scope],) = stage([Item("gift", "memory", scene, alpha=matte)])
    background, product, everything = (outs[s].image for s in ("background", "product", "all"))
    assert delta_e(background, scene, core) < 2.0 and delta_e(background, scene, far) > 10.0, name
    assert delta_e(product, scene, far) < 2.0 and delta_e(product, scene, core) > 10.0, name
    assert delta_e(everything, scene, core) > 10.0, name  # unscoped, the product's colours move: what scope prevents
    assert stage_cls.alpha_needed(params_cls(**given, scope="background")) and not stage_cls.alpha_needed(
        params_cls(**given)
    )


@pytest.mark.parametrize("params_cls", [StyleTransferParams, VintageParams])
def test_scope_at_its_default_leaves_the_hash_of_earlier_outputs(params_cls) -> None:
    assert "scope" not in params_cls().fingerprint() and "feather" not in params_cls().fingerprint()
    assert params_cls(scope="background").fingerprint()["scope"] == "background"
