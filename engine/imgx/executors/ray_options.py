"""The Ray executor's options: the recipe's ``execution.ray`` section, declared by the executor itself
(``RayExecutor.Options``), so the core recipe schema knows nothing of Ray. None of them change the output bytes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RayRuntimeEnvSpec", "RaySpec"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RayRuntimeEnvSpec(_Options):
    """How the run's code reaches the workers of a Ray cluster (a Ray runtime environment)."""

    ship_code: bool = Field(
        default=True,
        description="When joining a cluster: send imgx and the plan's plugin packages to the workers as py_modules, "
        "so they run the driver's code; turn off where the same imgx is installed on every node.",
    )
    pip: list[str] = Field(
        default_factory=list, description="Extra pip requirements installed for the workers (runtime_env pip)."
    )
    working_dir: str | None = Field(
        default=None, description="A local folder uploaded to the workers as their working directory."
    )
    env_vars: dict[str, str] = Field(default_factory=dict, description="Environment variables set in the workers.")


class RaySpec(_Options):
    """Options of the Ray executor (``execution.executor: ray``). None of them change the output bytes."""

    address: str | None = Field(
        default=None,
        description="Ray cluster to join ('host:6379', 'ray://host:10001', 'auto'); none: RAY_ADDRESS if set, "
        "else a local Ray is started for the run (with execution.workers CPUs) and shut down after it.",
    )
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs reserved by each CPU task (a fused CPU stage group).")
    blocks: int | None = Field(
        default=None,
        ge=1,
        description="Blocks the catalog is split into; none: chosen from the catalog size and the cluster's CPUs.",
    )
    max_items_per_block: int = Field(
        default=256, ge=1, description="Largest block, in items, when blocks are chosen automatically."
    )
    window_items: int = Field(
        default=16384,
        ge=1,
        description="Catalog items handed to Ray per dataset; the driver holds at most two windows of work-unit "
        "rows (never images), so its memory does not grow with the catalog.",
    )
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Actors per model stage (batchable or GPU stage); none: one per GPU when num_gpus > 0, else 1.",
    )
    num_gpus: float | None = Field(
        default=None,
        ge=0,
        description="GPUs per model-stage actor; none: 1 when execution.device resolves to cuda, else 0.",
    )
    actor_num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved by each model-stage actor.")
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Items per call of a model-stage actor; none: execution.batch_size. Rounded up to whole "
        "batches of execution.batch_size.",
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        description="Times a task, or an actor call, is retried when its worker process dies; the journal makes a "
        "retry redo only the items the dead worker had not recorded.",
    )
    runtime_env: RayRuntimeEnvSpec = Field(
        default_factory=RayRuntimeEnvSpec, description="How the run's code reaches the workers of a cluster."
    )
