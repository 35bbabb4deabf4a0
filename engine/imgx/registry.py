"""Builds the plugin manager and the registries of stages, executors and catalog readers.

The plugin manager is built inside :func:`load_registry`, never at import time. Built-in core parts (the local
executor, the manifest readers) are plugins listed in :data:`CORE_PLUGINS`; first-party stages live in their own
packages under ``plugins/`` and arrive through the ``imgx`` entry-point group, exactly as third-party ones do.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .stage import Stage, StageParams

__all__ = [
    "AUTOLOAD_ENV",
    "CORE_PLUGINS",
    "EXTRA_PLUGINS_ENV",
    "PluginConfig",
    "PluginFailure",
    "Registry",
    "load_registry",
]

AUTOLOAD_ENV = "IMGX_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_PLUGINS_ENV = "IMGX_PLUGINS"
CORE_PLUGINS: tuple[str, ...] = (
    "imgx.executors.local",
    "imgx.executors.ray_executor",
    "imgx.io.catalog",
    "imgx.models.sources",
    "imgx.runtime.builtin",
)
DIR_PLUGIN_PREFIX = "imgx_dirplugin_"


@dataclasses.dataclass(frozen=True)
class PluginConfig:
    """How to find plugins; picklable so that worker processes rebuild the same registry.

    :param plugins_dirs: folders whose ``*.py`` modules (and packages) are loaded as one-off plugins.
    :param modules: extra importable module names to load as plugins (also read from ``IMGX_PLUGINS``).
    :param autoload: load the ``imgx`` entry-point group; ``None``: unless ``IMGX_DISABLE_PLUGIN_AUTOLOAD`` is set.
    """

    plugins_dirs: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    autoload: bool | None = None

    def autoload_enabled(self) -> bool:
        if self.autoload is not None:
            return self.autoload
        return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}

    def all_modules(self) -> tuple[str, ...]:
        from_env = tuple(m.strip() for m in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if m.strip())
        return tuple(dict.fromkeys(self.modules + from_env))


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered something invalid; the others keep working."""

    plugin: str
    error: str


@dataclasses.dataclass
class Entry:
    """One registered thing and the plugin that registered it."""

    obj: Any
    plugin: str


@dataclasses.dataclass
class Registry:
    """What the loaded plugins provide. Build it with :func:`load_registry`."""

    config: PluginConfig
    plugin_manager: pluggy.PluginManager
    stages: dict[str, Entry] = dataclasses.field(default_factory=dict)
    executors: dict[str, Entry] = dataclasses.field(default_factory=dict)
    catalog_readers: dict[str, Entry] = dataclasses.field(default_factory=dict)
    models: dict[str, Entry] = dataclasses.field(default_factory=dict)
    model_sources: dict[str, Entry] = dataclasses.field(default_factory=dict)
    backends: dict[str, Entry] = dataclasses.field(default_factory=dict)
    failures: list[PluginFailure] = dataclasses.field(default_factory=list)

    def get_stage(self, name: str) -> type[Stage]:
        """The stage class registered as ``name``; an unknown name raises listing the close names."""
        return self._get(self.stages, name, "stage").obj

    def stage_plugin(self, name: str) -> str:
        return self._get(self.stages, name, "stage").plugin

    def get_executor(self, name: str) -> Any:
        """The executor class registered as ``name``."""
        return self._get(self.executors, name, "executor").obj

    def get_model(self, name: str) -> Any:
        """The :class:`imgx.models.ModelSpec` registered as ``name``."""
        return self._get(self.models, name, "model").obj

    def get_backend(self, name: str) -> Any:
        """The backend class registered as ``name``."""
        return self._get(self.backends, name, "backend").obj

    def source_for_scheme(self, scheme: str) -> Any | None:
        """The model source class for a URI scheme (``"pip"``, ``"https"``, ``""`` for a plain path), or ``None``."""
        entry = self.model_sources.get(scheme.lower())
        return entry.obj if entry else None

    def reader_for_suffix(self, suffix: str) -> Any | None:
        """The catalog reader class for a manifest suffix (``".csv"``), or ``None``."""
        entry = self.catalog_readers.get(suffix.lower())
        return entry.obj if entry else None

    def _get(self, table: dict[str, Entry], name: str, kind: str) -> Entry:
        try:
            return table[name]
        except KeyError:
            raise PluginError(unknown_name_message(name, kind, table)) from None


