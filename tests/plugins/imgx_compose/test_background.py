"""compose.background: the function and the stage on real cut-outs, every background kind, shadow and alpha rules."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from _support import frozen, real_photo
from imgx import Item, StageError
from imgx.registry import load_registry
from imgx_compose import Background, BackgroundParams, compose_background, cover, gradient, load_backdrop


def _run(params: dict, image: np.ndarray, alpha: np.ndarray | None, sku: str = "sku-1") -> Item:
    stage = Background(BackgroundParams.model_validate(params))
    (out,) = stage([Item(sku, "memory", image, alpha)])
    return out


def test_registered_through_the_entry_points() -> None:
    registry = load_registry()
    assert not [f for f in registry.failures if "compose" in f.plugin]
    assert registry.get_stage("compose.background") is Background
    assert registry.stage_plugin("compose.background").startswith("compose")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"color": "#F5F0E6", "shadow": True},
        {"gradient": ["#ffffff", "#dfe6ee"], "gradient_angle": 135, "space": "linear"},
        {"gradient": ["#fff", "#ccc", "#888"], "gradient_kind": "radial", "shadow": True, "shadow_unit": "px",
         "shadow_offset": [3, 5], "shadow_blur": 6},
    ],
)  # fmt: skip
def test_stage_equals_the_function(params, pack_on_photo) -> None:
    image, alpha = pack_on_photo
    out = _run(params, image, alpha)
    expected = compose_background(image, alpha, BackgroundParams.model_validate(params))
    np.testing.assert_array_equal(out.image, expected)
    assert out.alpha is not None and (out.alpha == 255).all()  # opaque by default


def test_white_background_replaces_everything_outside_the_mask(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    out = compose_background(image, alpha)
    assert (out[alpha == 0] == 255).all()
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])
    assert (image[alpha == 0] < 250).any()  # the coffee photo really was replaced


@pytest.mark.parametrize("index", range(4))
def test_synthetic_shots_on_a_colour(index, demo_shots) -> None:
    image, mask = demo_shots[index]
    out = compose_background(image, mask, BackgroundParams(color="#2050a0"))
    assert (out[mask == 0] == (0x20, 0x50, 0xA0)).all()
    np.testing.assert_array_equal(out[mask == 255], image[mask == 255])


def test_shadow_lies_offset_from_the_product_and_darker(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    params = BackgroundParams(shadow=True, shadow_offset=(4.0, 6.0), shadow_blur=3.0, shadow_opacity=0.5)
    out = compose_background(image, alpha, params).astype(int)
    dy = round(6.0 * 160 / 100)  # percent of the longer side (160 px)
    dx = round(4.0 * 160 / 100)
    below = np.zeros_like(alpha, dtype=bool)
    below[dy:, dx:] = alpha[:-dy, :-dx] == 255  # where the shifted solid product falls
    lit = below & (alpha == 0)  # ... outside the product itself
    assert lit.sum() > 100
    assert out[lit].mean() < 255 * 0.75  # clearly in shadow
    # The shadow starts dx, dy past the product's box, softened by 3 sigma (sigma = 2.4 px): nothing before that.
    ys, xs = np.nonzero(alpha)
    free = np.zeros_like(alpha, dtype=bool)
    free[: ys.min() + dy - 8] = True
    free[:, : xs.min() + dx - 8] = True
    free &= alpha == 0
    assert free.sum() > 1000 and (out[free] == 255).all()
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])


def test_shadow_colour_and_opacity(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    weak = compose_background(image, alpha, BackgroundParams(shadow=True, shadow_opacity=0.2))
    strong = compose_background(image, alpha, BackgroundParams(shadow=True, shadow_opacity=0.6))
    outside = alpha == 0
    assert weak[outside].astype(int).sum() > strong[outside].astype(int).sum()
    # a shadow never darkens more than its opacity, and the strong one is clearly visible
    assert weak[outside].min() >= 255 * 0.8 - 1 and 255 * 0.4 - 1 <= strong[outside].min() < 255 * 0.6
    blue = compose_background(image, alpha, BackgroundParams(shadow=True, shadow_color="#0000ff", shadow_opacity=0.6))
    assert (blue[outside][:, 2] == 255).all() and blue[outside][:, 0].min() < 200


def test_gradient_background_ends_on_its_stops(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    params = BackgroundParams(gradient=["#ff8000", "#0080ff"], gradient_angle=90)
    out = compose_background(image, alpha, params)
    expected = gradient(*alpha.shape, ["#ff8000", "#0080ff"], angle=90)
    np.testing.assert_array_equal(out[alpha == 0], expected[alpha == 0])
    assert (out[:, 0] == (255, 128, 0)).all() and (out[:, -1] == (0, 128, 255)).all()  # mask is 0 at both edges


def test_backdrop_image_covers_the_frame(pack_on_photo, tmp_path) -> None:
    image, alpha = pack_on_photo  # 160 x 120 (4:3)
    backdrop = real_photo("grace_hopper", 200)  # portrait 171 x 200: must be scaled up and cropped top and bottom
    path = tmp_path / "brand.png"
    Image.fromarray(backdrop).save(path)
    params = BackgroundParams(image=str(path))
    out = compose_background(image, alpha, params)
    covered = cover(load_backdrop(path), 160, 120)
    assert covered.shape == (120, 160, 3)
    np.testing.assert_array_equal(out[alpha == 0], covered[alpha == 0])
    np.testing.assert_array_equal(out[alpha == 255], image[alpha == 255])
    stage_out = _run({"image": str(path)}, image, alpha)
    np.testing.assert_array_equal(stage_out.image, out)
    # covering: the scaled backdrop's width equals the frame's, its middle rows are the photo's middle
    scaled = np.asarray(Image.fromarray(backdrop).resize((160, round(200 * 160 / 171)), Image.LANCZOS))
    top = (scaled.shape[0] - 120) // 2
    assert np.abs(covered.astype(int) - scaled[top : top + 120]).mean() < 3


def test_backdrop_with_transparency_is_flattened_on_the_colour(pack, tmp_path) -> None:
    rgb, alpha = pack
    path = tmp_path / "pack.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    flat = load_backdrop(path, matte=(0, 255, 0))
    assert flat.shape == (128, 128, 3) and (flat[alpha == 0] == (0, 255, 0)).all()


@pytest.mark.parametrize("output_alpha", ["opaque", "keep", "none"])
def test_output_alpha(output_alpha, pack_on_photo) -> None:
    image, alpha = pack_on_photo
    out = _run({"output_alpha": output_alpha}, image, alpha)
    if output_alpha == "opaque":
        assert out.alpha is not None and (out.alpha == 255).all()
    elif output_alpha == "keep":
        assert out.alpha is alpha or np.array_equal(out.alpha, alpha)
    else:
        assert out.alpha is None
    np.testing.assert_array_equal(out.image, compose_background(image, alpha))


def test_item_without_alpha_fails_alone_with_the_fix(pack_on_photo) -> None:
    image, _ = pack_on_photo
    with pytest.raises(StageError, match=r"got no alpha for item 'shoe-7'; expected a mask: run segment\.product"):
        _run({}, image, None, sku="shoe-7")


def test_item_without_alpha_passes_through_when_asked(pack_on_photo) -> None:
    image, _ = pack_on_photo
    out = _run({"missing_alpha": "opaque"}, image, None)
    np.testing.assert_array_equal(out.image, image)
    assert out.alpha is not None and (out.alpha == 255).all()
    assert _run({"missing_alpha": "opaque", "output_alpha": "none"}, image, None).alpha is None


def test_empty_mask_fails_the_item(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    with pytest.raises(StageError, match=r"item 'sku-1'.*all-zero alpha"):
        _run({}, image, frozen(np.zeros_like(alpha)))


def test_full_mask_returns_the_photo(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    out = _run({"shadow": True, "color": "#000"}, image, frozen(np.full_like(alpha, 255)))
    np.testing.assert_array_equal(out.image, image)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3), (2, 97)])
def test_tiny_and_odd_images(shape) -> None:
    image = frozen(real_photo("astronaut", max(shape))[: shape[0], : shape[1]])
    assert image.shape[:2] == shape
    alpha = np.zeros(shape, np.uint8)
    alpha[shape[0] // 2, shape[1] // 2] = 255
    params = {"shadow": True, "shadow_blur": 30, "gradient": ["#fff", "#000"], "gradient_kind": "radial"}
    out = _run(params, image, frozen(alpha))
    assert out.image.shape == (*shape, 3) and out.alpha.shape == shape
    assert tuple(out.image[shape[0] // 2, shape[1] // 2]) == tuple(image[shape[0] // 2, shape[1] // 2])


def test_grayscale_looking_photo_stays_grey_on_a_grey_background(pack_on_photo) -> None:
    image, alpha = pack_on_photo
    grey = frozen(np.repeat(image.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2))
    for space in ("srgb", "linear"):
        params = {"color": "#808080", "shadow": True, "gradient": ["#eee", "#444"], "space": space}
        out = _run(params, grey, alpha).image
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"color": "white"}, "#RRGGBB"),
        ({"gradient": ["#fff"]}, "two or more"),
        ({"gradient": ["#fff", "#000"], "image": "x.png"}, "image"),
        ({"gradient": ["#fff", "#000"], "gradient_positions": [0.0]}, "one per gradient colour"),
        ({"gradient_positions": [0.0, 1.0]}, "without gradient"),
        ({"image": "/nonexistent/brand.jpg"}, "existing image file"),
        ({"shadow_opacity": 2}, "less than or equal to 1"),
        ({"shadow_colour": "#000"}, "Extra inputs"),
        ({"output_alpha": "drop"}, "opaque"),
    ],
)
def test_bad_params_are_recipe_errors(params, words) -> None:
    with pytest.raises(ValidationError, match=words):
        BackgroundParams.model_validate(params)


def test_unreadable_backdrop_fails_when_the_stage_starts(tmp_path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not an image")
    with pytest.raises(StageError, match=r"got '.*broken\.jpg' for the backdrop image; expected a readable"):
        Background(BackgroundParams(image=str(path)))


def test_after_geometry_center_the_marketplace_chain(pack_on_photo) -> None:
    """segment.product's mask -> geometry.center (transparent) -> compose.background (white, shadow): the product at
    85 % in the middle of a white square, a shadow just below it, pure white elsewhere."""
    from imgx_geometry import Center, CenterParams

    image, alpha = pack_on_photo
    centre = Center(CenterParams(size=150, fill=0.85, background="transparent"))  # x 1.7: under max_upscale
    (centred,) = centre([Item("gift", "memory", image, alpha)])
    params = {"shadow": True, "shadow_offset": [0, 1.5], "shadow_blur": 2.0, "shadow_opacity": 0.4}
    (final,) = Background(BackgroundParams.model_validate(params))([centred])
    out, mask = final.image, centred.alpha
    assert out.shape == (150, 150, 3) and (final.alpha == 255).all()
    ys, xs = np.nonzero(mask >= 128)
    assert abs(max(ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()) - 127.5) <= 3
    np.testing.assert_array_equal(out[mask == 255], centred.image[mask == 255])
    top, left = np.nonzero(mask.any(axis=1))[0][0], np.nonzero(mask.any(axis=0))[0][0]
    assert top >= 4 and left >= 6
    assert (out[: top - 3] == 255).all() and (out[:, : left - 3] == 255).all()  # away from the product: pure white
    (plain,) = Background(BackgroundParams())([centred])
    darkening = plain.image.astype(np.float32).mean(axis=2) - out.astype(np.float32).mean(axis=2)
    assert darkening.min() >= 0 and darkening.max() > 40  # the shadow only darkens, and visibly
    rows = np.arange(150, dtype=np.float32)[:, None]
    shadow_y = float((darkening * rows).sum() / darkening.sum())
    product_y = float((mask * rows).sum() / mask.astype(np.float32).sum())
    assert shadow_y > product_y + 10  # it shows below the product (where the product does not cover it)


def test_a_run_fails_only_the_item_without_alpha(pack, tmp_path) -> None:
    """Through the engine: an RGBA PNG is composed; a JPEG (no alpha) fails alone with the fix in the reason."""
    from typer.testing import CliRunner

    from _support import write_recipe
    from imgx.cli import app

    rgb, alpha = pack
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(catalog / "gift.png")
    Image.fromarray(real_photo("coffee", 96)).save(catalog / "coffee.jpg")
    recipe = write_recipe(
        tmp_path,
        {
            "version": 1,
            "name": "compose",
            # the catalog says it holds cut-outs (else validation refuses compose.background with no mask upstream)
            "input": {"path": str(catalog), "pattern": ["*.png", "*.jpg"], "alpha": True},
            "output": {"dir": str(tmp_path / "out"), "format": "png"},
            "execution": {"workers": 1, "max_failures": 0},
            "stages": [{"id": "main", "uses": "compose.background", "with": {"color": "#00ff00"}}],
        },
    )
    result = CliRunner().invoke(app, ["run", str(recipe), "--no-progress"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "got no alpha for item 'coffee'; expected a mask: run segment.product first" in result.output
    assert not (tmp_path / "out" / "coffee").exists()
    written = np.asarray(Image.open(tmp_path / "out" / "gift" / "main.png"))
    assert written.shape == (128, 128, 4) and (written[..., 3] == 255).all()  # opaque
    assert (written[alpha == 0][:, :3] == (0, 255, 0)).all()
    np.testing.assert_array_equal(written[alpha == 255][:, :3], rgb[alpha == 255])


def test_a_relative_backdrop_path_resolves_against_the_recipes_folder_not_the_working_directory(
    tmp_path, monkeypatch
) -> None:
    from imgx import RecipeError
    from imgx.plan import build_plan
    from imgx.recipe import load_recipe

    recipes = tmp_path / "brand"
    (recipes / "assets").mkdir(parents=True)
    Image.fromarray(real_photo("chelsea", 64)).save(recipes / "assets" / "backdrop.jpg")
    text = (
        "version: 1\nname: t\ninput: {path: catalog/}\nstages:\n"
        "  - {id: masked, uses: compose.background, with: {image: assets/backdrop.jpg}}\n"
    )
    (recipes / "recipe.yaml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = build_plan(load_recipe(recipes / "recipe.yaml"), load_registry())
    assert plan.node("masked").params.image == str(recipes / "assets" / "backdrop.jpg")
    (recipes / "recipe.yaml").write_text(text.replace("assets/backdrop.jpg", "assets/missing.jpg"))
    with pytest.raises(RecipeError, match=r"recipe\.yaml:5.*looked for .*brand/assets/missing\.jpg"):
        build_plan(load_recipe(recipes / "recipe.yaml"), load_registry())
