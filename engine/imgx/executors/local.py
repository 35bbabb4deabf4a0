"""The default executor: in-process with one worker, a process pool with more.

Streaming and bounded: at most ``2 x workers`` batches are in flight, so memory depends on batch size and workers,
never on catalog size. Each worker process builds its stages once and writes its own ledger journal.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import pickle
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .._registry import DIR_PLUGIN_PREFIX, PluginConfig, load_registry
from ..errors import ImgxError
from ..hookspecs import hookimpl
from ..ledger import StatePaths
from .base import Executor
from .liveness import hold_worker_lock, process_identity, watch_main_process
from .processor import BatchProcessor, BatchResult, WorkUnit

__all__ = ["LocalExecutor"]

_PROCESSOR: BatchProcessor | None = None
_INIT_ERROR: ImgxError | None = None


def _limit_threads() -> None:
    """One worker per core: keep each library's own thread pool from oversubscribing the machine."""
    import cv2

    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent dies (even by SIGKILL), so no orphan keeps processing,
    and writing, after its run is gone and a ``--resume`` may have started. Under forkserver the parent is the
    server, which exits as soon as the run's process is gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _init_worker(plugin_config: PluginConfig, spec_bytes: bytes, main: tuple[int, str]) -> None:
    global _PROCESSOR, _INIT_ERROR
    _die_with_parent()
    watch_main_process(main)
    _limit_threads()
    try:
        load_registry(plugin_config)  # one-off plugin modules must be importable before the plan is unpickled
        spec = pickle.loads(spec_bytes)
        hold_worker_lock(StatePaths(spec.out_dir).workers_lock)
        _PROCESSOR = BatchProcessor(spec, worker=f"w{os.getpid()}")
    except ImgxError as exc:
        _INIT_ERROR = exc  # raised from the first batch, so the run fails with this message
        return
    except Exception as exc:
        _INIT_ERROR = ImgxError(f"worker process failed to start: {type(exc).__name__}: {exc}")
        return
    # Compact this worker's ledger journal into Parquet when the pool shuts the process down.
    multiprocessing.util.Finalize(_PROCESSOR, _PROCESSOR.close, exitpriority=10)


def _process(units: list[WorkUnit]) -> BatchResult:
    if _PROCESSOR is None:
        raise _INIT_ERROR or ImgxError("worker process was not initialised")
    return _PROCESSOR(units)


class LocalExecutor(Executor):
    """In-process (``workers: 1``) or a pool of worker processes on this machine."""

    name = "local"

    def run(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        if self.options.workers <= 1:
            self._run_inline(batches, on_result)
        else:
            self._run_pool(batches, on_result)

    def _run_inline(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        processor = BatchProcessor(self.spec, worker="w0")
        try:
            for batch in batches:
                on_result(processor(batch))
        finally:
            processor.close()

    def _run_pool(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        workers = self.options.workers
        context = self._context()
        spec_bytes = pickle.dumps(self.spec)
        pending: set[Future[BatchResult]] = set()
        iterator = iter(batches)
        exhausted = False
        try:
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self.options.plugin_config, spec_bytes, process_identity(os.getpid())),
            ) as pool:
                while True:
                    while not exhausted and len(pending) < 2 * workers:
                        batch = next(iterator, None)
                        if batch is None:
                            exhausted = True
                        else:
                            pending.add(pool.submit(_process, batch))
                    if not pending:
                        break
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        on_result(future.result())
        except BrokenProcessPool as exc:
            raise ImgxError(
                "a worker process died (killed, or out of memory); the items it finished are in the ledger: "
                "re-run with --resume to finish the rest"
            ) from exc

    def _context(self) -> multiprocessing.context.BaseContext:
        """forkserver by default: workers fork from a clean, single-threaded server rather than from this process,
        whose OpenCV / OpenMP thread pools (used by an earlier in-process run, a notebook, a test) would deadlock a
        forked child. The server preloads the heavy modules once, so each worker starts in milliseconds."""
        method = self.options.start_method
        if method is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            stage_modules = [n.stage.__module__ for n in self.spec.plan.nodes]
            preload = [
                "imgx.executors.local",
                "cv2",
                *(m for m in stage_modules if not m.startswith(DIR_PLUGIN_PREFIX)),
            ]
            context.set_forkserver_preload(list(dict.fromkeys(preload)))
        return context


@hookimpl
def imgx_executors() -> list[type[Executor]]:
    return [LocalExecutor]
