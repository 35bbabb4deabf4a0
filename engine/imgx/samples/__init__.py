"""Sample catalogs and bad input: what the README's demo, the benchmarks and the tests run on.

- :func:`build_demo_catalog` and :func:`build_synthetic_catalog` (:mod:`.catalog`) write catalogs of real photos
  shipped with scikit-image, matplotlib and scikit-learn (:mod:`.photos`) plus synthetic product shots with known
  ground truth: mask, colour cast, exposure (:mod:`.products`, textured with :func:`load_textures`).
- :func:`write_bad_input_zoo` (:mod:`.zoo`) writes one small file per kind of bad or odd input a real catalog holds,
  with what decoding each must give (:class:`ZooCase`).

scikit-image is a dependency of imgx; matplotlib and scikit-learn are the ``demo`` extra (``pip install
'imgx[demo]'``). A missing package is skipped by the catalog builders (procedural textures stand in).
"""

from __future__ import annotations

from .catalog import CatalogImage, build_demo_catalog, build_synthetic_catalog
from .photos import LABEL_PHOTOS, MATERIAL_TEXTURES, REAL_CUTOUTS, REAL_PHOTOS
from .products import SHAPES, Shot, render_product_shot
from .textures import Textures, load_textures
from .zoo import ZooCase, write_bad_input_zoo, zoo_photo

__all__ = [
    "LABEL_PHOTOS",
    "MATERIAL_TEXTURES",
    "REAL_CUTOUTS",
    "REAL_PHOTOS",
    "SHAPES",
    "CatalogImage",
    "Shot",
    "Textures",
    "ZooCase",
    "build_demo_catalog",
    "build_synthetic_catalog",
    "load_textures",
    "render_product_shot",
    "write_bad_input_zoo",
    "zoo_photo",
]
