"""Synthetic product shots and their textures: the public pieces the catalogs and the segmentation benchmark use."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import imgx
import imgx.samples
from imgx.samples import REAL_CUTOUTS, SHAPES, Shot, load_textures, render_product_shot
from imgx.samples.products import composite_cutout


def test_the_public_names_resolve_and_the_old_modules_are_gone() -> None:
    for name in imgx.samples.__all__:
        assert getattr(imgx.samples, name) is not None, name
    package = pathlib.Path(imgx.__file__).parent  # files, not imports: an editable install elsewhere may map them
    assert not (package / "demo.py").exists() and not (package / "testing.py").exists()


def test_textures_are_cached_read_only_and_sized() -> None:
    textures = load_textures(64)
    assert load_textures(64) is textures
    assert textures.materials and textures.labels
    assert len(textures.names) == len(textures.materials) + len(textures.labels)
    for material in textures.materials:
        assert material.shape == (64, 64) and material.dtype == np.float32
        assert abs(float(material.mean())) < 1e-3 and float(material.std()) == pytest.approx(1.0, abs=1e-3)
    for label in textures.labels:
        assert label.shape == (64, 64, 3) and label.min() >= 0.0 and label.max() <= 1.0
    with pytest.raises(ValueError, match="read-only"):
        textures.materials[0][0, 0] = 0.0


@pytest.mark.parametrize("variant", range(len(SHAPES)))
def test_a_shot_is_deterministic_and_its_mask_is_inside_its_bbox(variant: int) -> None:
    textures = load_textures(64)
    shot = render_product_shot(120, 96, np.random.default_rng(variant), textures, variant=variant)
    again = render_product_shot(120, 96, np.random.default_rng(variant), textures, variant=variant)
    assert isinstance(shot, Shot) and np.array_equal(shot.image, again.image) and shot.truth == again.truth
    assert shot.image.shape == (96, 120, 3) and shot.image.dtype == np.uint8
    assert shot.mask is not None and shot.mask.shape == (96, 120) and shot.mask.dtype == np.uint8
    assert shot.truth["shape"] == SHAPES[variant]
    x0, y0, x1, y1 = shot.truth["bbox"]
    assert shot.mask[y0:y1, x0:x1].sum() == shot.mask.sum() > 0


def test_a_real_cutout_composite_keeps_its_alpha_as_the_mask() -> None:
    rgba = REAL_CUTOUTS["present"]()
    shot = composite_cutout(rgba, 200)
    assert shot.image.shape == (200, 160, 3) and shot.mask is not None and shot.mask.shape == (200, 160)
    x0, y0, x1, y1 = shot.truth["bbox"]
    assert max(x1 - x0, y1 - y0) == 110  # the cut-out's long side is 55 % of the canvas's
    assert shot.mask.max() == 255 and len(np.unique(shot.mask)) > 2  # a real, soft matte
