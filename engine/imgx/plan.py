"""The plan: a recipe resolved against the registry into a DAG of frozen nodes, validated before any image is read.

Nodes describe work; executors decide where it runs. The plan is the one thing executors read: the nodes, what each
output depends on, and :class:`RunSettings` (encoding per output, naming, pixel limit, batch size, backend,
precision, the executor's own typed options), all resolved here. Everything here is picklable so a plan can be sent
to workers.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ImgxError, PluginError
from .recipe.loader import KeyPath, LoadedRecipe, validation_problems
from .recipe.model import SOURCE, EncodeSettings
from .registry import Registry, unknown_name_message
from .stage import Stage, StageParams

__all__ = ["Node", "Plan", "RunSettings", "build_plan", "document_problems", "preflight_problems"]

logger = logging.getLogger("imgx.plan")


@dataclasses.dataclass(frozen=True)
class Node:
    """One stage of the DAG.

    :param id: node id from the recipe.
    :param uses: registered stage name.
    :param stage: the stage class.
    :param params: validated parameters.
    :param needs: upstream node ids (empty: the decoded catalog image).
    :param plugin: the plugin that registered the stage.
    """

    id: str
    uses: str
    stage: type[Stage]
    params: StageParams
    needs: tuple[str, ...]
    plugin: str

    @property
    def device(self) -> str:
        return self.stage.device

    @property
    def holds_model(self) -> bool:
        """Whether the node runs a model (:attr:`imgx.Stage.holds_model`): the one rule executors use."""
        return bool(self.stage.holds_model)

    def work(self, h: int, w: int) -> float:
        """The stage's :meth:`imgx.Stage.work` for an ``h x w`` catalog image, what the ETA and ``imgx plan`` weigh
        items by; megapixels where a plugin's ``work`` fails or says something that is not a finite number >= 0 (an
        estimate is a convenience: it never costs an item or a run)."""
        try:
            units = float(self.stage.work(self.params, h, w))
        except Exception:
            logger.debug("%s: work() failed for %d x %d; weighed by megapixels", self.uses, w, h, exc_info=True)
            return h * w / 1e6
        return units if math.isfinite(units) and units >= 0 else h * w / 1e6

    def fingerprint(self) -> dict[str, Any]:
        """What determines this node's output for a given input (stage name, version, params, inputs)."""
        return {
            "id": self.id,
            "uses": self.uses,
            "version": str(getattr(self.stage, "version", "1")),
            "params": self.params.fingerprint(),
            "needs": list(self.needs),
        }


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How the plan runs, resolved from the recipe's ``input``, ``output`` and ``execution`` sections.

    :param encodings: output id -> its encoding (``output``'s defaults with its override applied).
    :param naming: the output path template (relative to the output folder).
    :param write: False: stages run and ledger rows are recorded, but no output file is written (an audit).
    :param max_pixels: images with more pixels fail (decompression-bomb guard).
    :param allowed_hosts: http(s) hosts (names or CIDR ranges) a catalog image may come from although they are
        internal (loopback, private, link-local); none: internal addresses are refused.
    :param max_download_bytes: the largest image fetched over http(s) or from object storage.
    :param batch_size: items per batch handed to a worker and to stages.
    :param device: where GPU-capable stages run as asked (``auto``, ``cpu``, ``cuda``); the runner resolves ``auto``.
    :param backend: inference backend of model stages (a registered name or ``auto``).
    :param precision: numeric precision of model stages.
    :param executor: the registered executor that runs the plan.
    :param executor_options: that executor's typed options (its ``Options`` model, from ``execution.<executor>``),
        or ``None`` for an executor without options.
    :param workers: worker processes (``"auto"``: every core).
    :param start_method: multiprocessing start method of local workers, ``None`` for the default.
    :param max_failures: the failure budget (a fraction of items, or a count).
    :param overlap: decode ahead and encode behind on helper threads in each worker: ``True``, ``False`` or
        ``"auto"`` (resolved from the cores per worker and the device: :func:`imgx.runner.resolve_overlap`).
    """

    encodings: Mapping[str, EncodeSettings]
    naming: str
    max_pixels: int
    allowed_hosts: tuple[str, ...]
    max_download_bytes: int
    batch_size: int
    device: str
    backend: str
    precision: str
    executor: str
    executor_options: Any
    workers: int | str
    start_method: str | None
    max_failures: float | int
    write: bool = True
    overlap: bool | str = "auto"


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated DAG: nodes in topological order, the nodes written, and what each output depends on.

    :param name: the recipe's name.
    :param nodes: nodes in a topological order (each after everything it needs).
    :param outputs: ids of the nodes that are written.
    :param lineage: output id -> ids of the nodes it needs computed (itself and its ancestors), in plan order.
    :param output_hashes: output id -> hash of its lineage and encoding settings (the ledger's ``recipe_hash``):
        changing one variant's parameters redoes that variant only on ``--resume``.
    :param settings: how it runs, resolved.
    :param notes: things a user should read before running (a deprecated stage name), shown by ``imgx validate``,
        ``imgx plan`` and ``imgx run``.
    """

    name: str
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    lineage: dict[str, tuple[str, ...]]
    output_hashes: dict[str, str]
    settings: RunSettings
    notes: tuple[str, ...] = ()

    @property
    def holds_model(self) -> bool:
        """Whether any node runs a model."""
        return any(node.holds_model for node in self.nodes)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def released_after(self) -> dict[str, tuple[str, ...]]:
        """Node id -> the values (node ids, ``"source"`` for the decoded image) that no later node reads and that are
        not written: a worker may drop an item's copies of them once that node has run."""
        last: dict[str, str] = {}
        for node in self.nodes:
            for value in node.needs or ("source",):
                last[value] = node.id
        released: dict[str, list[str]] = {}
        for value, node_id in last.items():
            if value not in self.outputs:
                released.setdefault(node_id, []).append(value)
        return {node_id: tuple(values) for node_id, values in released.items()}

    def plugins_used(self, registry: Registry) -> tuple[str, ...]:
        """The plugins (by ``registry``'s names) a run of this plan needs in its workers: those that registered its
        stages and the models they load, and every one that registers an executor, catalog reader, model source or
        backend (``auto`` may pick any backend). For :meth:`imgx.registry.PluginConfig.restricted_to`."""
        names = {node.plugin for node in self.nodes}
        for node in self.nodes:
            models = node.stage.models(node.params)
            names.update(registry.models[m].plugin for m in models if m in registry.models)
        for kind in (registry.executors, registry.catalog_readers, registry.model_sources, registry.backends):
            names.update(entry.plugin for entry in kind.values())
        return tuple(sorted(names))

    def needed_nodes(self, outputs: frozenset[str] | set[str]) -> tuple[str, ...]:
        """Ids of the nodes that must run to produce ``outputs``, in plan order."""
        wanted = {node_id for out in outputs for node_id in self.lineage[out]}
        return tuple(n.id for n in self.nodes if n.id in wanted)


def _param_problems(
    index: int, stage: type[Stage], values: dict[str, Any], context: dict[str, Any]
) -> list[tuple[tuple[Any, ...], str]]:
    """Validate ``with:`` against the stage's Params; problems as (key path, message)."""
    try:
        stage.Params.model_validate(values, context=context)
    except ValidationError as exc:
        problems = validation_problems(exc, values, stage.Params, ("stages", index, "with"))
        renamed = [
            (
                loc,
                msg.replace("unknown key;", f"unknown parameter of {stage.name};", 1).replace(
                    "Known keys here:", "Its parameters are:"
                ),
            )
            for loc, msg in problems
        ]
        return renamed
    return []


def _beside_recipe(value: Any, base_dir: str) -> Any:
    """``value`` with every path under the recipe's folder written relative to it (``./packs/shop.yaml``): a file
    parameter is stored absolute (:func:`imgx.recipe_path`, for the workers), but the output hash must not change
    when the same recipe and its files are checked out somewhere else."""
    if isinstance(value, str):
        return "./" + value[len(base_dir) + 1 :] if value.startswith(base_dir + "/") else value
    if isinstance(value, dict):
        return {key: _beside_recipe(item, base_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [_beside_recipe(item, base_dir) for item in value]
    return value


def _topological(loaded: LoadedRecipe, needs: dict[str, tuple[str, ...]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    index_of = {s.id: i for i, s in enumerate(loaded.recipe.stages)}

    def visit(node_id: str, path: list[str]) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            cycle = [*path[path.index(node_id) :], node_id]
            raise loaded.error(
                [(("stages", index_of[node_id], "needs"), f"cycle: {' -> '.join(cycle)}; a node cannot need itself")]
            )
        state[node_id] = 1
        for upstream in (n for n in needs[node_id] if n != SOURCE):
            visit(upstream, [*path, node_id])
        state[node_id] = 2
        order.append(node_id)

    for spec in loaded.recipe.stages:
        visit(spec.id, [])
    return order


def _settings_problems(loaded: LoadedRecipe, registry: Registry) -> tuple[Any, list[tuple[KeyPath, str]]]:
    """The chosen executor's typed options, and the problems of the ``execution`` section that need the registry:
    an unknown executor or backend, an ``execution.<name>`` section that names no executor or breaks its options."""
    execution = loaded.recipe.execution
    problems: list[tuple[KeyPath, str]] = []
    options: Any = None
    try:
        registry.get_executor(execution.executor)
    except PluginError as exc:
        problems.append((("execution", "executor"), str(exc)))
    if execution.backend != "auto" and execution.backend not in registry.backends:
        message = unknown_name_message(execution.backend, "backend", [*registry.backends, "auto"])
        problems.append((("execution", "backend"), message))
    for key, value in execution.executor_sections().items():
        if key not in registry.executors:
            fields = [f.alias or n for n, f in type(execution).model_fields.items()]
            close = difflib.get_close_matches(key, [*fields, *registry.executors], n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(
                (
                    ("execution", key),
                    f"unknown key; remove it or fix its spelling.{hint} Known keys here: {', '.join(fields)}, and "
                    f"the executors' own sections: {', '.join(sorted(registry.executors))}.",
                )
            )
            continue
        model: type[BaseModel] | None = registry.get_executor(key).Options
        if model is None:
            problems.append((("execution", key), f"executor {key!r} takes no options; remove execution.{key}"))
            continue
        try:
            validated = model.model_validate(value if value is not None else {})
        except ValidationError as exc:
            problems.extend(validation_problems(exc, value, model, ("execution", key)))
            continue
        if key == execution.executor:
            options = validated
    if options is None and not problems:
        model = registry.get_executor(execution.executor).Options
        options = model() if model is not None else None
    return options, problems


def _with_precision(node: Node, precision: str) -> dict[str, Any]:
    """A node's fingerprint, with the run's ``execution.precision`` when the node runs a model at anything but FP32:
    BF16/FP16 (and ``auto``, which may pick BF16 on one machine and FP32 on another) move pixels, so their outputs
    never share a hash with FP32 ones. The setting as written, not what it resolves to on this machine, so a hash
    stays a function of the recipe; FP32 adds nothing, so the hashes of earlier ledgers stay valid."""
    fingerprint = node.fingerprint()
    if node.holds_model and precision != "fp32":
        fingerprint["precision"] = precision
    return fingerprint


def build_plan(loaded: LoadedRecipe, registry: Registry) -> Plan:
    """Resolve stages, validate parameters and settings, order the DAG and hash each output's lineage.

    Raises one :class:`RecipeError` naming the line of every problem found: an unknown stage (with close names), a
    bad parameter, a wrong number of inputs, a model that no plugin registers, an unknown executor or backend, bad
    executor options, or a cycle.
    """
    recipe = loaded.recipe
    nodes: dict[str, Node] = {}
    problems: list[tuple[tuple[Any, ...], str]] = []
    notes: list[str] = []
    executor_options, setting_problems = _settings_problems(loaded, registry)
    problems.extend(setting_problems)
    for index, spec in enumerate(recipe.stages):
        try:
            stage = registry.get_stage(spec.uses)
        except PluginError as exc:
            problems.append((("stages", index, "uses"), str(exc)))
            continue
        renamed = registry.renamed_stage(spec.uses)
        if renamed:
            note = (
                f"{loaded.locator.locate(('stages', index, 'uses'))}: stage {spec.uses!r} is now called {renamed!r}; "
                f"the old name still works but is deprecated: write uses: {renamed}"
            )
            notes.append(note)  # the CLI prints it; a program calling imgx gets the usual warning
            warnings.warn(note, DeprecationWarning, stacklevel=2)
        expected = stage.inputs
        given = max(len(spec.needs), 1)
        if given != expected:
            problems.append(
                (
                    ("stages", index, "needs"),
                    f"{spec.uses} takes {expected} input(s); got {given}: list {expected} node ids in needs:",
                )
            )
            continue
        context = {"base_dir": loaded.base_dir}  # file path parameters resolve against the recipe's folder
        param_problems = _param_problems(index, stage, spec.with_, context)
        if param_problems:
            problems.extend(param_problems)
            continue
        params = stage.Params.model_validate(spec.with_, context=context)
        for model in stage.models(params):
            if model not in registry.models:
                problems.append(
                    (("stages", index, "uses"), f"{spec.uses}: {unknown_name_message(model, 'model', registry.models)}")
                )
        nodes[spec.id] = Node(spec.id, spec.uses, stage, params, tuple(spec.needs), registry.stage_plugin(spec.uses))
    if problems:
        raise loaded.error(problems)
    needs = {node_id: node.needs for node_id, node in nodes.items()}
    order = _topological(loaded, needs)
    ordered = tuple(nodes[node_id] for node_id in order)
    lineage: dict[str, tuple[str, ...]] = {}
    hashes: dict[str, str] = {}
    for out in recipe.output_ids:
        # where files go (or whether they are written) never changes them; the output's own encoding does
        out_spec = recipe.output.model_dump(mode="json", exclude={"dir", "overrides", "write"})
        out_spec.update(recipe.output.settings(out).model_dump(mode="json"))
        # the same pixels: the default (fast) and 6, the default before fast, hash as hashes from before the key
        # existed, so runs begun then resume
        if out_spec["png_compression"] in ("fast", 6):
            del out_spec["png_compression"]
        if out_spec["alpha"] == "keep":  # likewise
            del out_spec["alpha"]
        wanted: set[str] = set()
        stack = [out]
        while stack:
            current = stack.pop()
            if current not in wanted:
                wanted.add(current)
                stack.extend(n for n in needs[current] if n != SOURCE)
        lineage[out] = tuple(node_id for node_id in order if node_id in wanted)
        fingerprints = [
            _beside_recipe(_with_precision(nodes[n], recipe.execution.precision), str(loaded.base_dir))
            for n in lineage[out]
        ]
        payload = {"nodes": fingerprints, "output": out_spec, "id": out}
        hashes[out] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    execution = recipe.execution
    settings = RunSettings(
        encodings={out: recipe.output.settings(out) for out in recipe.output_ids},
        naming=recipe.output.naming,
        write=recipe.output.write,
        max_pixels=recipe.input.max_pixels,
        allowed_hosts=tuple(recipe.input.allowed_hosts),
        max_download_bytes=recipe.input.max_download_bytes,
        batch_size=execution.batch_size,
        device=execution.device,
        backend=execution.backend,
        precision=execution.precision,
        executor=execution.executor,
        executor_options=executor_options,
        workers=execution.workers,
        start_method=execution.start_method,
        max_failures=execution.max_failures,
        overlap=execution.overlap,
    )
    return Plan(
        name=recipe.name,
        nodes=ordered,
        outputs=recipe.output_ids,
        lineage=lineage,
        output_hashes=hashes,
        settings=settings,
        notes=tuple(notes),
    )


# -- checks of what a recipe will meet, before any pixel is read (imgx validate, plan and run) -----------------------


def _input_problems(path: Any, base_dir: Path, registry: Registry) -> list[tuple[KeyPath, str]]:
    """A local ``input.path`` that does not exist, or a file no catalog reader takes; an object-store ``input.path``
    that cannot be read (:func:`imgx.io.fs.check_readable`: a missing bucket, nothing at the URI, access denied)."""
    from .io import fs  # here: imgx.io brings pyarrow, which a plan sent to a worker does not need

    if not isinstance(path, str):
        return []
    try:
        location = fs.absolute(path, base_dir)
        if not fs.is_local(location):
            fs.check_readable(location, setting="input.path")
            return []
    except ImgxError as exc:
        return [(("input", "path"), str(exc))]
    root = Path(location)
    if root.is_dir():
        return []
    if not root.exists():
        return [(("input", "path"), f"got {path!r}, resolved to {root}; no such folder or file")]
    if registry.reader_for_suffix(root.suffix) is None:
        known = ", ".join(sorted(registry.catalog_readers))
        return [(("input", "path"), f"got manifest {root.name!r}; expected a folder or a manifest ending in {known}")]
    return []


_AlphaEntry = tuple[int, str, str, type[Stage], StageParams, tuple[str, ...]]  # index, id, uses, stage, params, needs


def _alpha_problems(entries: list[_AlphaEntry]) -> list[tuple[KeyPath, str]]:
    """Nodes that need alpha with no node upstream that produces it (every item would fail there). A need that is
    not among ``entries`` (a node with problems of its own) counts as giving alpha: only certain failures are told."""
    by_id = {entry[1]: entry for entry in entries}
    memo: dict[str, bool] = {}

    def gives(node_id: str, seen: frozenset[str] = frozenset()) -> bool:
        if node_id not in by_id or node_id in seen:
            return True
        if node_id not in memo:
            _, _, _, stage, params, needs = by_id[node_id]
            memo[node_id] = stage.alpha_produced(params) or any(gives(n, seen | {node_id}) for n in needs)
        return memo[node_id]

    problems: list[tuple[KeyPath, str]] = []
    for index, node_id, uses, stage, params, needs in entries:
        if stage.alpha_needed(params) and not any(gives(n, frozenset({node_id})) for n in needs):
            problems.append(
                (
                    ("stages", index, "uses"),
                    f"{uses} needs a product alpha and nothing upstream produces one, so every item would fail "
                    "here; add a masking stage (segment.product) before it in needs:, or set input.alpha: true if "
                    "the catalog's images are cut-outs with alpha",
                )
            )
    return problems


def preflight_problems(
    loaded: LoadedRecipe, plan: Plan, registry: Registry, *, check_input: bool = True
) -> list[tuple[KeyPath, str]]:
    """What a valid plan will meet that makes the run fail whole: a stage that needs alpha where nothing produces
    it, and (``check_input``) a missing input folder or manifest (on an object store: one that cannot be read)."""
    problems = _input_problems(loaded.recipe.input.path, loaded.base_dir, registry) if check_input else []
    if not loaded.recipe.input.alpha:
        index_of = {spec.id: i for i, spec in enumerate(loaded.recipe.stages)}
        problems += _alpha_problems([(index_of[n.id], n.id, n.uses, n.stage, n.params, n.needs) for n in plan.nodes])
    return problems


def document_problems(
    document: dict[str, Any],
    base_dir: Path,
    registry: Registry,
    known: list[tuple[KeyPath, str]],
    *,
    check_input: bool = True,
) -> list[tuple[KeyPath, str]]:
    """The problems of a recipe that failed its own checks which need the registry: each stage's name and
    parameters, read from the raw document, and the input path; key paths in ``known`` are not reported twice.

    This is what lets ``imgx validate`` list a misspelt recipe key and a misspelt stage parameter in one pass."""
    known_paths = [k for k, _ in known]

    def reported(key_path: KeyPath) -> bool:
        return any(k[: len(key_path)] == key_path or key_path[: len(k)] == k for k in known_paths)

    problems: list[tuple[KeyPath, str]] = []
    entries: list[_AlphaEntry] = []
    stages = document.get("stages")
    for index, spec in enumerate(stages if isinstance(stages, list) else []):
        if not isinstance(spec, dict) or not isinstance(spec.get("uses"), str):
            continue
        if reported(("stages", index, "uses")):
            continue
        try:
            stage = registry.get_stage(spec["uses"])
        except PluginError as exc:
            problems.append((("stages", index, "uses"), str(exc)))
            continue
        values = spec.get("with") or {}
        if isinstance(values, dict) and not reported(("stages", index, "with")):
            found = _param_problems(index, stage, values, {"base_dir": base_dir})
            problems += found
            needs = spec.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            if not found and isinstance(spec.get("id"), str) and isinstance(needs, list):
                params = stage.Params.model_validate(values, context={"base_dir": base_dir})
                entries.append((index, spec["id"], spec["uses"], stage, params, tuple(map(str, needs))))
    section = document.get("input")
    if check_input and isinstance(section, dict) and not reported(("input", "path")):
        problems += _input_problems(section.get("path"), base_dir, registry)
    if not (isinstance(section, dict) and section.get("alpha") is True):
        problems += [p for p in _alpha_problems(entries) if not reported(p[0])]
    return problems
