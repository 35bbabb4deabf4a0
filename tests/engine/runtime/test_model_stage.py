"""ModelStage: a model registered by a real plugin (real weights file, fetched into IMGX_HOME), a batch of real
photos of mixed sizes grouped into shape buckets, batched runs equal to one-image runs."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

import imgx
from _support import real_photo
from imgx.runtime import ModelStage
from imgx.runtime.buckets import bucket_shape

# (photo, long side) -> (h, w) -> bucket (sides 128, 256, 512; stride 4):
# coffee 167x250, chelsea 153x230, china 167x250 -> 192x256; astronaut 240x240 -> 256x256; rocket 80x120,
# motorcycle 67x100 -> 96x128. Six sizes, three buckets; with batches of 2: four batches (2 + 1, 1, 2).
SIZES = (("coffee", 250), ("astronaut", 240), ("chelsea", 230), ("rocket", 120), ("motorcycle", 100), ("china", 250))


class TinyStyle(ModelStage):
    """A model stage as a plugin writes one: uint8 RGB in, the network in between, uint8 RGB out."""

    name: ClassVar[str] = "test.tiny_style"
    summary: ClassVar[str] = "The tiny style network (test)."
    model: ClassVar[str] = "tiny-style"

    def __call__(self, batch, *more):
        images = [item.image.astype(np.float32) / 255 for item in batch]
        outputs = self.infer_images(images)
        return [
            item.replace(image=np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8))
            for item, out in zip(batch, outputs, strict=True)
        ]


def photos() -> list[np.ndarray]:
    return [real_photo(name, long_side=side).astype(np.float32) / 255 for name, side in SIZES]


def make(registry, batch_size: int = 4, backend: str = "eager", tmp_path=None) -> TinyStyle:
    context = imgx.StageContext(
        batch_size=batch_size, backend=backend, cache_dir=str(tmp_path) if tmp_path else None, registry=registry
    )
    return TinyStyle(context=context)


def test_mixed_sizes_run_in_buckets_and_match_one_image_runs(tiny_model_plugin, tiny_net) -> None:
    """On a backend that builds per shape (here eager declared static by the test plugin) images are bucketed."""
    images = photos()
    stage = make(tiny_model_plugin, batch_size=2, backend="eager-static")
    assert stage.choice.name == "eager-static" and stage.uses_buckets and stage.spec.name == "tiny-style"
    outputs = stage.infer_images(images)

    assert [im.shape[:2] for im in images] == [(167, 250), (240, 240), (153, 230), (80, 120), (67, 100), (167, 250)]
    assert {bucket_shape(*im.shape[:2], sides=(128, 256, 512), multiple=4) for im in images} == {
        (192, 256),
        (256, 256),
        (96, 128),
    }
    # same bucket, same call; on the CPU a call holds at most CPU_CALL_PIXELS (one 192 x 256 input, two of 96 x 128)
    assert dict(stage.shapes_seen) == {
        (1, 3, 192, 256): 3,
        (1, 3, 256, 256): 1,
        (2, 3, 96, 128): 1,
    }

    single = make(tiny_model_plugin, batch_size=1, backend="eager-static")
    for image, out in zip(images, outputs, strict=True):
        assert out.shape == image.shape and out.dtype == np.float32
        (alone,) = single.infer_images([image])
        assert np.abs(alone - out).max() < 1e-5
        # the network really ran: the output is neither the input nor constant
        assert np.abs(out - image).mean() > 0.02 and out.std() > 0.01
    stage.close()
    single.close()


def test_a_padded_run_matches_the_network_at_the_bucket_size(tiny_model_plugin, tiny_net) -> None:
    """The stage pads by reflection and crops back: a photo already at its bucket size is the network's output."""
    image = real_photo("astronaut", long_side=256).astype(np.float32) / 255  # 256 x 256, its own bucket
    (out,) = make(tiny_model_plugin, backend="eager-static").infer_images([image])
    with torch.inference_mode():
        direct = tiny_net(torch.from_numpy(image.transpose(2, 0, 1).copy())[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(out - direct).max() < 1e-5


def test_dynamic_shape_backends_run_each_image_at_its_own_size(tiny_model_plugin, tiny_net) -> None:
    """eager takes any size: each image is padded to a multiple of the stride (4) only, so its output is the
    network's on that padded image, and only images of the same padded size share a batch."""
    images = photos()
    stage = make(tiny_model_plugin, batch_size=4, backend="eager")
    assert not stage.uses_buckets
    outputs = stage.infer_images(images)
    assert dict(stage.shapes_seen) == {
        (1, 3, 168, 252): 2,  # coffee and china: one shape, but 168 x 252 is one CPU call's worth of pixels
        (1, 3, 240, 240): 1,
        (1, 3, 156, 232): 1,
        (1, 3, 80, 120): 1,
        (1, 3, 68, 100): 1,
    }
    for image, out in zip(images, outputs, strict=True):
        h, w = image.shape[:2]
        x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
        padded = torch.nn.functional.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
        with torch.inference_mode():
            direct = tiny_net(padded)[0, :, :h, :w].permute(1, 2, 0).numpy()
        assert out.shape == image.shape and np.abs(out - direct).max() < 1e-5


def test_the_stage_runs_items_through_onnxruntime_with_its_cache_under_the_context_dir(
    tiny_model_plugin, tmp_path
) -> None:
    stage = make(tiny_model_plugin, backend="auto", tmp_path=tmp_path)
    assert stage.choice.name == "onnxruntime", stage.choice.reason
    items = [imgx.Item(sku=name, source=name, image=real_photo(name, long_side=side)) for name, side in SIZES[:3]]
    out = stage(items)
    assert [o.image.shape for o in out] == [i.image.shape for i in items]
    assert list((tmp_path / "engines" / "onnx").glob("*.onnx"))
    reference = make(tiny_model_plugin, backend="eager")(items)
    for a, b in zip(out, reference, strict=True):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1


def test_a_wrong_image_layout_is_refused(tiny_model_plugin) -> None:
    with pytest.raises(ValueError, match=r"expected \(h, w, 3\) float32"):
        make(tiny_model_plugin).infer_images([np.zeros((32, 32, 3), np.uint8)])


@pytest.mark.parametrize("threads", [1, 2])
def test_the_workers_share_of_the_cores_reaches_the_onnxruntime_session(
    tiny_model_plugin, tmp_path, threads: int
) -> None:
    """The executor gives each worker ``cores // workers`` threads; an all-core pool per worker would oversubscribe."""
    context = imgx.StageContext(
        backend="onnxruntime", cache_dir=str(tmp_path), threads=threads, registry=tiny_model_plugin
    )
    stage = TinyStyle(context=context)
    try:
        stage.infer_images(photos()[:1])
        assert stage.backend.session.get_session_options().intra_op_num_threads == threads
    finally:
        stage.close()


class TinyStyleInParts(TinyStyle):
    """A stage that runs its network's second half as a part of its own (as Real-ESRGAN's upsampler runs on strips):
    the main backend runs the network, the part the same network again."""

    name: ClassVar[str] = "test.tiny_style_in_parts"

    def build_parts(self, base):
        return {"again": base}


def test_a_part_runs_by_its_own_backend_of_the_same_kind_with_its_own_cached_graph(
    tiny_model_plugin, tiny_net, tmp_path
) -> None:
    context = imgx.StageContext(backend="auto", cache_dir=str(tmp_path), threads=1, registry=tiny_model_plugin)
    stage = TinyStyleInParts(context=context)
    try:
        part = stage.parts["again"]
        assert type(part) is type(stage.backend) and part.options.threads == 1 and stage.choice.name == "onnxruntime"
        assert part.options.model_key != stage.backend.options.model_key  # one graph each, never mistaken
        image = real_photo("chelsea", long_side=96).astype(np.float32) / 255
        (once,) = stage.infer_images([image])
        twice = stage.run_part("again", once.transpose(2, 0, 1)[None])
        assert twice.shape == (1, 3, *image.shape[:2]) and twice.dtype == np.float32
        with torch.inference_mode():
            x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
            direct = tiny_net(tiny_net(x)).numpy()
        assert np.abs(twice - direct).max() < 1e-4 and np.abs(twice - once.transpose(2, 0, 1)).mean() > 0.01
        assert len(list((tmp_path / "engines" / "onnx").glob("*.onnx"))) == 2
        with pytest.raises(KeyError):
            stage.run_part("missing", twice)
    finally:
        stage.close()
    assert stage.backend.session is None and stage.parts["again"].session is None


class SqrtShifted(torch.nn.Module):
    """``sqrt(x - 0.5)``: NaN wherever the network's output is below 0.5, as a kernel failing at BF16 gives."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x - 0.5)


class BrokenTinyStyle(TinyStyle):
    name: ClassVar[str] = "test.broken_tiny_style"

    def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
        return torch.nn.Sequential(base, SqrtShifted())


def test_a_network_returning_nan_fails_its_items_with_the_reason_instead_of_writing_black_pixels(
    tiny_model_plugin,
) -> None:
    """NaN converts to 0 (or 255) in uint8: the stage must fail the call's items, naming the model, backend and
    precision, rather than hand on an image of garbage; a finite network on the same photo passes."""
    image = real_photo("astronaut", long_side=128).astype(np.float32) / 255
    context = imgx.StageContext(batch_size=2, backend="eager", registry=tiny_model_plugin)
    broken = BrokenTinyStyle(context=context)
    with pytest.raises(imgx.StageError, match=r"model tiny-style returned NaN/Inf on eager at fp32 on cpu$"):
        broken.infer_images([image])
    (out,) = make(tiny_model_plugin).infer_images([image])
    assert np.isfinite(out).all()


class OneInf(torch.nn.Module):
    """The input with one value set to +Inf: a single bad pixel in a large output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[0, 1, x.shape[2] // 2, x.shape[3] // 3] = float("inf")
        return out


class Huge(torch.nn.Module):
    """Finite values too large to add up in float32 (3e38 each): their sum overflows though none is Inf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0 + 3e38


@pytest.mark.parametrize(("tail", "finite"), [(OneInf, False), (Huge, True)])
def test_the_nan_check_finds_one_inf_value_and_passes_finite_values_whose_sum_overflows(
    tiny_model_plugin, tail: type[torch.nn.Module], finite: bool
) -> None:
    """The check sums the output first (cheap) and looks value by value only when the sum is not finite: one Inf
    among 49,152 values fails the call; finite values whose sum overflows to Inf still pass."""

    class Tailed(TinyStyle):
        name: ClassVar[str] = "test.tailed_tiny_style"

        def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
            return torch.nn.Sequential(base, tail())

    image = real_photo("astronaut", long_side=128).astype(np.float32) / 255
    stage = Tailed(context=imgx.StageContext(batch_size=1, backend="eager", registry=tiny_model_plugin))
    if finite:
        (out,) = stage.infer_images([image])
        assert np.isfinite(out).all() and float(out.min()) == pytest.approx(3e38)
    else:
        with pytest.raises(imgx.StageError, match=r"returned NaN/Inf on eager at fp32 on cpu$"):
            stage.infer_images([image])


def test_bf16_asked_for_by_name_is_checked_on_this_cpu_and_kept_with_a_warning(tiny_model_plugin) -> None:
    """``precision: bf16`` by name on the CPU: the stage checks its module at BF16 here (finite and repeatable, for
    a model without a tolerance) and warns, naming what failed, while keeping what the recipe asked for; a module
    that passes starts without a warning."""
    import warnings

    context = imgx.StageContext(backend="eager", precision="bf16", registry=tiny_model_plugin)
    with pytest.warns(RuntimeWarning, match=r"BF16 failed its check on this CPU: BF16 returned \d+ NaN/Inf values"):
        broken = BrokenTinyStyle(context=context)
    assert broken.backend.options.precision == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine = TinyStyle(context=context)
    assert fine.backend.options.precision == "bf16" and fine.precision_reason == ""
