"""The plan: a recipe resolved against the registry into a DAG of frozen nodes, validated before any image is read.

Nodes describe work; executors decide where it runs. Everything here is picklable so a plan can be sent to workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from pydantic import ValidationError

from ._registry import Registry
from .errors import PluginError
from .recipe.loader import LoadedRecipe, validation_problems
from .stage import Stage, StageParams

__all__ = ["Node", "Plan", "build_plan"]


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

    def fingerprint(self) -> dict[str, Any]:
        """What determines this node's output for a given input (stage name, version, params, inputs)."""
        return {
            "id": self.id,
            "uses": self.uses,
            "version": str(getattr(self.stage, "version", "1")),
            "params": self.params.model_dump(mode="json"),
            "needs": list(self.needs),
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated DAG: nodes in topological order, the nodes written, and what each output depends on.

    :param loaded: the recipe it came from.
    :param nodes: nodes in a topological order (each after everything it needs).
    :param outputs: ids of the nodes that are written.
    :param lineage: output id -> ids of the nodes it needs computed (itself and its ancestors), in plan order.
    :param output_hashes: output id -> hash of its lineage and encoding settings (the ledger's ``recipe_hash``):
        changing one variant's parameters redoes that variant only on ``--resume``.
    """

    loaded: LoadedRecipe
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    lineage: dict[str, tuple[str, ...]]
    output_hashes: dict[str, str]

    @property
    def recipe(self):
        return self.loaded.recipe

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

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
        for upstream in needs[node_id]:
            visit(upstream, [*path, node_id])
        state[node_id] = 2
        order.append(node_id)

    for spec in loaded.recipe.stages:
        visit(spec.id, [])
    return order


def build_plan(loaded: LoadedRecipe, registry: Registry) -> Plan:
    """Resolve stages, validate parameters, order the DAG and hash each output's lineage.

    Raises :class:`RecipeError` naming the line for an unknown stage (with close names), a bad parameter, a wrong
    number of inputs, or a cycle.
    """
    recipe = loaded.recipe
    nodes: dict[str, Node] = {}
    problems: list[tuple[tuple[Any, ...], str]] = []
    for index, spec in enumerate(recipe.stages):
        try:
            stage = registry.get_stage(spec.uses)
        except PluginError as exc:
            problems.append((("stages", index, "uses"), str(exc)))
            continue
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
        nodes[spec.id] = Node(spec.id, spec.uses, stage, params, tuple(spec.needs), registry.stage_plugin(spec.uses))
    if problems:
        raise loaded.error(problems)
    needs = {node_id: node.needs for node_id, node in nodes.items()}
    order = _topological(loaded, needs)
    ordered = tuple(nodes[node_id] for node_id in order)
    lineage: dict[str, tuple[str, ...]] = {}
    hashes: dict[str, str] = {}
    for out in recipe.output_ids:
        # where files go never changes them; the output's own encoding does (its override applied)
        out_spec = recipe.output.model_dump(mode="json", exclude={"dir", "overrides"})
        out_spec.update(recipe.output.settings(out).model_dump(mode="json"))
        if out_spec["png_compression"] == 6:  # hashes from before the key existed stay valid for --resume
            del out_spec["png_compression"]
        wanted: set[str] = set()
        stack = [out]
        while stack:
            current = stack.pop()
            if current not in wanted:
                wanted.add(current)
                stack.extend(needs[current])
        lineage[out] = tuple(node_id for node_id in order if node_id in wanted)
        payload = {"nodes": [nodes[n].fingerprint() for n in lineage[out]], "output": out_spec, "id": out}
        hashes[out] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return Plan(loaded=loaded, nodes=ordered, outputs=recipe.output_ids, lineage=lineage, output_hashes=hashes)
