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

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from .arrays import Scope
from .item import Item
from .registry import Registry

__all__ = ["ScopedParams", "Stage", "StageContext", "StageParams", "recipe_path", "type_name"]


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

    #: Parameters added after ledgers were written with this stage: while one is at its default it is left out of the
    #: output hash (:meth:`fingerprint`), so adding it does not make every catalog's next ``--resume`` redo the outputs
    #: it cannot have changed. A value other than the default is hashed like any parameter.
    added_later: ClassVar[frozenset[str]] = frozenset()

    def wants_alpha(self) -> bool:
        """Whether these parameters make the stage fail every item without alpha (:meth:`Stage.alpha_needed` asks)."""
        return False

    def fingerprint(self) -> dict[str, Any]:
        """The parameters as the output hash sees them: every value, less an :attr:`added_later` one at its default."""
        dumped = self.model_dump(mode="json")
        for name in self.added_later:
            field = type(self).model_fields[name]
            if name in dumped and getattr(self, name) == field.get_default(call_default_factory=True):
                del dumped[name]
        return dumped


class ScopedParams(StageParams):
    """Parameters of a stage that changes an image's look (a restyle, a vintage look) and can keep to the scene or to
    the product: subclass it and apply :func:`imgx.arrays.apply_scope` to the result. ``scope`` other than ``all``
    needs the item's alpha (``segment.product`` upstream), which ``imgx validate`` checks."""

    scope: Scope = Field(
        "all",
        description="all | background (the change on the scene, the product's own pixels kept) | product (on the "
        "product only); background and product need the item's alpha (segment.product upstream)",
    )
    feather: float = Field(
        2.0, ge=0.0, le=100.0, description="softness of the product edge for scope background/product, in pixels"
    )

    added_later: ClassVar[frozenset[str]] = frozenset({"scope", "feather"})  # older outputs keep their hash

    def wants_alpha(self) -> bool:
        return self.scope != "all"


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
    :param registry: the run's plugin registry (models, backends, model sources), built once per worker from the
        run's plugin settings; a stage that loads a model or picks a backend looks names up here, so a plugin given
        with ``--plugins-dir`` or ``-p`` is found. Outside a run (a test, a script), pass
        ``imgx.load_registry()``.
    """

    device: str = "cpu"
    batch_size: int = 1
    cache_dir: str | None = None
    worker_id: str = "main"
    backend: str = "auto"
    precision: str = "fp32"
    threads: int | None = None
    registry: Registry | None = None

    def require_registry(self, stage: str) -> Registry:
        """The run's registry; :class:`~imgx.errors.PluginError` saying how to pass one when the context has none."""
        if self.registry is None:
            from .errors import PluginError

            raise PluginError(
                f"stage {stage} looks up models and backends in the run's registry, and got a StageContext without "
                "one; expected StageContext(registry=imgx.load_registry(...)) outside a run"
            )
        return self.registry


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
      item without one, alone, with a :class:`~imgx.errors.StageError` that says so. ``imgx validate`` refuses a
      recipe where no node upstream produces alpha (and ``input.alpha`` does not say the catalog carries it).
    - ``produces_alpha``: the stage sets ``Item.alpha`` (a product mask: ``segment.product``), so stages downstream
      that need alpha can run. A stage whose answer depends on its parameters overrides :meth:`alpha_produced` /
      :meth:`alpha_needed` instead.
    - ``example``: parameters for a typical use (``imgx stages`` shows them; the registry smoke test runs every
      stage with them). Stages whose parameters all have defaults may leave it empty.
    - ``version``: bump it when the stage's output changes for the same parameters, so ``--resume`` redoes work
      done by the older code.
    - ``aliases``: former names of the stage; recipes that use one keep working, with a deprecation note.
    - ``holds_model``: the stage runs a model (loaded once per worker, gaining from batches): executors give it a
      process that may hold a model (forkserver, never fork) and the Ray executor an actor pool. The one rule for
      "is this a model stage"; unless a class sets it, it is ``batchable or device == "gpu"``.
    """

    registers_as: ClassVar[str] = "stage"

    name: ClassVar[str] = ""
    Params: ClassVar[type[StageParams]] = StageParams
    summary: ClassVar[str] = ""
    device: ClassVar[Literal["cpu", "gpu"]] = "cpu"
    batchable: ClassVar[bool] = False
    inputs: ClassVar[int] = 1
    needs_alpha: ClassVar[bool] = False
    produces_alpha: ClassVar[bool] = False
    example: ClassVar[dict[str, Any]] = {}
    version: ClassVar[str] = "1"
    aliases: ClassVar[tuple[str, ...]] = ()
    holds_model: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "holds_model" not in cls.__dict__:  # unless the class says: a batchable or GPU stage holds a model
            cls.holds_model = bool(cls.batchable or cls.device == "gpu")

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
    def models(cls, params: StageParams) -> tuple[str, ...]:
        """Registry names of the models this stage loads with ``params`` (checked by ``imgx validate`` before any
        image is read). Default: none."""
        return ()

    @classmethod
    def work(cls, params: StageParams, h: int, w: int) -> float:
        """How much work the stage does, with ``params``, for an item whose catalog image is ``h x w``: any unit
        proportional to the stage's time (the run measures its seconds per unit as it goes), so that the ETA can
        weigh the items still to come by what they cost, read from their headers. Default: megapixels, ``h * w / 1e6``.

        Override it where the time does not follow the image's area: a stage that passes some images through
        untouched (0 for them), one that resizes to a fixed size first (a constant), one that runs in tiles."""
        return h * w / 1e6

    @classmethod
    def alpha_needed(cls, params: StageParams) -> bool:
        """Whether, with ``params``, every item without alpha fails here (default: :attr:`needs_alpha`, or what the
        parameters say: :meth:`StageParams.wants_alpha`)."""
        return bool(cls.needs_alpha) or params.wants_alpha()

    @classmethod
    def alpha_produced(cls, params: StageParams) -> bool:
        """Whether, with ``params``, the stage gives every item an alpha (default: :attr:`produces_alpha`)."""
        return bool(cls.produces_alpha)

    @classmethod
    def registration_problem(cls) -> str | None:
        """Why this class cannot be registered as a stage, or ``None`` (the registry calls it for each stage)."""
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            return f"got {cls!r} from imgx_stages; expected a subclass of imgx.Stage"
        if not cls.name or "." not in cls.name:
            return f"got stage name {cls.name!r} for {cls.__qualname__}; expected 'group.verb'"
        if not (isinstance(cls.Params, type) and issubclass(cls.Params, StageParams)):
            return f"got Params {cls.Params!r} for stage {cls.name!r}; expected a subclass of imgx.StageParams"
        if cls.device not in ("cpu", "gpu"):
            return f"got device {cls.device!r} for stage {cls.name!r}; expected 'cpu' or 'gpu'"
        if not isinstance(cls.inputs, int) or cls.inputs < 1:
            return f"got inputs={cls.inputs!r} for stage {cls.name!r}; expected an int >= 1"
        return None

    @classmethod
    def registry_keys(cls) -> tuple[str, ...]:
        return (cls.name,)

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
            "produces_alpha": cls.produces_alpha,
            "version": cls.version,
            "holds_model": cls.holds_model,
            "aliases": list(cls.aliases),
            "example": dict(cls.example),
            "params": params,
        }
