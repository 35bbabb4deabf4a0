"""Alpha matting of a mask's edge band (imgx_segment.matting) on real composites: a hard mask of a feathered or
fur-fringed object comes back closer to the true matte; the closed-form solve (SciPy) is pymatting's
``estimate_alpha_cf`` (the real package, in the dev install) to solver precision, and ``knn`` runs pymatting."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from pydantic import ValidationError

from imgx_segment import SegmentProductParams
from imgx_segment.matting import check_available, closed_form_alpha, matte, trimap
from segment_eval import alpha_error, build_quality_set, edge_band

HAVE_PYMATTING = importlib.util.find_spec("pymatting") is not None
needs_pymatting = pytest.mark.skipif(not HAVE_PYMATTING, reason="pymatting is not installed (optional)")


@pytest.fixture(scope="module")
def soft_items():
    """The feathered horse and the fur-fringed ball of the quality set (real photo textures, exact true mattes)."""
    items = build_quality_set(seed=0, per_category=2)
    return [item for item in items if item.category == "soft"]


def test_the_trimap_has_a_band_of_the_asked_width() -> None:
    mask = np.zeros((60, 80), np.float32)
    mask[20:40, 20:60] = 1.0
    tri = trimap(mask, 3)
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    assert tri[30, 40] == 1.0 and tri[2, 2] == 0.0
    row = tri[30]  # across the left edge at x = 20: unknown from 17 to 22
    assert (row[17:23] == 0.5).all() and row[16] == 0.0 and row[23] == 1.0
    soft = mask.copy()
    soft[5:8, 5:8] = 0.5  # a soft blob far from the edge is unknown too
    assert (trimap(soft, 1)[5:8, 5:8] == 0.5).all()
    with pytest.raises(ValueError, match=r"expected \(H, W\)"):
        trimap(np.zeros((4, 4, 1), np.float32), 2)


def test_no_matting_and_no_edge_return_the_mask() -> None:
    image = np.zeros((30, 30, 3), np.uint8)
    mask = np.zeros((30, 30), np.float32)
    assert matte(image, mask, "none") is mask
    assert matte(image, mask, "closed_form") is mask  # nothing sure to anchor: unchanged
    full = np.ones((30, 30), np.float32)
    assert np.array_equal(matte(image, full, "closed_form"), full)
    if HAVE_PYMATTING:
        assert np.array_equal(matte(image, full, "knn"), full)


@pytest.mark.parametrize("mode", ["closed_form", pytest.param("knn", marks=needs_pymatting)])
def test_matting_brings_a_hard_mask_closer_to_the_true_soft_matte(soft_items, mode: str) -> None:
    for item in soft_items:
        hard = (item.alpha >= 128).astype(np.float32)
        out = matte(item.image, hard, mode, band=6)
        assert out.shape == hard.shape and out.dtype == np.float32 and 0.0 <= out.min() <= out.max() <= 1.0
        band = edge_band(item.alpha)
        before = alpha_error((hard * 255).astype(np.uint8), item.alpha, band)
        after = alpha_error((out * 255 + 0.5).astype(np.uint8), item.alpha, band)
        assert after < 0.8 * before, (item.name, before, after)
        tri = trimap(hard, 6)
        assert np.array_equal(out[tri != 0.5], hard[tri != 0.5])  # sure pixels keep the mask's values
        assert np.array_equal(hard, (item.alpha >= 128).astype(np.float32))  # the input is left as it was
        given = hard.copy()
        assert matte(item.image, given, mode, band=6, inplace=True) is given  # or written into, when given up
        assert np.array_equal(given, out)


def test_a_large_image_is_solved_on_a_bounded_crop(soft_items) -> None:
    """A 3x upscaled composite: the solver runs on a crop scaled to 192 px, the result has the image's size."""
    import cv2

    item = soft_items[0]
    h, w = item.alpha.shape
    image = cv2.resize(item.image, (3 * w, 3 * h), interpolation=cv2.INTER_CUBIC)
    truth = cv2.resize(item.alpha, (3 * w, 3 * h), interpolation=cv2.INTER_LINEAR)
    hard = (truth >= 128).astype(np.float32)
    out = matte(image, hard, "closed_form", band=12)
    assert out.shape == hard.shape
    band = edge_band(truth)
    assert alpha_error((out * 255).astype(np.uint8), truth, band) < alpha_error(
        (hard * 255).astype(np.uint8), truth, band
    )


