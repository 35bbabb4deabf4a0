"""The recipe as typed models: parsed once from YAML, unknown keys rejected, every field described.

Code past :func:`imgx.recipe.load_recipe` takes these objects, never raw dicts.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..color import parse_color  # re-exported: imgx.recipe.parse_color was its home before imgx.color

__all__ = [
    "DEFAULT_PATTERNS",
    "SOURCE",
    "EncodeSettings",
    "ExecutionSpec",
    "InputSpec",
    "OutputOverride",
    "OutputSpec",
    "Recipe",
    "StageSpec",
    "parse_color",
]

DEFAULT_PATTERNS = ("**/*.jpg", "**/*.jpeg", "**/*.png", "**/*.webp", "**/*.tif", "**/*.tiff", "**/*.bmp")
NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
SOURCE = "source"  # the decoded catalog image, as a need: quality.metrics compares an output with it
#: ``output.png_compression``: ``fast`` (fpng) or a zlib level; see :mod:`imgx.io.encode`.
PngCompression = Literal["fast"] | Annotated[int, Field(ge=0, le=9, strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputSpec(_Model):
    """Where the catalog is and how to read it."""

    path: str = Field(
        description="A folder (searched recursively) or a manifest file (.csv, .jsonl, .parquet); "
        "relative to the recipe's folder."
    )
    pattern: str | list[str] = Field(
        default=list(DEFAULT_PATTERNS),
        description="Folders only: glob(s) of files to take, relative to the folder ('**' spans folders).",
    )
    exclude: str | list[str] = Field(
        default_factory=list, description="Folders only: glob(s) of files to leave out, e.g. '_thumbs/**'."
    )
    case_sensitive: bool = Field(default=False, description="Folders only: match patterns case-sensitively.")
    alpha: bool = Field(
        default=False,
        description="The catalog's images carry a product alpha (RGBA cut-outs): stages that need alpha may run "
        "without a masking stage (segment.product) upstream. Without it, imgx validate refuses such a recipe.",
    )
    sku_column: str = Field(default="sku", description="Manifests only: the column holding the SKU.")
    image_column: str = Field(
        default="image",
        description="Manifests only: the column holding the image path or URI, relative to the manifest.",
    )
    max_pixels: int = Field(
        default=100_000_000, ge=1, description="Images with more pixels than this fail (decompression-bomb guard)."
    )
    limit: int | None = Field(default=None, ge=1, description="Take only the first N catalog items (trying a recipe).")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Manifests only: http(s) image hosts that may resolve to internal addresses (loopback, "
        "link-local such as 169.254.169.254, private ranges), as exact host names ('images.intra') or addresses "
        "and CIDR ranges ('10.2.0.0/16', '::1'). Empty: image URLs may only reach public addresses.",
    )
    max_download_bytes: int = Field(
        default=64 << 20,
        ge=1,
        description="The largest image taken from http(s) or object storage, in bytes (64 MiB by default); larger "
        "ones fail with the reason.",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            if not entry.strip() or any(c.isspace() for c in entry):
                raise ValueError(f"got {entry!r} in allowed_hosts; expected a host name, an address or a CIDR range")
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as exc:
                    raise ValueError(f"got {entry!r} in allowed_hosts; expected a CIDR range like 10.2.0.0/16") from exc
        return value

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,) if isinstance(self.pattern, str) else tuple(self.pattern)

    @property
    def excludes(self) -> tuple[str, ...]:
        return (self.exclude,) if isinstance(self.exclude, str) else tuple(self.exclude)


class OutputOverride(_Model):
    """How one written node differs from ``output``'s defaults (e.g. a transparent PNG cut-out next to JPEG main
    images). Keys left out take the defaults."""

    format: Literal["jpeg", "png", "webp"] | None = Field(default=None, description="Encoding of this output.")
    quality: int | None = Field(default=None, ge=1, le=100, description="JPEG/WebP quality of this output, 1..100.")
    png_compression: PngCompression | None = Field(
        default=None, description="PNG encoding of this output: fast (fpng) or a zlib level 0..9."
    )
    background: str | None = Field(
        default=None, description="Colour that alpha is flattened onto if this output is JPEG."
    )
    alpha: Literal["keep", "drop"] | None = Field(
        default=None, description="keep: the item's alpha is written (PNG/WebP) or flattened (JPEG); drop: ignored."
    )

    @field_validator("background")
    @classmethod
    def _check_background(cls, value: str | None) -> str | None:
        if value is not None:
            parse_color(value)
        return value


class EncodeSettings(BaseModel):
    """The effective encoding of one output: ``output``'s defaults with its override applied."""

    model_config = ConfigDict(frozen=True)
    format: Literal["jpeg", "png", "webp"]
    quality: int
    png_compression: PngCompression
    background: str
    alpha: Literal["keep", "drop"] = "keep"