def unknown_name_message(name: str, kind: str, known: Iterable[str]) -> str:
    """``got 'x' for a <kind>; did you mean ...? known: ...`` with the close names first."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) if known else "none (is a plugin missing? see `imgx stages`)"
    return f"got unknown {kind} {name!r}.{hint} Known {kind}s: {listing}"


def _load_dir_plugins(directory: str) -> list[tuple[str, ModuleType | None, str]]:
    """Import each ``*.py`` module and package of ``directory``: ``(name, module or None, error)``."""
    path = Path(directory)
    if not path.is_dir():
        raise PluginError(f"got --plugins-dir {directory!r}; expected an existing folder of plugin modules")
    loaded: list[tuple[str, ModuleType | None, str]] = []
    for candidate in sorted(path.iterdir()):
        if candidate.name.startswith(("_", ".")):
            continue
        if candidate.is_file() and candidate.suffix == ".py":
            init, search = candidate, None
        elif candidate.is_dir() and (candidate / "__init__.py").is_file():
            init, search = candidate / "__init__.py", [str(candidate)]
        else:
            continue
        # A top-level name unique to this folder: classes pickle by reference, and a worker that loads the same
        # folder gets the same name. Two folders may both have a "stages.py".
        digest = hashlib.sha256(str(candidate.resolve()).encode()).hexdigest()[:10]
        module_name = f"{DIR_PLUGIN_PREFIX}{digest}_{candidate.stem}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, init, submodule_search_locations=search)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            loaded.append((str(candidate), None, f"failed to load: {type(exc).__name__}: {exc}"))
            continue
        loaded.append((str(candidate), module, ""))
    return loaded


def load_registry(config: PluginConfig | None = None) -> Registry:
    """Build the plugin manager, load every plugin and collect what they register.

    A plugin that fails to import, has a misspelt hook, raises in a hook or registers something invalid is recorded
    in ``Registry.failures`` (named) and the others keep working.
    """
    config = config or PluginConfig()
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registry = Registry(config=config, plugin_manager=pm)

    def register(name: str, load: Callable[[], Any]) -> None:
        try:
            plugin = load()
            if pm.is_registered(plugin):
                return
            pm.register(plugin, name=name)
        except Exception as exc:
            registry.failures.append(PluginFailure(name, f"failed to load: {type(exc).__name__}: {exc}"))

    for module_name in CORE_PLUGINS:
        register(module_name, lambda m=module_name: importlib.import_module(m))
    if config.autoload_enabled():
        for ep in sorted(importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda e: e.name):
            dist = getattr(ep.dist, "name", None) or "?"
            register(f"{ep.name} ({dist})", ep.load)
    for module_name in config.all_modules():
        register(module_name, lambda m=module_name: importlib.import_module(m))
    for directory in config.plugins_dirs:
        for name, module, error in _load_dir_plugins(directory):
            if module is None:
                registry.failures.append(PluginFailure(name, error))
            else:
                register(name, lambda m=module: m)

    _drop_invalid_plugins(pm, registry)
    _collect(pm, registry)
    return registry


def _drop_invalid_plugins(pm: pluggy.PluginManager, registry: Registry) -> None:
    """``check_pending`` per plugin: a misspelt hook unregisters that plugin (named), not the whole process."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            pm.unregister(exc.plugin)
            registry.failures.append(PluginFailure(name, f"invalid plugin: {exc}"))


def _call_each(pm: pluggy.PluginManager, hook_name: str, registry: Registry) -> list[tuple[str, Sequence[Any]]]:
    results = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            provided = impl.function()
        except Exception as exc:
            registry.failures.append(PluginFailure(name, f"hook {hook_name} raised {type(exc).__name__}: {exc}"))
            continue
        results.append((name, list(provided or ())))
    return results


