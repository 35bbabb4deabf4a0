"""Executors: where batches of a plan run. Write one by subclassing :class:`Executor` and returning it from an
``imgx_executors`` hook; the built-in ``local`` and ``ray`` executors register the same way."""

from .base import Executor, ExecutorOptions
from .processor import BatchProcessor, BatchResult, RunSpec, WorkUnit

__all__ = ["BatchProcessor", "BatchResult", "Executor", "ExecutorOptions", "RunSpec", "WorkUnit"]
