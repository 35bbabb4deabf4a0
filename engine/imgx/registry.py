"""The plugin host: builds the plugin manager and the registries of everything plugins provide.

This module is the bottom layer of imgx: it imports no executor, catalog, model or runtime module. What each kind of
registered thing must look like is checked by the thing itself (its base class): a registered object says which
kind it is (``registers_as``), whether it is valid (``registration_problem()``) and under which names it is found
(``registry_keys()``), so a new kind of plugin needs a line in :data:`KINDS` and a base class, not an import here.

The plugin manager is built inside :func:`load_registry`, never at import time. Built-in core parts (the local and
Ray executors, the manifest readers, the model sources, the backends) are plugins listed in :data:`CORE_PLUGINS`;
first-party stages live in their own packages under ``plugins/`` and arrive through the ``imgx`` entry-point group,
exactly as third-party ones do. The registry built for a run travels down to every stage in
:class:`imgx.StageContext`; nothing below the host builds a second one.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = [
    "AUTOLOAD_ENV",
    "CORE_PLUGINS",
    "EXTRA_PLUGINS_ENV",
    "KINDS",
    "Entry",
    "Kind",
    "PluginConfig",
    "PluginFailure",
    "Registry",
    "format_failures",
    "is_dir_plugin",
    "load_registry",
    "unknown_name_message",
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


def is_dir_plugin(module_name: str) -> bool:
    """Whether ``module_name`` is a module loaded by path from a ``--plugins-dir`` folder (not importable by name)."""
    return module_name.startswith(DIR_PLUGIN_PREFIX)


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of registered thing.

    :param hook: the hook that provides them (``imgx_stages``).
    :param label: what a user calls one (``"stage"``); a registered object's ``registers_as`` must equal it.
    :param table: the :class:`Registry` attribute that holds them, by name.
    :param expected: what a wrong object is told it should have been.
    """

    hook: str
    label: str
    table: str
    expected: str


KINDS: tuple[Kind, ...] = (
    Kind("imgx_stages", "stage", "stages", "a subclass of imgx.Stage"),
    Kind("imgx_executors", "executor", "executors", "a subclass of imgx.executors.Executor"),
    Kind("imgx_catalog_readers", "catalog reader", "catalog_readers", "a subclass of imgx.io.CatalogReader"),
    Kind("imgx_models", "model", "models", "an imgx.models.ModelSpec"),
    Kind("imgx_model_sources", "model source", "model_sources", "a subclass of imgx.models.ModelSource"),
    Kind("imgx_backends", "backend", "backends", "a subclass of imgx.runtime.Backend"),
    Kind("imgx_commands", "command", "commands", "an imgx.Command"),
)


@dataclasses.dataclass(frozen=True)
class PluginConfig:
    """How to find plugins; picklable so that worker processes rebuild the same registry.

    :param plugins_dirs: folders whose ``*.py`` modules (and packages) are loaded as one-off plugins.
    :param modules: extra importable module names to load as plugins (also read from ``IMGX_PLUGINS``).
    :param autoload: load the ``imgx`` entry-point group; ``None``: unless ``IMGX_DISABLE_PLUGIN_AUTOLOAD`` is set.
    :param only: register only the entry points and modules of these names (as the registry names them: ``"gan
        (imgx)"`` for an entry point), never importing the others; the core plugins and ``plugins_dirs`` modules
        (imported to be found) always. ``None``: all. A run's workers load the plugins its plan uses
        (:meth:`imgx.plan.Plan.plugins_used`), not every one installed.
    """

    plugins_dirs: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    autoload: bool | None = None
    shipped: tuple[ShippedDir, ...] = ()
    only: tuple[str, ...] | None = None

    def restricted_to(self, names: Iterable[str]) -> PluginConfig:
        """This config registering only the plugins ``names`` (and the core ones)."""
        return dataclasses.replace(self, only=tuple(sorted(set(names))))

    def with_shipped(self) -> PluginConfig:
        """This config with each ``plugins_dirs`` folder packed into it (:class:`ShippedDir`), for workers on other
        machines: they load the packed files, under the module names the driver gave them, whether or not the
        folder exists at that path on their machine."""
        return dataclasses.replace(self, shipped=tuple(ShippedDir.pack(d) for d in self.plugins_dirs))

    def autoload_enabled(self) -> bool:
        if self.autoload is not None:
            return self.autoload
        return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}

    def all_modules(self) -> tuple[str, ...]:
        from_env = tuple(m.strip() for m in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if m.strip())
        return tuple(dict.fromkeys(self.modules + from_env))


