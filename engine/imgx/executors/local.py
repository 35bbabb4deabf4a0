"""The default executor: in-process with one worker, a process pool with more.

Streaming and bounded: at most ``2 x workers`` batches are in flight, so memory depends on batch size and workers,
never on catalog size. Each worker process builds its stages once and writes its own ledger journal.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import ImgxError
from ..hookspecs import hookimpl
from ..ledger import StatePaths
from ..registry import PluginConfig, is_dir_plugin, load_registry
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

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _init_worker(plugin_config: PluginConfig, spec_bytes: bytes, main: tuple[int, str]) -> None:
    global _PROCESSOR, _INIT_ERROR
    # Ctrl-C reaches the whole process group; the run's main process alone decides how to stop (finish what is in
    # flight, cancel the rest), so a worker never dies mid-batch from it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    watch_main_process(main)
    _limit_threads()
    try:
        # loaded before the plan is unpickled, so one-off plugin modules are importable; stages look names up in it
        registry = load_registry(plugin_config)
        spec = pickle.loads(spec_bytes)
        paths = StatePaths(spec.out_dir)
        if paths.local:  # an object-store output has no temp files for a later run's cleanup to race
            hold_worker_lock(paths.workers_lock)
        _PROCESSOR = BatchProcessor(spec, worker=f"w{os.getpid()}", registry=registry)
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
        registry = self.registry or load_registry(self.options.plugin_config)
        processor = BatchProcessor(self.spec, worker="w0", registry=registry)
        try:
            for batch in batches:
                on_result(processor(batch))
        finally:
            processor.close()

    def _run_pool(self, batches: Iterable[list[WorkUnit]], on_result: Callable[[BatchResult], None]) -> None:
        workers = self.options.workers
        method = self._start_method()
        context = self._context(method)
        spec_bytes = pickle.dumps(self.spec)
        if method == "fork":
            _warm_arrow()
        pending: set[Future[BatchResult]] = set()
        iterator = iter(batches)
        exhausted = False
        try:
            with (
                _opencv_quiesced(method == "fork"),
                ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(self.options.plugin_config, spec_bytes, process_identity(os.getpid())),
                ) as pool,
            ):
                while True:
                    while not exhausted and len(pending) < 2 * workers:
                        batch = next(iterator, None)
                        if batch is None:
                            exhausted = True
                        else:
                            pending.add(pool.submit(_process, batch))
                    if not pending:
                        break
                    try:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    except KeyboardInterrupt:
                        # Batches not started are cancelled; those in flight finish and are recorded (bounded by
                        # 2 x workers batches), so the ledger says exactly what was done.
                        for future in pending:
                            future.cancel()
                        for future in wait(pending).done:
                            if not future.cancelled() and future.exception() is None:
                                on_result(future.result())
                        raise
                    for future in done:
                        on_result(future.result())
        except BrokenProcessPool as exc:
            raise ImgxError(
                "a worker process died (killed, or out of memory); the items it finished are in the ledger: "
                "re-run with --resume to finish the rest"
            ) from exc

    def _start_method(self) -> str:
        """``execution.start_method``, else: fork for plans of CPU stages (workers start at once and share the parent's
        imported modules), forkserver for plans with a model stage (``Node.holds_model``), whose CUDA or OpenMP state
        must never be forked; spawn where neither exists."""
        if self.spec.plan.settings.start_method:
            return self.spec.plan.settings.start_method
        available = multiprocessing.get_all_start_methods()
        if not self.spec.plan.holds_model and "fork" in available and sys.platform.startswith("linux"):
            return "fork"
        return "forkserver" if "forkserver" in available else "spawn"

    def _context(self, method: str) -> multiprocessing.context.BaseContext:
        context = multiprocessing.get_context(method)
        if method == "forkserver":  # the server imports the heavy modules once; each worker forks from it ready
            importable = [n.stage.__module__ for n in self.spec.plan.nodes]
            importable = [m for m in importable if not is_dir_plugin(m)]  # loaded by path instead
            context.set_forkserver_preload(list(dict.fromkeys(["imgx.executors.local", "cv2", *importable])))
        return context


def _warm_arrow() -> None:
    """pyarrow imports pandas on its first conversion of Python objects (0.2-0.5 s). Done once here, forked workers
    inherit it instead of each paying it when they compact their ledger journal at shutdown (the whole pool waits)."""
    import pyarrow as pa

    pa.array([0])


@contextlib.contextmanager
def _opencv_quiesced(active: bool) -> Iterator[None]:
    """OpenCV's thread pool, once used in this process (an earlier in-process run, a notebook, a test), deadlocks a
    forked child on its first OpenCV call. With one thread the pool holds no threads, so forking is safe; the old
    setting is restored when the pool is gone. This process runs no stage while its workers do."""
    if not active:
        yield
        return
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


@hookimpl
def imgx_executors() -> list[type[Executor]]:
    return [LocalExecutor]