class OutputSpec(_Model):
    """Where and how outputs are written."""

    dir: str = Field(default="out/", description="Output folder, relative to the recipe's folder.")
    format: Literal["jpeg", "png", "webp"] = Field(
        default="webp", description="Encoding of every output; png and webp keep alpha, jpeg flattens it."
    )
    quality: int = Field(default=90, ge=1, le=100, description="JPEG/WebP quality, 1..100.")
    png_compression: PngCompression = Field(
        default="fast",
        description="PNG encoding, the same pixels at every setting: fast (fpng, ~50x faster than zlib level 6 for "
        "files ~20% larger) or a zlib level 0..9 (6: zlib's default; 1-3 encode 3-4x faster than 6 for files ~10% "
        "larger).",
    )
    naming: str = Field(
        default="{sku}/{output}.{ext}",
        description="Output path template relative to dir; fields: {sku}, {output}, {ext}, {stem}, {sku_hash}.",
    )
    background: str = Field(default="#FFFFFF", description="Colour that alpha is flattened onto for JPEG outputs.")
    alpha: Literal["keep", "drop"] = Field(
        default="keep",
        description="keep: an item's alpha (a product mask) is written (PNG/WebP) or flattened onto background (JPEG); "
        "drop: the image is written as it is, without its alpha (a scene restyled around a masked product).",
    )
    write: bool = Field(
        default=True,
        description="false: run every stage and record each item's ledger row (status, flags, metrics) but write no "
        "image: an audit that only measures. Such rows have an empty path and are never counted done by --resume.",
    )
    overrides: dict[str, OutputOverride] = Field(
        default_factory=dict,
        description="Per written node id, encoding that differs from the defaults above, e.g. {cutout: {format: png}}.",
    )

    @field_validator("background")
    @classmethod
    def _check_background(cls, value: str) -> str:
        parse_color(value)
        return value

    def settings(self, output: str) -> EncodeSettings:
        """The encoding of output ``output``: these defaults with ``overrides[output]``'s set keys applied."""
        values = self.model_dump(include={"format", "quality", "png_compression", "background", "alpha"})
        from ..io.naming import split_output

        override = self.overrides.get(split_output(output)[0])  # a variant's output: its node's override
        if override is not None:
            values.update(override.model_dump(exclude_none=True))
        return EncodeSettings(**values)

    @field_validator("naming")
    @classmethod
    def _check_naming(cls, value: str) -> str:
        from ..io.naming import validate_template

        validate_template(value, n_outputs=1)
        return value


