"""``segment.product`` on real photos through the real registry, weights and backends; odd and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from _support import default_registry, frozen, real_photo
from imgx import Item, StageContext
from imgx_segment import SegmentProduct, SegmentProductParams
from segment_eval import iou


def make(backend: str = "onnxruntime", batch_size: int = 8, **params) -> SegmentProduct:
    return SegmentProduct(
        SegmentProductParams(**params),
        StageContext(backend=backend, batch_size=batch_size, registry=default_registry()),
    )


@pytest.fixture(scope="module")
def stage() -> SegmentProduct:
    return make()


def run(stage: SegmentProduct, *images: np.ndarray, alpha: np.ndarray | None = None) -> list[Item]:
    items = [Item(f"sku-{i}", "memory", frozen(image), alpha) for i, image in enumerate(images)]
    out = stage(items)
    for before, after in zip(items, out, strict=True):
        assert after.image is before.image  # the image is unchanged
        assert after.alpha is not None and after.alpha.dtype == np.uint8 and after.alpha.shape == before.image.shape[:2]
    return out


def box_of(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha >= 128)
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


def test_the_coffee_cup_and_saucer_are_the_product(stage, photos) -> None:
    """Hand-checked on the 400 x 600 photo: cup and saucer lie in x 70..485, y 10..395; the dark corner top left, the
    wooden table right and bottom left are background."""
    alpha = run(stage, photos["coffee"])[0].alpha
    y0, y1, x0, x1 = box_of(alpha)
    assert y0 >= 10 and y1 <= 395 and x0 >= 70 and x1 <= 485
    assert y1 - y0 > 330 and x1 - x0 > 360  # the whole saucer, not only the cup
    assert alpha[60:300, 180:400].mean() > 245  # cup body and coffee
    assert alpha[330:370, 150:400].mean() > 220  # the front of the saucer
    assert alpha[0:60, 0:150].max() < 16 and alpha[:, 520:].max() < 16 and alpha[300:, 0:60].max() < 16


def test_the_rocket_is_the_product_not_the_towers(stage, photos) -> None:
    """Hand-checked on the 427 x 640 photo: the rocket stands in x 300..340 from y 125 down to the pad at y 410; the
    four lattice towers (x < 250, x > 400) and the sky are background."""
    alpha = run(stage, photos["rocket"])[0].alpha
    y0, y1, x0, x1 = box_of(alpha)
    assert 120 <= y0 <= 140 and 390 <= y1 <= 410 and x0 >= 300 and x1 <= 340
    assert alpha[180:380, 312:328].mean() > 220
    assert alpha[:, :250].max() < 32 and alpha[:, 400:].max() < 32 and alpha[:100].max() < 16
    assert (alpha >= 128).mean() < 0.04


def test_mixed_sizes_run_as_one_network_shape(photos) -> None:
    stage = make("onnxruntime")
    images = [photos["coffee"], photos["astronaut"], real_photo("rocket", 97), real_photo("chelsea", 333)]
    out = run(stage, *images)
    assert dict(stage.shapes_seen) == {(1, 3, 320, 320): 4}  # one shape; on the CPU one 320 px input per call
    assert [o.alpha.shape for o in out] == [i.shape[:2] for i in images]


def test_backends_give_the_same_masks(photos) -> None:
    images = [photos["coffee"], photos["astronaut"]]
    eager = [o.alpha for o in run(make("eager"), *images)]
    ort = [o.alpha for o in run(make("onnxruntime"), *images)]
    for a, b in zip(eager, ort, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.slow
def test_the_compile_backend_gives_the_same_masks(photos) -> None:
    image = photos["astronaut"]
    eager = run(make("eager"), image)[0].alpha
    compiled = run(make("compile"), image)[0].alpha
    assert np.abs(eager.astype(int) - compiled).max() <= 1


def test_options_threshold_and_existing_alpha(stage, photos) -> None:
    image = photos["coffee"]
    soft = run(stage, image)[0].alpha
    hard = run(make(threshold=0.5), image)[0].alpha
    assert set(np.unique(hard)) == {0, 255} and len(np.unique(soft)) > 50
    assert iou(hard, soft) > 0.99

    given = np.zeros(image.shape[:2], np.uint8)
    given[:, : image.shape[1] // 2] = 255  # an existing rough matte: the left half
    replaced = run(stage, image, alpha=given)[0].alpha
    assert np.array_equal(replaced, soft)
    kept = make(existing_alpha="keep")
    assert run(kept, image, alpha=given)[0].alpha is not None
    assert np.array_equal(run(kept, image, alpha=given)[0].alpha, given) and not kept.shapes_seen  # no inference
    assert np.array_equal(run(kept, image)[0].alpha, soft)  # no alpha yet: segmented
    both = run(make(existing_alpha="intersect"), image, alpha=given)[0].alpha
    assert np.array_equal(both, np.minimum(soft, given))


def test_clean_up_options_keep_the_product(stage, photos) -> None:
    image = photos["coffee"]
    soft = run(stage, image)[0].alpha
    cleaned = run(make(largest_only=True, fill_holes=True, refine_radius=2), image)[0].alpha
    assert iou(cleaned, soft) > 0.97
    assert cleaned[60:300, 180:400].mean() > 245 and cleaned[0:60, 0:150].max() < 16


def test_flat_images_give_an_empty_mask_not_amplified_noise(stage) -> None:
    """A flat image has no product; min-max normalising its near-constant output would invent one."""
    flat = [np.full((40, 60, 3), value, np.uint8) for value in (0, 128, 255)]
    flat.append(np.full((30, 20, 3), (200, 30, 60), np.uint8))
    for item in run(stage, *flat):
        assert item.alpha.max() == 0


def test_tiny_noisy_grey_and_huge_images_get_sensible_masks(stage, photos) -> None:
    rng = np.random.default_rng(0)
    tiny = [np.full((1, 1, 3), 90, np.uint8), rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)]
    noise = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    gray = np.repeat(photos["coffee"].mean(axis=2).astype(np.uint8)[:, :, None], 3, axis=2)
    out = run(stage, *tiny, noise, gray)
    assert out[0].alpha.shape == (1, 1) and out[0].alpha.max() == 0  # one pixel is flat
    assert out[1].alpha.shape == (3, 5)
    assert (out[2].alpha >= 128).mean() < 0.5  # noise: little or nothing (here: peak saliency under min_confidence)
    colour = run(stage, photos["coffee"])[0].alpha
    assert iou(out[3].alpha, colour) > 0.9  # the grey copy finds the same cup

    huge = np.zeros((3000, 4000, 3), np.uint8)
    huge[...] = 240
    huge[900:2100, 1400:2600] = (30, 60, 200)  # a blue box on a white backdrop
    alpha = run(stage, huge)[0].alpha
    assert alpha.shape == (3000, 4000)
    inside, outside = alpha[1000:2000, 1500:2500], np.concatenate([alpha[:700].ravel(), alpha[2300:].ravel()])
    assert inside.mean() > 240 and outside.max() < 16


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        SegmentProductParams(threshold=1.5)
    with pytest.raises(ValueError, match="existing_alpha"):
        SegmentProductParams(existing_alpha="merge")
    with pytest.raises(ValueError, match="extra"):
        SegmentProductParams(radius=3)
    assert SegmentProduct.input_size(SegmentProductParams(), 1000, 333) == (320, 320)


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_gives_the_eager_masks(precision, photos) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    pytest.importorskip("tensorrt", reason="needs TensorRT: pip install 'imgx[tensorrt]'")
    images = [photos["coffee"], photos["rocket"]]
    eager = [o.alpha for o in run(make("eager"), *images)]
    context = StageContext(
        device="cuda", backend="tensorrt", precision=precision, batch_size=2, registry=default_registry()
    )
    trt = SegmentProduct(SegmentProductParams(), context)
    assert trt.choice.name == "tensorrt"
    for a, b in zip(eager, [o.alpha for o in run(trt, *images)], strict=True):
        diff = np.abs(a.astype(int) - b)
        assert diff.max() <= (2 if precision == "fp32" else 64) and diff.mean() <= (0.5 if precision == "fp32" else 2.0)


def test_a_bf16_run_keeps_the_mask_network_at_fp32_and_says_so(photos) -> None:
    with pytest.warns(RuntimeWarning, match="u2netp runs fp32: bf16 is not accurate enough"):
        stage = SegmentProduct(
            SegmentProductParams(),
            StageContext(batch_size=2, backend="eager", precision="bf16", registry=default_registry()),
        )
    assert stage.backend.options.precision == "fp32"
    reference = make(backend="eager")
    image = photos["coffee"]
    assert np.array_equal(run(stage, image)[0].alpha, run(reference, image)[0].alpha)


def test_matting_is_on_by_default_and_the_stage_version_says_so() -> None:
    """Closed-form matting of a 3 px band is the default since version 2: the default's fingerprint leaves the
    matting fields out (like every added_later field), so the version is what keeps version-1 outputs (no matting)
    from being taken for new ones; a recipe asking for rembg's plain mask says matting: none and hashes it."""
    assert SegmentProduct.version == "2"
    params = SegmentProductParams()
    assert (params.matting, params.matting_band) == ("closed_form", 3)
    base = params.fingerprint()
    assert "matting" not in base and "matting_band" not in base
    plain = SegmentProductParams(matting="none").fingerprint()
    assert plain["matting"] == "none"
    assert {k: v for k, v in plain.items() if k != "matting"} == base
    wider = SegmentProductParams(matting_band=6).fingerprint()
    assert wider["matting_band"] == 6 and "matting" not in wider


def test_matting_follows_soft_edges_the_network_misses() -> None:
    """Feathered and fur-fringed objects of the quality set through the real network: closed-form matting brings the
    mask's edge band closer to the true matte and the product's IoU up (measured: band error 0.24 -> 0.06, IoU
    0.63 -> 0.92 on the feathered horse), and the image stays unchanged."""
    from segment_eval import alpha_error, build_quality_set, edge_band

    soft = [item for item in build_quality_set(seed=0, per_category=2) if item.category == "soft"]
    plain = run(make(matting="none"), *[item.image for item in soft])
    matted = run(make(matting="closed_form", matting_band=6), *[item.image for item in soft])
    for item, p, m in zip(soft, plain, matted, strict=True):
        band = edge_band(item.alpha)
        assert alpha_error(m.alpha, item.alpha, band) < alpha_error(p.alpha, item.alpha, band), item.name
        assert iou(m.alpha, item.shape) >= iou(p.alpha, item.shape) - 0.01, item.name
