"""The ``style.transfer`` stage on real photos through the real registry, weights and backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from _support import default_registry, frozen, load_photo, load_rgba_pack, real_photo
from imgx import Item, StageContext
from imgx_style import StyleTransfer, StyleTransferParams, style_vector


def make(backend: str = "eager", batch_size: int = 4, **params) -> StyleTransfer:
    return StyleTransfer(
        StyleTransferParams(**params), StageContext(backend=backend, batch_size=batch_size, registry=default_registry())
    )


def items(*images: np.ndarray, alpha: np.ndarray | None = None) -> list[Item]:
    return [Item(f"sku-{i}", "memory", frozen(image), alpha) for i, image in enumerate(images)]


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def bucket_photo() -> np.ndarray:
    """coffee cropped to 384 x 512, a bucket shape: the stage pads nothing, so it must equal the original tool."""
    return frozen(load_photo("coffee")[:384, :512])


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_stage_gives_styletransfer_lites_pixels(backend, bucket_photo, original) -> None:
    stage = make(backend, style=7)
    (out,) = stage(items(bucket_photo))
    expected = (np.clip(original(bucket_photo, style_vector(7)), 0, 1) * 255 + 0.5).astype(np.uint8)
    diff = np.abs(out.image.astype(int) - expected)
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
    assert stage.shapes_seen == {(1, 3, 384, 512): 1}
    stage.close()


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_any_size_gives_styletransfer_lites_pixels_on_exact_shape_backends(backend, photos, original) -> None:
    """No coarse bucket padding on backends that take any shape: a 201 x 301 photo runs at 204 x 304, as the
    original pads it, so the instance-norm statistics and the pixels are the original tool's."""
    stage = make(backend, style={3: 0.5, 12: 0.5})
    images = list(photos.values())
    outs = stage(items(*images))
    for image, out in zip(images, outs, strict=True):
        expected = (np.clip(original(image, style_vector({3: 0.5, 12: 0.5})), 0, 1) * 255 + 0.5).astype(np.uint8)
        diff = np.abs(out.image.astype(int) - expected)
        assert diff.max() <= 1 and diff.mean() < 0.01, (image.shape, diff.max(), diff.mean())
    assert set(stage.shapes_seen) == {(1, 3, 204, 304), (1, 3, 252, 252), (1, 3, 224, 336)}


def test_styles_change_the_photo_measurably_and_differently(photos) -> None:
    photo = photos["coffee"]
    outs = {style: make(style=style)(items(photo))[0].image for style in (7, 19)}
    blend = make(style={7: 0.5, 19: 0.5})(items(photo))[0].image
    assert mean_diff(outs[7], photo) > 20 and mean_diff(outs[19], photo) > 20
    assert mean_diff(outs[7], outs[19]) > 15
    assert mean_diff(blend, outs[7]) < mean_diff(outs[7], outs[19]) > mean_diff(blend, outs[19])


def test_strength_zero_returns_the_input_and_strength_scales_the_change(photos) -> None:
    photo = photos["rocket"]
    (zero,) = make(style=3, strength=0.0)(items(photo))
    assert np.array_equal(zero.image, photo)
    full = make(style=3)(items(photo))[0].image
    half = make(style=3, strength=0.5)(items(photo))[0].image
    assert 0.3 < mean_diff(half, photo) / mean_diff(full, photo) < 0.7


def test_preserve_color_keeps_the_photos_chroma(photos) -> None:
    photo = photos["astronaut"]
    plain = make(style=12)(items(photo))[0].image
    kept = make(style=12, preserve_color=True)(items(photo))[0].image

    def ycc(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).convert("YCbCr")).astype(np.int16)

    assert np.abs(ycc(kept)[..., 1:] - ycc(photo)[..., 1:]).mean() < 3
    assert np.abs(ycc(plain)[..., 1:] - ycc(photo)[..., 1:]).mean() > 8
    assert np.abs(ycc(kept)[..., 0] - ycc(plain)[..., 0]).mean() < 3  # the luma is the stylized one


