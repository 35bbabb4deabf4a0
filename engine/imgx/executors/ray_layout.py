"""How the Ray executor lays a plan out on Ray Data, decided without importing Ray.

- **Stage groups.** The plan's nodes, in topological order, are cut into groups: a run of consecutive CPU stages is
  one group (fused into one Ray task, with reading and decoding in the first and encoding, writing and the ledger in
  the last); each model stage (``Node.holds_model``) is a group of its own, run by an actor pool so its
  model loads once per actor. A CPU-only plan is a single task that does exactly what the local executor's worker
  does.
- **Chunks.** The runner's batches (``execution.batch_size`` work units) travel as chunks: one Ray Data row each, with
  an id unique in the run. The last group records which chunks it has started, so a retried chunk (its worker was
  killed) redoes only the outputs the dead worker had not journaled.
- **Blocks.** The number of blocks comes from the catalog window's size and the cluster's CPUs (several blocks per
  CPU, so the last ones finish together, but few enough that per-task overhead stays small), never Ray's default.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections.abc import Iterable, Iterator
from typing import Literal

from ..plan import Plan
from .processor import WorkUnit
from .ray_options import RaySpec

__all__ = ["BLOCKS_PER_CPU", "Chunk", "StageGroup", "choose_blocks", "stage_groups", "windows"]

BLOCKS_PER_CPU = 8


@dataclasses.dataclass(frozen=True)
class StageGroup:
    """Consecutive nodes that run in one place.

    :param kind: ``cpu`` (a Ray task) or ``model`` (an actor pool).
    :param nodes: node ids, in plan order (a CPU group may be empty: it only reads, or only writes).
    :param first: this group reads and decodes the items.
    :param last: this group encodes, writes the outputs and journals the ledger rows.
    """

    kind: Literal["cpu", "model"]
    nodes: tuple[str, ...]
    first: bool = False
    last: bool = False

    @property
    def name(self) -> str:
        label = "+".join(self.nodes) if self.nodes else ("read" if self.first else "write")
        return f"{self.kind}[{label}]"


def stage_groups(plan: Plan) -> tuple[StageGroup, ...]:
    """Cut the plan into groups; the first and last are always CPU groups (reading, writing)."""
    cut: list[tuple[Literal["cpu", "model"], list[str]]] = []
    for node in plan.nodes:
        kind: Literal["cpu", "model"] = "model" if node.holds_model else "cpu"
        if kind == "cpu" and cut and cut[-1][0] == "cpu":
            cut[-1][1].append(node.id)
        else:
            cut.append((kind, [node.id]))
    if not cut or cut[0][0] == "model":
        cut.insert(0, ("cpu", []))
    if cut[-1][0] == "model":
        cut.append(("cpu", []))
    last = len(cut) - 1
    return tuple(
        StageGroup(kind, tuple(nodes), first=index == 0, last=index == last) for index, (kind, nodes) in enumerate(cut)
    )


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One runner batch, as a Ray Data row: ``id`` is unique in the run; ``units`` the pickled work units."""

    id: int
    units: bytes
    items: int

    def row(self) -> dict[str, object]:
        return {"chunk": self.id, "units": self.units}


def windows(batches: Iterable[list[WorkUnit]], window_items: int) -> Iterator[list[Chunk]]:
    """Group the runner's batches into windows of about ``window_items`` items, each batch pickled into a chunk.

    Pulled lazily: the driver holds the work-unit rows of the windows in flight, never the whole catalog.
    """
    window: list[Chunk] = []
    items = 0
    for index, batch in enumerate(batches):
        window.append(Chunk(index, pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL), len(batch)))
        items += len(batch)
        if items >= window_items:
            yield window
            window, items = [], 0
    if window:
        yield window


def choose_blocks(chunks: int, items: int, cpus: float, spec: RaySpec) -> int:
    """Blocks for a window of ``chunks`` chunks holding ``items`` items on a cluster of ``cpus`` CPUs.

    ``execution.ray.blocks`` wins when set. Otherwise: at least :data:`BLOCKS_PER_CPU` blocks per CPU task slot (the
    tail of the run, when some slots are idle, is then a fraction of a block), and no block over
    ``max_items_per_block`` items; never more blocks than chunks (a chunk is not split).
    """
    if chunks <= 0:
        return 1
    if spec.blocks is not None:
        return max(1, min(spec.blocks, chunks))
    slots = max(1, math.floor(cpus / spec.num_cpus))
    wanted = max(BLOCKS_PER_CPU * slots, math.ceil(items / spec.max_items_per_block))
    return max(1, min(wanted, chunks))