def _add(table: dict[str, Entry], key: str, entry: Entry, kind: str) -> None:
    if key in table and table[key].obj is not entry.obj:
        warnings.warn(f"{kind} {key!r} from {entry.plugin} replaces the one from {table[key].plugin}", stacklevel=3)
    table[key] = entry


def _collect(pm: pluggy.PluginManager, registry: Registry) -> None:
    from .executors.base import Executor
    from .io.catalog import CatalogReader
    from .models.spec import ModelSource, ModelSpec
    from .runtime.base import Backend

    def executor_problem(cls: Any) -> str | None:
        ok = inspect.isclass(cls) and issubclass(cls, Executor) and cls.name
        return None if ok else f"got {cls!r} from imgx_executors; expected an Executor"

    def reader_problem(cls: Any) -> str | None:
        ok = inspect.isclass(cls) and issubclass(cls, CatalogReader) and cls.suffixes
        return None if ok else f"got {cls!r} from imgx_catalog_readers; expected a CatalogReader"

    def model_problem(spec: Any) -> str | None:
        ok = isinstance(spec, ModelSpec) and spec.name and spec.files and callable(spec.build)
        return None if ok else f"got {spec!r} from imgx_models; expected a ModelSpec with a name, files and build"

    def source_problem(cls: Any) -> str | None:
        ok = inspect.isclass(cls) and issubclass(cls, ModelSource) and cls.schemes
        return None if ok else f"got {cls!r} from imgx_model_sources; expected a ModelSource with schemes"

    def backend_problem(cls: Any) -> str | None:
        ok = inspect.isclass(cls) and issubclass(cls, Backend) and cls.name
        return None if ok else f"got {cls!r} from imgx_backends; expected a Backend with a name"

    # get_hookimpls() is in registration order: core, entry points, IMGX_PLUGINS, --plugins-dir. A later plugin
    # overrides an earlier one (with a warning), so a one-off plugin can replace an installed stage.
    kinds = (
        ("imgx_stages", registry.stages, "stage", _stage_problem, lambda cls: (cls.name,)),
        ("imgx_executors", registry.executors, "executor", executor_problem, lambda cls: (cls.name,)),
        (
            "imgx_catalog_readers",
            registry.catalog_readers,
            "catalog reader",
            reader_problem,
            lambda cls: tuple(s.lower() for s in cls.suffixes),
        ),
        ("imgx_models", registry.models, "model", model_problem, lambda spec: (spec.name,)),
        (
            "imgx_model_sources",
            registry.model_sources,
            "model source",
            source_problem,
            lambda cls: tuple(s.lower() for s in cls.schemes),
        ),
        ("imgx_backends", registry.backends, "backend", backend_problem, lambda cls: (cls.name,)),
    )
    for hook, table, kind, problem_of, keys_of in kinds:
        for plugin, provided in _call_each(pm, hook, registry):
            for cls in provided:
                problem = problem_of(cls)
                if problem:
                    registry.failures.append(PluginFailure(plugin, problem))
                    continue
                for key in keys_of(cls):
                    _add(table, key, Entry(cls, plugin), kind)


def _stage_problem(cls: Any) -> str | None:
    if not (inspect.isclass(cls) and issubclass(cls, Stage)):
        return f"got {cls!r} from imgx_stages; expected a subclass of imgx.Stage"
    if not cls.name or "." not in cls.name:
        return f"got stage name {cls.name!r} for {cls.__qualname__}; expected 'group.verb'"
    if not (inspect.isclass(cls.Params) and issubclass(cls.Params, StageParams)):
        return f"got Params {cls.Params!r} for stage {cls.name!r}; expected a subclass of imgx.StageParams"
    if cls.device not in ("cpu", "gpu"):
        return f"got device {cls.device!r} for stage {cls.name!r}; expected 'cpu' or 'gpu'"
    if not isinstance(cls.inputs, int) or cls.inputs < 1:
        return f"got inputs={cls.inputs!r} for stage {cls.name!r}; expected an int >= 1"
    return None


def format_failures(failures: Sequence[PluginFailure]) -> list[str]:
    return [f"plugin {f.plugin}: {f.error}" for f in failures]