SHIP_LIMIT_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class ShippedDir:
    """A ``--plugins-dir`` folder packed to travel with a run to other machines (a Ray cluster).

    :param given: the folder as ``--plugins-dir`` named it (what :attr:`PluginConfig.plugins_dirs` holds).
    :param resolved: its real path on the driver: module names are made from it, so a worker's modules have the
        names the driver's classes pickle by.
    :param archive: a zip of its ``*.py`` modules and packages (no ``__pycache__``, no hidden or ``_`` entries).
    """

    given: str
    resolved: str
    archive: bytes

    @classmethod
    def pack(cls, directory: str) -> ShippedDir:
        """:raises PluginError: a missing folder, or one over :data:`SHIP_LIMIT_BYTES` packed."""
        path = _plugins_folder(directory)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for candidate in _candidates(path):
                files = [candidate] if candidate.is_file() else sorted(candidate.rglob("*"))
                for file in files:
                    parts = file.relative_to(path).parts
                    if file.is_file() and not any(p == "__pycache__" or p.startswith(".") for p in parts):
                        archive.write(file, "/".join(parts))
        if buffer.tell() > SHIP_LIMIT_BYTES:
            raise PluginError(
                f"--plugins-dir {directory!r} packs to {buffer.tell() / 2**20:.1f} MiB, over the "
                f"{SHIP_LIMIT_BYTES >> 20} MiB a run ships to its workers; install it on the nodes as a package "
                "(an entry point in the imgx group) instead"
            )
        return cls(directory, str(path.resolve()), buffer.getvalue())

    def unpacked(self) -> str:
        """The files, unpacked once per machine into a temp folder named by their hash (shared by the workers)."""
        parent = Path(tempfile.gettempdir()) / "imgx-plugins"
        target = parent / hashlib.sha256(self.archive).hexdigest()[:16]
        if target.is_dir():
            return str(target)
        parent.mkdir(parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent)
        try:
            with zipfile.ZipFile(io.BytesIO(self.archive)) as archive:
                archive.extractall(staging)
            os.rename(staging, target)  # whole or not at all
        except OSError:
            if not target.is_dir():  # else another worker of this machine unpacked it first
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(target)


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


@dataclasses.dataclass(eq=False)
class Registry:
    """What the loaded plugins provide. Build it with :func:`load_registry`; a run builds one and hands it down
    (``StageContext.registry``), so a model or backend of a ``--plugins-dir`` plugin is found everywhere."""

    config: PluginConfig
    plugin_manager: pluggy.PluginManager
    stages: dict[str, Entry] = dataclasses.field(default_factory=dict)
    executors: dict[str, Entry] = dataclasses.field(default_factory=dict)
    catalog_readers: dict[str, Entry] = dataclasses.field(default_factory=dict)
    models: dict[str, Entry] = dataclasses.field(default_factory=dict)
    model_sources: dict[str, Entry] = dataclasses.field(default_factory=dict)
    backends: dict[str, Entry] = dataclasses.field(default_factory=dict)
    commands: dict[str, Entry] = dataclasses.field(default_factory=dict)
    stage_aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    failures: list[PluginFailure] = dataclasses.field(default_factory=list)

    def get_stage(self, name: str) -> Any:
        """The stage class registered as ``name`` (or a deprecated alias of it); an unknown name raises listing the
        close names."""
        return self._get(self.stages, self.stage_aliases.get(name, name), "stage").obj

    def stage_plugin(self, name: str) -> str:
        return self._get(self.stages, self.stage_aliases.get(name, name), "stage").plugin

    def renamed_stage(self, name: str) -> str | None:
        """The current name of a stage registered under the old name ``name`` (a deprecated alias), else ``None``."""
        return self.stage_aliases.get(name)

    def get_executor(self, name: str) -> Any:
        """The executor class registered as ``name``."""
        return self._get(self.executors, name, "executor").obj

    def get_model(self, name: str) -> Any:
        """The :class:`imgx.models.ModelSpec` registered as ``name``; an unknown name raises listing the close names
        and pointing at ``imgx models list``."""
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


_LISTING_HINTS = {"stage": "imgx stages", "model": "imgx models list"}


