"""The ``style.reference`` stage on real photos through the real registry, weights and backends.

Style pictures are made from packaged samples (scikit-learn's ``flower``, matplotlib's ``grace_hopper``), written as
files next to a recipe the way a user would give them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from _support import default_registry, frozen, load_photo, load_rgba_pack, real_photo
from imgx import Item, StageContext, StageError
from imgx_style import StyleReference, StyleReferenceParams
from imgx_style.reference import STAGE_CHANNELS, plane_input, style_square


@pytest.fixture(scope="module")
def styles(tmp_path_factory) -> dict[str, Path]:
    """``name -> file``: two style pictures as JPEG files."""
    folder = tmp_path_factory.mktemp("styles")
    out = {}
    for name in ("flower", "grace_hopper"):
        path = folder / f"{name}.jpg"
        Image.fromarray(load_photo(name)).save(path, quality=92)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """chelsea at 240 x 360 (multiples of 4: the stage pads nothing on the eager backend)."""
    image = real_photo("chelsea", 360)
    return frozen(image[: image.shape[0] // 4 * 4, : image.shape[1] // 4 * 4])


def make(style: Path | str, backend: str = "eager", batch_size: int = 2, **params) -> StyleReference:
    return StyleReference(
        StyleReferenceParams(style_image=str(style), **params),
        StageContext(backend=backend, batch_size=batch_size, registry=default_registry()),
    )


def items(*images: np.ndarray, alpha: np.ndarray | None = None) -> list[Item]:
    return [Item(f"sku-{i}", "memory", frozen(image), alpha) for i, image in enumerate(images)]


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def flower_stage(styles):
    stage = make(styles["flower"])
    yield stage
    stage.close()


@pytest.fixture(scope="module")
def plain(flower_stage, photo) -> np.ndarray:
    return flower_stage(items(photo))[0].image


def test_the_stage_is_the_network_on_the_photo_with_the_style_pictures_vector(flower_stage, photo, plain, styles):
    """The stage's pixels are the port's: predictor on the style picture's centred 256 square, transformer on the
    photo at its own size with that vector (the vector travels as the 4th input plane)."""
    assert plain.shape == photo.shape and plain.dtype == np.uint8
    assert flower_stage.shapes_seen[(1, STAGE_CHANNELS, *photo.shape[:2])] >= 1
    base = flower_stage.module.transformer
    square = style_square(np.asarray(Image.open(styles["flower"]).convert("RGB")))
    with torch.inference_mode():
        vector = flower_stage.predictor(torch.from_numpy(square.transpose(2, 0, 1) / np.float32(255))[None])
        x = torch.from_numpy(photo.transpose(2, 0, 1) / np.float32(255))[None]
        expected = base(x, vector)[0].permute(1, 2, 0).numpy()
    expected = (np.clip(expected, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(plain.astype(int) - expected).max() <= 1
    planes = plane_input(photo, vector[0].numpy())
    assert planes.shape == (*photo.shape[:2], 4) and np.array_equal(planes[:10, :10, 3].ravel(), vector[0].numpy())


def test_the_style_picture_changes_the_photo_measurably_and_each_its_own_way(styles, photo, plain) -> None:
    hopper = make(styles["grace_hopper"])(items(photo))[0].image
    assert mean_diff(plain, photo) > 20 and mean_diff(hopper, photo) > 20
    assert mean_diff(plain, hopper) > 10


def test_strength_mixes_in_the_photos_own_vector(styles, photo, plain) -> None:
    """As the original: 0 is the photo restyled by its own vector (close to the photo, not equal), 1 the style's."""
    zero = make(styles["flower"], strength=0.0)(items(photo))[0].image
    half_stage = make(styles["flower"], strength=0.5)
    half = half_stage(items(photo))[0].image
    assert mean_diff(zero, photo) < 0.6 * mean_diff(plain, photo)
    assert mean_diff(zero, plain) > mean_diff(half, plain) > 5
    assert half_stage.predictions == 2  # the style picture, then the photo's own vector
    half_stage(items(photo))
    assert half_stage.predictions == 3  # the style's vector is cached; each photo's own is computed


def test_preserve_color_keeps_the_photos_chroma(styles, photo, plain) -> None:
    kept = make(styles["flower"], preserve_color=True)(items(photo))[0].image

    def ycc(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).convert("YCbCr")).astype(np.int16)

    assert np.abs(ycc(kept)[..., 1:] - ycc(photo)[..., 1:]).mean() < 3
    assert np.abs(ycc(plain)[..., 1:] - ycc(photo)[..., 1:]).mean() > 8
    assert np.abs(ycc(kept)[..., 0] - ycc(plain)[..., 0]).mean() < 3  # the luma is the stylized one


def test_the_style_vector_is_computed_once_per_style_picture(flower_stage, plain, styles) -> None:
    small, other = frozen(real_photo("coffee", 96)), frozen(real_photo("astronaut", 64))
    flower_stage(items(other, small))
    flower_stage(items(small))
    assert flower_stage.predictions == 1 and list(flower_stage.vectors) == [str(styles["flower"])]


def test_max_side_bounds_the_work_and_the_output_keeps_the_input_size(styles) -> None:
    big = frozen(load_photo("astronaut"))  # 512 x 512
    stage = make(styles["flower"], max_side=256)
    (out,) = stage(items(big))
    assert out.image.shape == big.shape and mean_diff(out.image, big) > 20
    assert stage.shapes_seen == {(1, STAGE_CHANNELS, 256, 256): 1}
    assert StyleReference.input_size(stage.params, 1000, 3000) == (85, 256)


