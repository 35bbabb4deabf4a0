"""``imgx demo-catalog``: build the demo catalog the quick start runs on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ._common import out_console


def demo_catalog_command(
    directory: Annotated[Path, typer.Argument(help="Folder to write the catalog into.", file_okay=False)],
    synthetic: Annotated[int, typer.Option(min=0, help="Synthetic product shots to add.")] = 12,
    size: Annotated[int, typer.Option(min=64, help="Long side of the real photos, in pixels.")] = 640,
) -> None:
    """Build a demo catalog from real photos shipped by scikit-image, matplotlib and scikit-learn plus synthetic
    product shots with known ground truth (needs the demo extra: pip install 'imgx\\[demo]')."""
    try:
        from ..samples import build_demo_catalog
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise typer.BadParameter(f"the demo catalog needs the demo extra: pip install 'imgx[demo]' ({exc})") from exc
    images = build_demo_catalog(directory, synthetic=synthetic, size=size)
    out_console.print(f"demo catalog: {len(images)} images in {escape(str(directory))}", soft_wrap=True)
