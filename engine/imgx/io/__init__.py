"""Reading catalogs and images, writing outputs: paths and URIs (:mod:`imgx.io.fs`), catalog formats
(:class:`CatalogReader`, registered through ``imgx_catalog_readers``), decoding, encoding, output naming and atomic
writes. A stage that reads a picture named in its parameters (a style picture) reads it like a catalog image:
:func:`read_source` (paths, ``file://``, ``http(s)://`` with the internal-address guard, object stores) and
:func:`decode_image`; a local file with :func:`open_picture`."""

from .catalog import CatalogReader
from .decode import decode_image, open_picture
from .source import read_source

__all__ = ["CatalogReader", "decode_image", "open_picture", "read_source"]