class ExecutionSpec(_Model):
    """How the run is executed. None of these change the output bytes, so none are part of the recipe hash.

    Besides the keys below, ``execution.<executor>`` holds an executor's own options (``execution.ray``): the
    executor declares them (``Executor.Options``) and the plan validates them against the registry, so a plugin
    executor brings its own section.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    executor: str = Field(default="local", description="Executor name: 'local' (in-process + process pool) or 'ray'.")
    workers: int | Literal["auto"] = Field(
        default="auto", description="Worker processes for CPU parallelism; 'auto' uses every core."
    )
    batch_size: int = Field(default=8, ge=1, le=4096, description="Items per batch handed to a worker and to stages.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where GPU-capable stages run.")
    backend: str = Field(
        default="auto",
        description="Inference backend of model stages: 'auto' (fastest installed and correct here), 'eager' "
        "(PyTorch, the reference), 'compile' (torch.compile), 'onnxruntime' or 'tensorrt'.",
    )
    precision: Literal["fp32", "fp16", "bf16", "auto"] = Field(
        default="fp32",
        description="Numeric precision of model stages; fp16/bf16 need a backend and device that run it. 'auto': per "
        "model, bf16 on a CPU with AMX BF16 (amx_bf16) where the model's measured BF16 difference is "
        "within its declared tolerance, else fp32 (imgx plan says which and why). Not the default: the same recipe "
        "would then give slightly different pixels on machines with and without BF16.",
    )
    max_failures: float | int | str = Field(
        default=0.05,
        description="Failure budget: a fraction of items (0.05 or '5%') or a count (10). "
        "More failed items than this makes the run exit with code 1.",
    )
    overlap: Literal["auto"] | bool = Field(
        default="auto",
        description="Overlap inside a worker: the next item is read and decoded and the last one encoded and written "
        "on two helper threads while the stages run on the current one (the heavy calls release the GIL). 'auto': on "
        "where a worker has more than one core of its own (workers fewer than cores) or runs its models on a GPU, "
        "off where every core already has a worker. Holds one more item's images per worker; an item of 4 MP or more "
        "runs without it (a 4000 px photo's images are never held twice).",
    )
    start_method: Literal["fork", "spawn", "forkserver"] | None = Field(
        default=None,
        description="multiprocessing start method of workers; default fork for CPU-only plans, forkserver for "
        "plans with a model stage (CUDA and OpenMP state must not be forked).",
    )

    def executor_sections(self) -> dict[str, Any]:
        """The ``execution.<executor>`` sections as written (raw values; the plan validates them)."""
        return dict(self.model_extra or {})

    @field_validator("workers")
    @classmethod
    def _check_workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"got workers={value}; expected an integer >= 1 or 'auto'")
        return value

    @field_validator("max_failures")
    @classmethod
    def _check_max_failures(cls, value: float | int | str) -> float | int:
        return parse_failure_budget(value)


def parse_failure_budget(value: float | int | str) -> float | int:
    """``0.05`` / ``"5%"`` -> fraction 0.05; ``10`` -> count 10. Fractions are < 1; counts are whole numbers >= 0."""
    original = value
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(
                f"got max_failures={original!r}; expected a fraction (0.05), a percentage ('5%') or a count"
            ) from None
        if text.endswith("%") and value >= 1:
            raise ValueError(
                f"got max_failures={original!r}; a percentage must be below 100% (e.g. '5%'); "
                "for a number of items write a count (150)"
            )
        if not text.endswith("%") and value >= 1:
            value = int(value) if value == int(value) else value
    if isinstance(value, bool) or value < 0:
        raise ValueError(f"got max_failures={original!r}; expected a fraction in [0, 1), a percentage or a count >= 0")
    if isinstance(value, float) and value >= 1:
        if value != int(value):
            raise ValueError(f"got max_failures={original!r}; a count must be a whole number")
        return int(value)
    if isinstance(value, int):
        return value
    return float(value)


class StageSpec(_Model):
    """One node of the DAG."""

    id: str = Field(description="Node id, unique in the recipe; used by needs: and outputs:.")
    uses: str = Field(description="Registered stage name (see `imgx stages`).")
    needs: list[str] = Field(
        default_factory=list,
        description="Upstream node ids ('source' is the decoded catalog image); empty means the catalog image.",
    )
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="The stage's parameters.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not NODE_ID.match(value):
            raise ValueError(f"got id {value!r}; expected letters, digits, '_' or '-', starting with a letter or '_'")
        return value

    @field_validator("needs", mode="before")
    @classmethod
    def _one_need(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Recipe(_Model):
    """A whole recipe: the catalog, the DAG of stages, which nodes are written, and how to run it."""

    version: Literal[1] = Field(description="Recipe format version; 1.")
    name: str = Field(description="A name for the run, shown in progress and the ledger.")
    description: str = Field(default="", description="Free text.")
    input: InputSpec = Field(description="The catalog.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="Where and how outputs are written.")
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec, description="How the run is executed.")
    stages: list[StageSpec] = Field(min_length=1, description="The DAG's nodes.")
    variants: list[dict[str, Any]] | str | None = Field(
        default=None,
        description="Audience variants: a table (a list of rows, or a CSV/Parquet/JSONL file relative to the recipe) "
        "whose rows have an id and fields; stage parameters refer to them as ${variant.NAME}, and those nodes (and "
        "what needs them) run once per row.",
    )
    outputs: list[str] | None = Field(
        default=None, description="Node ids whose images are written; default: every node nothing else needs."
    )

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-field problems as ``(key path, message)``: duplicate ids, unknown ``needs``, outputs naming no node,
        a naming template that would collide. The loader turns each into a located :class:`RecipeError`."""
        from ..io.naming import validate_template

        found: list[tuple[tuple[str | int, ...], str]] = []
        seen: dict[str, int] = {}
        for index, stage in enumerate(self.stages):
            if stage.id in seen:
                found.append(
                    (("stages", index, "id"), f"duplicate id {stage.id!r}; the first is stages[{seen[stage.id]}]")
                )
            seen.setdefault(stage.id, index)
        for index, stage in enumerate(self.stages):
            if stage.id == SOURCE:
                found.append((("stages", index, "id"), f"{SOURCE!r} names the decoded catalog image; pick another id"))
            for k, need in enumerate(stage.needs):
                if need not in seen and need != SOURCE:
                    close = difflib.get_close_matches(need, list(seen), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    found.append(
                        (
                            ("stages", index, "needs", k),
                            f"needs unknown node {need!r}.{hint} Known nodes: {', '.join(seen)} (and {SOURCE}, "
                            "the decoded catalog image)",
                        )
                    )
        for k, out in enumerate(self.outputs or ()):
            if out not in seen:
                found.append((("outputs", k), f"{out!r} names no node; known nodes: {', '.join(seen)}"))
            elif (self.outputs or []).index(out) != k:
                found.append((("outputs", k), f"{out!r} is listed twice"))
        for key in self.output.overrides:
            if key not in self.output_ids:
                written = ", ".join(self.output_ids)
                found.append((("output", "overrides", key), f"{key!r} is not a written node; written: {written}"))
        try:
            validate_template(self.output.naming, n_outputs=len(self.output_ids))
        except ValueError as exc:
            found.append((("output", "naming"), str(exc)))
        return found

    @property
    def output_ids(self) -> tuple[str, ...]:
        """The nodes that are written: ``outputs`` or every node that no other node needs."""
        if self.outputs:
            return tuple(self.outputs)
        needed = {n for s in self.stages for n in s.needs}
        return tuple(s.id for s in self.stages if s.id not in needed)
