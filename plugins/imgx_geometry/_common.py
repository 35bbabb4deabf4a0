"""The pixel-size type shared by the geometry stages' parameters (private); checks, colours and resizing come from
the imgx toolkit (:mod:`imgx.arrays`, :mod:`imgx.color`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["Dimension"]

Dimension = Annotated[int, Field(ge=1, le=32768)]
