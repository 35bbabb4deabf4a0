"""The Ray executor: the same plan as the local executor, on a local Ray or a Ray cluster, through Ray Data.

- Connecting: ``execution.ray.address`` (``imgx run --address``), else ``RAY_ADDRESS``, joins a cluster; with
  neither, a local Ray with ``execution.workers`` CPUs is started for the run and shut down after it. A program that
  has already called ``ray.init()`` (a notebook, the benchmarks, the tests) runs on its Ray, which is left running.
- Code on the workers: joining a cluster, imgx and the plan's plugin packages are sent as the job's ``py_modules``
  (``execution.ray.runtime_env.ship_code``); otherwise the nodes need the same imgx installed. ``--plugins-dir``
  folders always travel in the payload (:class:`imgx.registry.ShippedDir`), so a node needs no copy of them.
- Work: the runner's batches become chunks (one Ray Data row each) grouped into windows; each window is a
  ``from_items`` dataset with a block count chosen from its size and the cluster's CPUs, mapped through the plan's
  stage groups (:mod:`imgx.executors.ray_layout`): CPU groups as fused tasks, model stages as actor pools. Workers
  write the outputs and the ledger as chunks finish; the driver only receives each chunk's rows, for progress and
  the summary.

Ray is imported only when a run starts (here and in the workers' :mod:`imgx.executors.ray_worker`), never by
``import imgx``: a missing Ray is an :class:`ImgxError` naming the extra to install.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import queue
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from ..errors import ImgxError
from ..hookspecs import hookimpl
from ..io import fs
from ..plan import Plan
from ..registry import is_dir_plugin
from .base import Executor
from .processor import BatchResult, WorkUnit
from .ray_layout import Chunk, StageGroup, choose_blocks, stage_groups, windows
from .ray_options import RaySpec
from .ray_worker import ModelGroup, Payload, chunk_markers, run_cpu_group

__all__ = ["RayExecutor", "import_ray"]

_MISSING = "the Ray executor needs Ray: pip install 'imgx[ray]'"
_QUIET_LOGGERS = ("ray", "ray.data")
_IMGX_ERROR_LINE = re.compile(r"^imgx\.errors\.\w+: (.+)$", re.MULTILINE)


def import_ray() -> ModuleType:
    """``ray`` with Ray Data, or :class:`ImgxError` saying which extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImgxError(f"{_MISSING} (import failed: {exc})") from exc
    return ray


