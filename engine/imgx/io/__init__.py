"""Reading catalogs and images, writing outputs: paths and URIs (:mod:`imgx.io.fs`), catalog formats
(:class:`CatalogReader`, registered through ``imgx_catalog_readers``), decoding, encoding, output naming and atomic
writes."""

from .catalog import CatalogReader

__all__ = ["CatalogReader"]
