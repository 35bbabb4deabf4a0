"""The CycleGAN port against vintagify 0.1.2's own ``ResnetGenerator`` (its ``generator.py``, run from the pinned wheel)
on real photos; vintagify's whole pipeline against the stage; the strict loader; and the backends."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _support import default_registry, load_photo, real_photo
from imgx import StageContext
from imgx_gan.network_cyclegan import ResnetGenerator, UnitRangeGenerator
from imgx_gan.vintage import VintageLook, VintageParams, vintage_arrays
from imgx_gan.weights import load_generator

KEYS = 94  # 24 convs (2 of them transposed) and 23 affine instance norms, each with a weight and a bias


@pytest.fixture(scope="module")
def port(vintage_pth: Path) -> ResnetGenerator:
    return load_generator(vintage_pth)


@pytest.fixture(scope="module")
def original(vintagify_generator_class, vintage_pth: Path) -> torch.nn.Module:
    """vintagify's generator, loaded as its ``inference_image`` does: ``torch.load(path, map_location=device)``."""
    net = vintagify_generator_class()
    net.load_state_dict(torch.load(vintage_pth, map_location="cpu"))
    return net.eval()


def as_input(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float32 in -1..1 (vintagify's ``ToTensor``, ``Normalize(0.5, 0.5)``)."""
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)
    return ((x - 0.5) / 0.5)[None]


def vintagify_preprocess(image: np.ndarray, image_size: int) -> np.ndarray:
    """vintagify's ``transforms.Resize(image_size + 30)`` + ``CenterCrop(image_size)`` on a PIL image, as torchvision
    computes them (short side to ``image_size + 30``, long side ``int(size * long / short)``, Pillow bilinear; crop
    offsets ``int(round((side - crop) / 2))``); torchvision is not installed here, so it is spelled out."""
    pil = Image.fromarray(image)
    w, h = pil.size
    short, long = min(w, h), max(w, h)
    size = image_size + 30
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    pil = pil.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = round((new_h - image_size) / 2.0), round((new_w - image_size) / 2.0)
    return np.asarray(pil.crop((left, top, left + image_size, top + image_size)))


def vintagify_translate(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """vintagify's ``inference_image`` after pre-processing: ``G``, ``(y + 1) / 2``, then ``save_image``'s rounding
    (``mul(255).add_(0.5).clamp_(0, 255)`` to uint8). ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` uint8."""
    with torch.no_grad():
        fake = (net(as_input(image)) + 1.0) / 2.0
    return fake[0].mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def test_the_port_has_the_originals_keys_and_shapes_and_loads_strictly(port, original, vintage_pth) -> None:
    ours, theirs = port.state_dict(), original.state_dict()
    assert list(ours) == list(theirs) and len(ours) == KEYS
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    state = torch.load(vintage_pth, map_location="cpu", weights_only=True)
    result = ResnetGenerator().load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert not port.training and not any(p.requires_grad for p in port.parameters())
    norms = [m for m in port.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 23 and all(m.affine and not m.track_running_stats for m in norms)
    ups = [m for m in port.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.output_padding for m in ups] == [(1, 1), (1, 1)]


@pytest.mark.parametrize(("name", "h", "w"), [("coffee", 128, 192), ("astronaut", 160, 160), ("rocket", 96, 144)])
def test_the_port_computes_what_the_original_computes_on_real_photos(port, original, name, h, w) -> None:
    image = np.asarray(Image.fromarray(real_photo(name, max(h, w))).resize((w, h)))
    x = as_input(image).double()
    # In float64: the same ops on the same weights then agree to ~1e-15. In float32 the CPU's convolution kernels are
    # not bitwise reproducible within a process (after other tests had run, one run in three differed by 3.9e-5).
    with torch.inference_mode():
        ours, theirs = copy.deepcopy(port).double()(x), copy.deepcopy(original).double()(x)
    assert ours.shape == theirs.shape == (1, 3, h, w)
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-6, diff
    assert ours.abs().max() <= 1.0 and ours.std() > 0.2  # tanh range, a picture rather than a constant


def test_a_batch_equals_the_images_alone(port) -> None:
    images = [real_photo(name, 96)[:64, :96] for name in ("coffee", "astronaut", "chelsea")]
    x = torch.cat([as_input(image) for image in images])
    with torch.inference_mode():
        batched = port(x)
        singles = torch.cat([port(x[i : i + 1]) for i in range(3)])
    assert batched.shape == (3, 3, 64, 96) and (batched - singles).abs().max() <= 1e-5


@pytest.mark.parametrize(("name", "image_size"), [("astronaut", 128), ("grace_hopper", 160), ("motorcycle", 192)])
def test_the_stage_gives_vintagifys_pixels_on_its_centre_crop(original, name, image_size) -> None:
    """vintagify's whole pipeline (``translate_image(..., image_size=N)``: resize, centre crop, normalise, G,
    de-normalise, save_image rounding) equals ``gan.vintage`` at strength 1 on the same crop, pixel for pixel.
    The photos are at least 500 x 500, as vintagify demands."""
    photo = load_photo(name)
    assert min(photo.shape[:2]) >= 500
    crop = vintagify_preprocess(photo, image_size)
    expected = vintagify_translate(original, crop)
    stage = VintageLook(VintageParams(strength=1.0), StageContext(backend="eager", registry=default_registry()))
    got = vintage_arrays([crop], stage.params, stage.infer_images)[0]
    assert got.shape == expected.shape == (image_size, image_size, 3)
    diff = np.abs(got.astype(np.int16) - expected)
    assert diff.max() == 0, (int(diff.max()), float((diff > 0).mean()))  # same float ops: bit-exact
    assert np.abs(got.astype(np.float32) - crop).mean() > 3.0  # and it did change the photo


def test_the_loader_refuses_a_missing_an_extra_and_a_reshaped_tensor(vintage_pth: Path, tmp_path: Path) -> None:
    state = torch.load(vintage_pth, map_location="cpu", weights_only=True)
    assert len(state) == KEYS

    missing = dict(state)
    del missing["model.14.block.6.bias"]
    with pytest.raises(ValueError, match=r"got missing \['model.14.block.6.bias'\] and unexpected \[\] keys"):
        ResnetGenerator().load_weights(missing)
    extra = {**state, "model.19.running_mean": torch.zeros(128)}
    with pytest.raises(ValueError, match=r"got missing \[\] and unexpected \['model.19.running_mean'\] keys"):
        ResnetGenerator().load_weights(extra)
    reshaped = {**state, "model.22.weight": torch.zeros(128, 64, 4, 4)}
    with pytest.raises(
        ValueError, match=r"got shape \(128, 64, 4, 4\) for model.22.weight; expected \(128, 64, 3, 3\)"
    ):
        ResnetGenerator().load_weights(reshaped)

    for name, broken in (("missing", missing), ("extra", extra), ("reshaped", reshaped)):
        path = tmp_path / f"{name}.pth"
        torch.save(broken, path)
        with pytest.raises(ValueError, match=r"got (missing|shape)"):
            load_generator(path)
    listed = tmp_path / "list.pth"
    torch.save(list(state.values()), listed)
    with pytest.raises(ValueError, match=r"got a list in .*; expected a state dict"):
        load_generator(listed)


def test_the_registry_builds_the_unit_range_wrapper(port) -> None:
    from imgx.models import get_spec, load_module

    spec = get_spec("cyclegan_vintage", default_registry())
    assert spec.licence == "MIT" and spec.stride == 4 and spec.bench_sides == (256, 512)
    module = load_module("cyclegan_vintage", registry=default_registry())
    assert isinstance(module, UnitRangeGenerator) and not module.training
    image = real_photo("coffee", 96)[:64]
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None]
    with torch.inference_mode():
        out = module(x)
        expected = (port(x * 2 - 1) + 1) / 2
    assert torch.equal(out, expected) and out.min() >= 0.0 and out.max() <= 1.0


def _backend_parity(backend: str, tmp_path: Path) -> dict[str, float | int]:
    from imgx.models import load_module
    from imgx.runtime import BackendOptions, create_backend
    from imgx.runtime.parity import compare

    module = load_module("cyclegan_vintage", registry=default_registry())
    photos = [real_photo("coffee", 96)[:64, :96], real_photo("astronaut", 96)[:64, :96]]
    x = torch.from_numpy(np.stack(photos).transpose(0, 3, 1, 2).astype(np.float32) / 255)
    with torch.inference_mode():
        reference = module(x)
    runner = create_backend(
        backend,
        module,
        BackendOptions(cache_dir=tmp_path, model_key="cyclegan-vintage-test"),
        registry=default_registry(),
    )
    runner.load()
    out = runner.infer(x)
    runner.close()
    assert out.shape == reference.shape == (2, 3, 64, 96)
    return compare(reference, out)


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_backends_match_eager_on_real_photos(backend: str, tmp_path: Path) -> None:
    result = _backend_parity(backend, tmp_path)
    assert result["nonfinite"] == 0 and result["max_abs"] <= 1e-5, result  # onnxruntime measured 5.4e-7


@pytest.mark.slow
def test_compile_matches_eager_on_real_photos(tmp_path: Path) -> None:
    """torch.compile (Inductor) builds the port (~16 s on 2 CPU cores) and gives the eager result."""
    result = _backend_parity("compile", tmp_path)
    assert result["nonfinite"] == 0 and result["max_abs"] <= 1e-5, result  # measured 1.1e-6