def test_a_batch_mixes_sizes_and_tiny_images_and_a_uri_works(styles, photo) -> None:
    stage = make(styles["flower"].as_uri(), batch_size=3)
    tiny = np.ascontiguousarray(photo[100:103, 100:105])
    odd = frozen(real_photo("coffee", 101))
    outs = stage(items(photo, tiny, odd))
    assert [o.image.shape for o in outs] == [photo.shape, tiny.shape, odd.shape]
    assert mean_diff(outs[2].image, odd) > 15


def test_scope_background_keeps_the_product_and_restyles_the_rest(styles) -> None:
    image, alpha = load_rgba_pack()
    scene = frozen(np.asarray(Image.fromarray(image).resize((256, 256), Image.Resampling.LANCZOS)))
    matte = frozen(np.asarray(Image.fromarray(alpha).resize((256, 256), Image.Resampling.LANCZOS)))
    (out,) = make(styles["flower"], scope="background", feather=2.0)(items(scene, alpha=matte))
    (inverse,) = make(styles["flower"], scope="product")(items(scene, alpha=matte))
    inside, outside = matte == 255, matte == 0
    from scipy.ndimage import binary_erosion

    core, far = binary_erosion(inside, iterations=4), binary_erosion(outside, iterations=4)
    assert np.abs(out.image[core].astype(int) - scene[core]).max() <= 1  # the product's own pixels
    assert np.abs(out.image[far].astype(int) - scene[far]).mean() > 15  # the scene restyled
    assert np.abs(inverse.image[far].astype(int) - scene[far]).max() <= 1
    assert np.abs(inverse.image[core].astype(int) - scene[core]).mean() > 15
    assert out.alpha is not None and np.array_equal(out.alpha, matte)
    with pytest.raises(StageError, match="alpha"):
        make(styles["flower"], scope="background")(items(scene))
    assert StyleReference.alpha_needed(StyleReferenceParams(style_image=str(styles["flower"]), scope="product"))
    assert not StyleReference.alpha_needed(StyleReferenceParams(style_image=str(styles["flower"])))


def test_a_missing_style_image_is_a_recipe_error_naming_the_file(styles, tmp_path, monkeypatch) -> None:
    from imgx import RecipeError
    from imgx.plan import build_plan
    from imgx.recipe import load_recipe
    from imgx.registry import load_registry

    recipes = tmp_path / "brand"
    (recipes / "styles").mkdir(parents=True)
    Image.open(styles["flower"]).save(recipes / "styles" / "flower.jpg")
    text = (
        "version: 1\nname: t\ninput: {path: catalog/}\nstages:\n"
        "  - {id: painted, uses: style.reference, with: {style_image: styles/flower.jpg, strength: 0.8}}\n"
    )
    (recipes / "recipe.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    plan = build_plan(load_recipe(recipes / "recipe.yaml"), load_registry())
    assert plan.node("painted").params.style_image == str(recipes / "styles" / "flower.jpg")
    (recipes / "recipe.yaml").write_text(text.replace("styles/flower.jpg", "styles/missing.jpg"))
    with pytest.raises(RecipeError, match=r"recipe\.yaml:5.*style_image.*looked for .*brand/styles/missing\.jpg"):
        build_plan(load_recipe(recipes / "recipe.yaml"), load_registry())


def test_an_unreadable_style_image_fails_the_stage_naming_it(photo, tmp_path) -> None:
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    with pytest.raises(StageError, match=r"style_image '.*not-an-image\.jpg'"):
        make(bad.as_uri())(items(photo))


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "style_image\n  Field required"),
        ({"style_image": ""}, "empty style_image"),
        ({"style_image": "nowhere/x.jpg"}, r"got 'nowhere/x.jpg' for style_image; expected an existing image file"),
        ({"style_image": "file:///nowhere/gone.jpg"}, r"looked for /nowhere/gone\.jpg"),
        ({"style_image": "https:///s.jpg"}, r"expected a file, or a URI such as s3://bucket/key"),
        ({"style_image": __file__, "strength": 1.5}, "less than or equal to 1"),
        ({"style_image": __file__, "scope": "edges"}, "'all', 'background' or 'product'"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(params, words) -> None:
    with pytest.raises(ValidationError, match=words):
        StyleReferenceParams.model_validate(params)


def test_the_onnxruntime_backend_runs_the_same_module(styles, photo, plain, tmp_path) -> None:
    """Through the backend machinery: the StylePlane module exported to ONNX and run by ONNX Runtime. int8 rounding
    ties spread differently there (as between ONNX Runtime's own optimization levels), so the look is compared."""
    stage = StyleReference(
        StyleReferenceParams(style_image=str(styles["flower"])),
        StageContext(backend="onnxruntime", batch_size=2, registry=default_registry(), cache_dir=str(tmp_path)),
    )
    (out,) = stage(items(photo))
    assert out.image.shape == photo.shape
    assert mean_diff(out.image, plain) < 0.4 * mean_diff(plain, photo)
    assert stage.model_key_extra() == "style-plane-1"
    stage.close()


def test_a_style_image_in_object_storage_gives_the_local_files_vector(styles, s3_bucket, s3_server) -> None:
    """``style_image: s3://...`` is read like a catalog image (moto's S3 on loopback) and gives the same vector as
    the same picture on disk."""
    key = "looks/flower.png"
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=Path(styles["flower"]).read_bytes())
    uri = f"s3://{s3_bucket}/{key}"
    assert StyleReferenceParams(style_image=uri).style_image == uri  # taken as given, read when used
    remote, local = make(uri), make(str(styles["flower"]))
    assert np.array_equal(remote.style_vector(uri), local.style_vector(str(styles["flower"])))
    with pytest.raises(StageError, match="cannot read style_image"):
        remote.style_vector(f"s3://{s3_bucket}/looks/missing.png")
