"""The stage contract: what a plugin implements to add a step to recipes.

A stage is a small class. Its parameters are a pydantic model (unknown keys rejected, every field described); its
state (a model, a lookup table) is built once per worker in ``__init__``; ``__call__(batch)`` maps a batch of
:class:`~imgx.item.Item` to a batch of the same length and order. The work itself should be a plain function that the
class calls, so it can be tested and reused alone.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo

from .item import Item

__all__ = ["Stage", "StageContext", "StageParams", "recipe_path", "type_name"]


def type_name(annotation: Any) -> str:
    """A parameter type as a user reads it: ``int | list[int]``, ``'fit' | 'cover'``, ``float | None``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if inner else getattr(origin, "__name__", "?")
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


class StageParams(BaseModel):
    """Base class of every stage's parameters: unknown keys are rejected and values are immutable.

    The plan validates ``with:`` with the validation context ``{"base_dir": <the recipe's folder>}``, so a file path
    parameter resolves against the recipe like ``input.path`` does: call :func:`recipe_path` in a field validator.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def recipe_path(value: str, info: ValidationInfo) -> Path:
    """A file path parameter resolved as a recipe user means it: ``~`` expanded, and a relative path taken against the
    recipe's folder (the validation context's ``base_dir``), or the working directory when params are validated
    outside a recipe (``Params.model_validate(values)`` in a test or a script).

    Use it in a ``field_validator(..., mode="after")`` that takes ``info`` and stores ``str(path)``, so the stage,
    pickled to a worker, holds an absolute path.
    """
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute():
        path = Path(base) / path if base is not None else Path.cwd() / path
    return path


@dataclasses.dataclass(frozen=True)
class StageContext:
    """What the executor tells a stage when it is built in a worker.

    :param device: ``"cpu"`` or ``"cuda"`` (already resolved from the recipe's ``auto``).
    :param batch_size: the largest batch ``__call__`` will receive.
    :param cache_dir: a folder for models, engines and other cached state.
    :param worker_id: a stable name of the worker process, for logs.
    :param backend: inference backend for model stages (``"auto"``, ``"eager"``, ``"compile"``, ...).
    :param precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` for model stages.
    :param threads: CPU threads this worker may use for inference (its share of the cores); ``None``: all of them.
    """

    device: str = "cpu"
    batch_size: int = 1
    cache_dir: str | None = None
    worker_id: str = "main"
    backend: str = "auto"
    precision: str = "fp32"
    threads: int | None = None


class Stage:
    """Base class of every stage.

    Subclasses set the class attributes and either override :meth:`process` (one item at a time) or
    ``__call__`` (a whole batch, for stages that gain from batching, e.g. models).

    Class attributes:

    - ``name``: the registered name used in recipes, ``"group.verb"`` (e.g. ``"color.enhance"``).
    - ``Params``: the :class:`StageParams` subclass that validates ``with:``.
    - ``summary``: one line for ``imgx stages``.
    - ``device``: ``"cpu"`` or ``"gpu"``: where the executor should place the stage.
    - ``batchable``: whether ``__call__`` gains from receiving many items at once.
    - ``inputs``: how many upstream nodes the stage reads (``needs:``); 1 for nearly all stages.
    - ``needs_alpha``: the stage works on a product mask (``Item.alpha``, e.g. from ``segment.product``) and fails an
      item without one, alone, with a :class:`~imgx.errors.StageError` that says so.
    - ``example``: parameters for a typical use (``imgx stages`` shows them; the registry smoke test runs every
      stage with them). Stages whose parameters all have defaults may leave it empty.
    - ``version``: bump it when the stage's output changes for the same parameters, so ``--resume`` redoes work
      done by the older code.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[StageParams]] = StageParams
    summary: ClassVar[str] = ""
    device: ClassVar[Literal["cpu", "gpu"]] = "cpu"
    batchable: ClassVar[bool] = False
    inputs: ClassVar[int] = 1
    needs_alpha: ClassVar[bool] = False
    example: ClassVar[dict[str, Any]] = {}
    version: ClassVar[str] = "1"

    def __init__(self, params: StageParams | None = None, context: StageContext | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.context = context if context is not None else StageContext()

    def __call__(self, batch: Sequence[Item], *more: Sequence[Item]) -> list[Item]:
        """Process a batch: ``batch[i]`` (and ``more[k][i]`` for multi-input stages) become ``result[i]``."""
        if more:
            return [self.process(item, *others) for item, *others in zip(batch, *more, strict=True)]
        return [self.process(item) for item in batch]

    def process(self, item: Item, *others: Item) -> Item:
        """Process one item. Override this or ``__call__``."""
        raise NotImplementedError(f"stage {self.name!r} implements neither process() nor __call__()")

    def close(self) -> None:
        """Release resources held by the stage (models, sessions). Called once when the worker ends."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, summary, placement and parameters (name, type, default, description) for ``imgx stages``."""
        params = []
        for field_name, field in cls.Params.model_fields.items():
            params.append(
                {
                    "name": field_name,
                    "type": type_name(field.annotation),
                    "required": field.is_required(),
                    "default": None if field.is_required() else field.get_default(call_default_factory=True),
                    "description": field.description or "",
                }
            )
        return {
            "name": cls.name,
            "summary": cls.summary,
            "device": cls.device,
            "batchable": cls.batchable,
            "inputs": cls.inputs,
            "needs_alpha": cls.needs_alpha,
            "version": cls.version,
            "example": dict(cls.example),
            "params": params,
        }