def unknown_name_message(name: str, kind: str, known: Iterable[str]) -> str:
    """``got unknown <kind> 'x'. Did you mean ...? Known <kind>s: ...`` with the close names first."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) if known else "none (is a plugin missing? see `imgx stages`)"
    where = f" (see `{_LISTING_HINTS[kind]}`)" if kind in _LISTING_HINTS else ""
    return f"got unknown {kind} {name!r}.{hint} Known {kind}s: {listing}{where}"


def _plugins_folder(directory: str) -> Path:
    """``directory`` as a path; :class:`PluginError` when it is not an existing folder."""
    path = Path(directory)
    if not path.is_dir():
        raise PluginError(f"got --plugins-dir {directory!r}; expected an existing folder of plugin modules")
    return path


def _candidates(path: Path) -> list[Path]:
    """The plugin modules (``*.py``) and packages (folders with ``__init__.py``) directly in ``path``, sorted."""
    found = []
    for candidate in sorted(path.iterdir()):
        if candidate.name.startswith(("_", ".")):
            continue
        if (candidate.is_file() and candidate.suffix == ".py") or (
            candidate.is_dir() and (candidate / "__init__.py").is_file()
        ):
            found.append(candidate)
    return found


def _load_dir_plugins(directory: str, *, named_as: str | None = None) -> list[tuple[str, ModuleType | None, str]]:
    """Import each ``*.py`` module and package of ``directory``: ``(name, module or None, error)``.

    :param named_as: the real path the module names are made from (a :class:`ShippedDir`'s folder on the driver);
        default: ``directory``'s own.
    """
    path = _plugins_folder(directory)
    base = named_as or str(path.resolve())
    loaded: list[tuple[str, ModuleType | None, str]] = []
    for candidate in _candidates(path):
        if candidate.is_file():
            init, search = candidate, None
        else:
            init, search = candidate / "__init__.py", [str(candidate)]
        # A top-level name unique to this folder: classes pickle by reference, and a worker that loads the same
        # folder (or its shipped copy, named after the driver's path) gets the same name. Two folders may both have
        # a "stages.py".
        digest = hashlib.sha256(os.path.join(base, candidate.name).encode()).hexdigest()[:10]
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

    def register(name: str, load: Callable[[], Any], *, always: bool = False) -> None:
        if config.only is not None and not always and name not in config.only:
            return  # not imported: a worker of a plan that does not use it
        try:
            plugin = load()
            if pm.is_registered(plugin):
                return
            pm.register(plugin, name=name)
        except Exception as exc:
            registry.failures.append(PluginFailure(name, f"failed to load: {type(exc).__name__}: {exc}"))

    for module_name in CORE_PLUGINS:
        register(module_name, lambda m=module_name: importlib.import_module(m), always=True)
    if config.autoload_enabled():
        for ep in sorted(importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda e: e.name):
            dist = getattr(ep.dist, "name", None) or "?"
            register(f"{ep.name} ({dist})", ep.load)
    for module_name in config.all_modules():
        register(module_name, lambda m=module_name: importlib.import_module(m))
    shipped = {entry.given: entry for entry in config.shipped}
    for directory in config.plugins_dirs:
        entry = shipped.get(directory)
        loaded = _load_dir_plugins(entry.unpacked(), named_as=entry.resolved) if entry else _load_dir_plugins(directory)
        for name, module, error in loaded:
            if module is None:
                registry.failures.append(PluginFailure(name, error))
            else:
                register(name, lambda m=module: m, always=True)  # imported already: nothing to save

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
    """Call every implementation of a registration hook, one at a time, in pluggy's order of precedence.

    Why not ``pm.hook.<name>()``: that call stops at the first implementation that raises (one broken plugin would
    hide every other plugin's stages) and returns bare results that no longer say which plugin gave them (needed for
    ``imgx stages``, override warnings and failure messages). ``get_hookimpls()`` lists implementations from the
    lowest precedence to the highest (``trylast`` ones, then by registration, then ``tryfirst``), and a later result
    replaces an earlier one under the same name: ``tryfirst`` wins, as in a pluggy call. Hook wrappers do not apply
    to these registration hooks (``hookspecs.py`` says so).
    """
    results = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
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


def registration_problem(obj: Any, kind: Kind) -> str | None:
    """Why ``obj`` cannot be registered as a ``kind``, or ``None``. The object's own ``registration_problem()``
    (its base class's) checks the details."""
    if getattr(obj, "registers_as", None) != kind.label or not callable(getattr(obj, "registry_keys", None)):
        return f"got {obj!r} from {kind.hook}; expected {kind.expected}"
    try:
        return obj.registration_problem()
    except Exception as exc:
        return f"got {obj!r} from {kind.hook}, whose check raised {type(exc).__name__}: {exc}"


def _collect(pm: pluggy.PluginManager, registry: Registry) -> None:
    # Implementations run in registration order (core, entry points, IMGX_PLUGINS, --plugins-dir): a later plugin
    # overrides an earlier one (with a warning), so a one-off plugin can replace an installed stage.
    for kind in KINDS:
        table: dict[str, Entry] = getattr(registry, kind.table)
        for plugin, provided in _call_each(pm, kind.hook, registry):
            for obj in provided:
                problem = registration_problem(obj, kind)
                if problem:
                    registry.failures.append(PluginFailure(plugin, problem))
                    continue
                for key in obj.registry_keys():
                    _add(table, key, Entry(obj, plugin), kind.label)
                for alias in getattr(obj, "aliases", ()) if kind.label == "stage" else ():
                    registry.stage_aliases[alias] = obj.name
    for alias in [a for a in registry.stage_aliases if a in registry.stages]:
        del registry.stage_aliases[alias]  # a stage registered under the old name itself takes precedence


def format_failures(failures: Sequence[PluginFailure]) -> list[str]:
    return [f"plugin {f.plugin}: {f.error}" for f in failures]
