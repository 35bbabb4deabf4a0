"""What a run did: the counts, timings and failures ``imgx run`` prints and returns."""

from __future__ import annotations

import dataclasses

from .io.leftout import LeftOut
from .ledger import LedgerRow, Location, StatePaths

__all__ = ["RunSummary"]


@dataclasses.dataclass
class RunSummary:
    """What a run did. ``exit_code`` is 0 within the failure budget, 1 over it."""

    recipe: str
    run_id: str
    out_dir: Location
    executor: str
    workers: int
    items: int = 0
    items_done: int = 0
    items_failed: int = 0
    items_skipped: int = 0
    outputs_ok: int = 0
    outputs_failed: int = 0
    outputs_skipped: int = 0
    outputs_flagged: int = 0
    flag_counts: dict[str, int] = dataclasses.field(default_factory=dict)  # "node:flag" -> outputs
    seconds: float = 0.0
    stage_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    failure_budget: float = 0.0
    max_failures: float | int = 0.0
    failures: list[LedgerRow] = dataclasses.field(default_factory=list)
    dry_run: bool = False
    left_out: LeftOut | None = None  # what a folder catalog's patterns left out of its folder
    variants_manifest: int | None = None  # rows of _imgx/variants.parquet, written when the recipe has variants

    @property
    def ledger_dir(self) -> Location:
        return StatePaths(self.out_dir).ledger

    @property
    def variants_path(self) -> Location:
        """The variants manifest (Parquet; a CSV beside it), when ``variants_manifest`` says one was written."""
        return StatePaths(self.out_dir).variants_manifest(".parquet")

    @property
    def images_per_second(self) -> float:
        """Items processed (done or failed, not skipped) per second of the run."""
        return (self.items_done + self.items_failed) / self.seconds if self.seconds > 0 else 0.0

    @property
    def within_budget(self) -> bool:
        return self.items_failed <= self.failure_budget

    @property
    def exit_code(self) -> int:
        return 0 if self.within_budget else 1