class RayExecutor(Executor):
    """Runs the plan with Ray Data; see the module docstring."""

    name = "ray"
    Options = RaySpec

    @property
    def settings(self) -> RaySpec:
        """The validated ``execution.ray`` section, as the plan carries it."""
        return self.spec.plan.settings.executor_options

    def run(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        ray = import_ray()
        groups = stage_groups(self.spec.plan)
        payload = Payload(
            spec_bytes=pickle.dumps(self.spec),
            plugin_config=self.options.plugin_config.with_shipped(),  # --plugins-dir folders travel to every node
            run_id=self.spec.run_id,
            out_dir=str(self.spec.out_dir),
            groups=groups,
        )
        markers = chunk_markers(self.spec.out_dir, self.spec.run_id)
        try:
            with _connected(ray, self.settings, self.options.workers, self.spec.plan), _quiet_ray_data(ray):
                cpus = float(ray.cluster_resources().get("CPU", 1.0))
                gpus = float(ray.cluster_resources().get("GPU", 0.0))
                build = lambda window: self._dataset(ray, window, groups, payload, cpus, gpus)  # noqa: E731
                for result in _stream(build, windows(batches, self.settings.window_items)):
                    on_result(result)
        except ImgxError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            raise _run_error(exc) from exc
        finally:
            with contextlib.suppress(ImgxError):  # left-over markers are harmless: named after this run's id
                fs.delete_tree(markers.rsplit("/", 1)[0])

    def _dataset(
        self,
        ray: ModuleType,
        window: list[Chunk],
        groups: tuple[StageGroup, ...],
        payload: Payload,
        cpus: float,
        gpus: float,
    ) -> Any:
        """The Ray Data pipeline of one window: ``from_items`` with chosen blocks, then one map per stage group."""
        settings = self.settings
        items = sum(chunk.items for chunk in window)
        blocks = choose_blocks(len(window), items, cpus, settings)
        dataset = ray.data.from_items([chunk.row() for chunk in window], override_num_blocks=blocks)
        chunk_size = max(1, self.spec.batch_size)
        for index, group in enumerate(groups):
            if group.kind == "cpu":
                dataset = _map(
                    dataset,
                    run_cpu_group,
                    fn_kwargs={"payload": payload, "index": index},
                    batch_size=None,  # a whole block per call: one lock, one ledger part per call
                    num_cpus=settings.num_cpus,
                    max_retries=settings.max_retries,
                )
                continue
            num_gpus = (
                settings.num_gpus if settings.num_gpus is not None else (1.0 if self.spec.device == "cuda" else 0)
            )
            if num_gpus and gpus < num_gpus:
                raise ImgxError(
                    f"got execution.ray.num_gpus={num_gpus:g} for model stage {'+'.join(group.nodes)}, but the Ray "
                    f"cluster has {gpus:g} GPU(s); set execution.ray.num_gpus=0 (or execution.device=cpu) to run it "
                    "on CPUs, or join a cluster with GPUs"
                )
            concurrency = settings.concurrency or (max(1, math.floor(gpus / num_gpus)) if num_gpus else 1)
            per_call = settings.batch_size or self.spec.batch_size
            dataset = _map(
                dataset,
                ModelGroup,
                fn_constructor_kwargs={"payload": payload, "index": index, "cpus": settings.actor_num_cpus},
                batch_size=max(1, math.ceil(per_call / chunk_size)),  # rows are chunks of execution.batch_size items
                compute=ray.data.ActorPoolStrategy(size=concurrency),
                num_cpus=settings.actor_num_cpus,
                num_gpus=num_gpus,
                max_restarts=settings.max_retries,
                max_task_retries=settings.max_retries,
            )
        return dataset


def _map(dataset: Any, fn: Any, **options: Any) -> Any:
    """``map_batches`` on ``pyarrow`` batches. Ray 2.60 has no named parameter for task retries and actor restarts
    yet: they go through its remote arguments, whose deprecation warning is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return dataset.map_batches(fn, batch_format="pyarrow", zero_copy_batch=True, **options)


def _stream(build: Callable[[list[Chunk]], Any], chunk_windows: Iterator[list[Chunk]]) -> Iterator[BatchResult]:
    """Each chunk's result, as the datasets of consecutive windows produce them.

    The next window's dataset starts while the current one drains (in a helper thread; results come back to the
    caller's thread through a queue), so the cluster does not idle between windows. At most two windows are held.
    """
    results: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def drain(dataset: Any) -> None:
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                if stop.is_set():
                    return
                for blob in batch.column("result").to_pylist():
                    results.put(("result", pickle.loads(blob)))
            results.put(("done", None))
        except BaseException as exc:  # handed to the caller's thread
            results.put(("error", exc))

    threads: list[threading.Thread] = []
    exhausted, running = False, 0
    try:
        while True:
            while not exhausted and running < 2:
                window = next(chunk_windows, None)  # pulled here, in the caller's thread, only when one can start
                if window is None:
                    exhausted = True
                    break
                thread = threading.Thread(target=drain, args=(build(window),), name="imgx-ray-window", daemon=True)
                thread.start()
                threads.append(thread)
                running += 1
                del window
            if running == 0:
                return
            kind, value = results.get()
            if kind == "result":
                yield value
            elif kind == "done":
                running -= 1
            else:
                raise value
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def _shipped_modules(plan: Plan) -> list[ModuleType]:
    """imgx and the top-level packages of the plan's stages (not ``--plugins-dir`` modules: loaded by path)."""
    names = {"imgx"} | {node.stage.__module__.split(".")[0] for node in plan.nodes}
    return [sys.modules[name] for name in sorted(names) if not is_dir_plugin(name) and name in sys.modules]


def runtime_env(settings: RaySpec, plan: Plan, *, joining: bool) -> dict[str, Any]:
    """The job's Ray runtime environment, from ``execution.ray.runtime_env``."""
    wanted = settings.runtime_env
    env: dict[str, Any] = {}
    if joining and wanted.ship_code:
        env["py_modules"] = _shipped_modules(plan)
    if wanted.pip:
        env["pip"] = list(wanted.pip)
    if wanted.working_dir:
        env["working_dir"] = wanted.working_dir
    if wanted.env_vars:
        env["env_vars"] = dict(wanted.env_vars)
    return env


@contextlib.contextmanager
def _connected(ray: ModuleType, settings: RaySpec, workers: int, plan: Plan) -> Iterator[None]:
    """Use the Ray this process is connected to, else join ``address`` / ``RAY_ADDRESS``, else start a local Ray;
    whatever this function connected is disconnected (a local Ray shut down) when the run ends."""
    if ray.is_initialized():
        yield
        return
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    env = runtime_env(settings, plan, joining=address is not None)
    if env:
        options["runtime_env"] = env
    try:
        if address is None:
            ray.init(address="local", num_cpus=max(1, workers), **options)
        else:
            ray.init(address=address, **options)
    except Exception as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise ImgxError(
            f"could not start or join {where}: {type(exc).__name__}: {exc}. Check execution.ray.address / "
            "--address / RAY_ADDRESS, or leave them unset to start a local Ray"
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_ray_data(ray: ModuleType) -> Iterator[None]:
    """imgx draws its own progress bar and summary: Ray Data's bars and per-dataset log lines are turned off for the
    run (and its per-operator resource reservation, see below), and restored after it."""
    with warnings.catch_warnings():  # reading the context warns about its own deprecated fields
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    saved = (
        context.enable_progress_bars,
        {name: logging.getLogger(name).level for name in _QUIET_LOGGERS},
        context.op_resource_reservation_enabled,
    )
    context.enable_progress_bars = False
    # Ray Data's per-operator resource reservation keeps part of a small cluster for operators that never need it:
    # on 2 CPUs it ran one map task at a time (16 blocks of 0.18 s: 2.8 s instead of 1.5). imgx's pipelines are a
    # chain of fused CPU groups and fixed-size actor pools, which need no reservation to make progress.
    context.op_resource_reservation_enabled = False
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        context.enable_progress_bars = saved[0]
        context.op_resource_reservation_enabled = saved[2]
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def _run_error(exc: BaseException) -> ImgxError:
    """A failed Ray run as an :class:`ImgxError`: the imgx error inside it when there is one (a stage that cannot
    start), else what Ray reported."""
    seen: set[int] = set()
    texts: list[str] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ImgxError):
            return ImgxError(str(current))
        texts.append(str(current))
        pending += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    # Ray may hand back only the worker's traceback as text: the imgx error is its last "imgx.errors.X: ..." line.
    found = [m.group(1) for text in texts for m in _IMGX_ERROR_LINE.finditer(text)]
    if found:
        return ImgxError(found[-1].strip())
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ImgxError(
        f"the Ray run failed: {type(exc).__name__}: {text}. The items it finished are in the ledger: re-run with "
        "--resume to finish the rest"
    )


@hookimpl
def imgx_executors() -> list[type[Executor]]:
    return [RayExecutor]