def test_alpha_is_carried_through_untouched() -> None:
    image, alpha = load_rgba_pack()
    (out,) = make(style=5)(items(image, alpha=frozen(alpha)))
    assert out.alpha is not None and np.array_equal(out.alpha, alpha)
    assert out.image.shape == image.shape and mean_diff(out.image, image) > 10


def test_a_batch_of_mixed_sizes_equals_the_items_alone(photos) -> None:
    stage = make(style=19, batch_size=4)
    images = [photos["coffee"], photos["astronaut"], photos["rocket"], frozen(real_photo("chelsea", 190))]
    batched = stage(items(*images))
    assert [o.image.shape for o in batched] == [i.shape for i in images]
    for image, out in zip(images, batched, strict=True):
        (alone,) = stage(items(image))
        assert np.abs(alone.image.astype(int) - out.image).max() <= 1
    stage.close()


def test_max_side_bounds_the_work_and_the_output_keeps_the_input_size() -> None:
    photo = frozen(load_photo("astronaut"))  # 512 x 512
    stage = make(style=7, max_side=256)
    (out,) = stage(items(photo))
    assert out.image.shape == photo.shape
    assert stage.shapes_seen == {(1, 3, 256, 256): 1}
    assert StyleTransfer.input_size(StyleTransferParams(max_side=1024), 1000, 3000) == (341, 1024)
    assert StyleTransfer.input_size(StyleTransferParams(max_side=None), 1000, 3000) == (1000, 3000)


def test_grayscale_and_tiny_images_work(photos) -> None:
    grey = np.repeat(np.asarray(Image.fromarray(photos["coffee"]).convert("L"))[..., None], 3, axis=2)
    tiny = np.ascontiguousarray(photos["rocket"][100:103, 100:105])
    out_grey, out_tiny = make(style=2)(items(grey, tiny))
    assert out_grey.image.shape == grey.shape and mean_diff(out_grey.image, grey) > 10
    assert out_tiny.image.shape == (3, 5, 3)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"style": 26}, "got style index 26; expected an integer 0..25"),
        ({"style": {3: 0.5, 12: -1}}, "got weight -1"),
        ({"strength": 1.5}, "less than or equal to 1"),
        ({"max_side": 8}, "greater than or equal to 16"),
        ({"colour": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(params, words) -> None:
    with pytest.raises(ValidationError, match=words):
        StyleTransferParams.model_validate(params)


def test_each_style_keys_its_own_cache_entries() -> None:
    keys = {make(style=s).backend.options.model_key for s in (7, 19)}
    keys.add(make(style={7: 1, 19: 1}).backend.options.model_key)
    assert len(keys) == 3
    assert make(style={7: 2, 19: 2}).model_key_extra() == "fast3;style=7:0.5,19:0.5"


def test_stages_listing_does_not_import_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        from imgx.registry import load_registry
        registry = load_registry()
        assert "style.transfer" in registry.stages and "multistyle26" in registry.models, registry.failures
        print("torch" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


PLUGIN = '''
"""A shop's own copy of the style weights, registered under its own name from a file on disk."""
from imgx import hookimpl
from imgx.models import ModelSpec, WeightFile
from imgx_style import MULTISTYLE26, build_multistyle26


@hookimpl
def imgx_models():
    weights = MULTISTYLE26.files["onnx"]
    return [ModelSpec(
        name="shop-style",
        files={"onnx": WeightFile("shop-style.onnx", weights.sha256, ("file://{path}",))},
        build=build_multistyle26,
        licence="MIT",
        stride=4,
    )]
'''


def test_a_plugin_registers_the_weights_under_its_own_name(onnx_file: Path, tmp_path: Path, monkeypatch) -> None:
    import torch

    from imgx.models import load_module
    from imgx.registry import PluginConfig, load_registry

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "shop_models.py").write_text(PLUGIN.replace("{path}", str(onnx_file)))
    monkeypatch.setenv("IMGX_HOME", str(tmp_path / "home"))
    registry = load_registry(PluginConfig(plugins_dirs=(str(folder),)))
    assert registry.failures == [] and "shop-style" in registry.models
    module = load_module("shop-style", registry=registry)
    assert (tmp_path / "home" / "models").is_dir()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(module(x), load_module("multistyle26", registry=default_registry())(x))