@needs_pymatting
def test_closed_form_is_pymattings_solve(soft_items) -> None:
    """The same trimaps through pymatting's estimate_alpha_cf (numba, preconditioned CG) and closed_form_alpha
    (SciPy, direct): the same alpha to solver precision, on real composites of every category at the solver's crop
    size, the sure pixels untouched."""
    import cv2
    import pymatting

    items = build_quality_set(seed=1, per_category=1)
    assert {item.category for item in items} == {"studio", "busy", "white", "glass", "thin", "soft"}
    for item in items:
        tri = trimap((item.shape >= 128).astype(np.float32), 2)  # a glass's silhouette, not its see-through alpha
        h, w = tri.shape
        size = (w * 3 // 4, h * 3 // 4)
        image = cv2.resize(item.image, size, interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
        tri = cv2.resize(tri, size, interpolation=cv2.INTER_NEAREST)
        assert (tri == 0.5).sum() > 300, item.name  # a real band to solve
        ours = closed_form_alpha(image, tri)
        theirs = np.clip(pymatting.estimate_alpha_cf(image, tri), 0.0, 1.0)
        assert np.abs(ours - theirs).max() < 1e-3, item.name
        assert np.abs(ours - theirs).mean() < 1e-5, item.name
        known = tri != 0.5
        assert np.array_equal(ours[known], tri[known])


def test_an_unknown_region_out_of_reach_of_sure_pixels_stays_undecided() -> None:
    """A band with no sure pixel next to it has nothing to follow: the solve stays finite and leaves it at 0.5; a
    band between sure product and sure background takes the photo's edge (left half dark product, right light)."""
    image = np.zeros((20, 30, 3))
    image[:, 15:] = 1.0
    tri = np.zeros((20, 30))
    tri[:, :10] = 1.0
    tri[:, 10:20] = 0.5  # between the sure product (x < 10) and background (x >= 20): the edge at x = 15
    tri[8:12, 24:28] = 0.5  # an island inside sure background, one pixel from sure pixels: it follows them
    alpha = closed_form_alpha(image, tri)
    assert np.isfinite(alpha).all()
    assert (alpha[:, 10:15] > 0.99).all() and (alpha[:, 15:20] < 0.01).all()
    assert (alpha[8:12, 24:28] < 0.01).all()
    lone = np.full((10, 10), 0.5)
    lone[0, 0] = 1.0
    lone[9, 9] = 0.0
    assert np.isfinite(closed_form_alpha(np.random.default_rng(0).random((10, 10, 3)), lone)).all()
    nothing_sure = np.full((10, 10), 0.5)  # every pixel unknown: no sure pixel reaches any of them
    settled = closed_form_alpha(np.random.default_rng(0).random((10, 10, 3)), nothing_sure)
    assert np.allclose(settled, 0.5, atol=1e-6)


def test_knn_without_pymatting_is_refused_when_the_parameters_are_read() -> None:
    """Holds either way this environment is: installed, the parameters validate; missing, knn fails naming the
    install command (pymatting is optional), closed_form needs no package."""
    check_available("none")
    check_available("closed_form")
    assert SegmentProductParams(matting="closed_form").matting == "closed_form"
    if HAVE_PYMATTING:
        assert SegmentProductParams(matting="knn").matting == "knn"
    else:
        with pytest.raises(ValidationError, match="pip install 'pymatting"):
            SegmentProductParams(matting="knn")
        with pytest.raises(RuntimeError, match="matting: knn needs the pymatting package"):
            check_available("knn")
    with pytest.raises(ValidationError):
        SegmentProductParams(matting="bayesian")
    with pytest.raises(ValidationError):
        SegmentProductParams(matting_band=0)
