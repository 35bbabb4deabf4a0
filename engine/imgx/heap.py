"""glibc heap policy for worker processes: what a long-lived process holding models and full-size images needs.

Both helpers do nothing off Linux or on another C library (musl has its own policy).
"""

from __future__ import annotations

import ctypes
import functools
import sys

__all__ = ["LARGE_ALLOCATION", "return_large_frees", "trim_heap"]

#: Allocations from this size up get their own pages from the kernel (glibc's ``M_MMAP_THRESHOLD``), given back
#: when freed. glibc's default raises this threshold to the size of each large block freed, up to 32 MiB, after which
#: the full-size copies of a 4000 px photo (12-48 MiB each) land on the heap and stay resident: a batch of four 4000 px
#: photos through marketplace-white peaked at 1,066 MiB and kept 726 MiB between batches, 945 / 573 MiB with this.
LARGE_ALLOCATION = 256 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another libc
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def return_large_frees() -> None:
    """Fix glibc's mmap threshold at :data:`LARGE_ALLOCATION` in this (worker) process, so freed image buffers go back
    to the system."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION)


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim(0)``), after a one-off burst of small
    allocations: an ONNX Runtime session parses its model into many small buffers and frees them, which left
    Real-ESRGAN's trunk session 170 MiB resident for 67 MB of weights, 86 MiB after a trim."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
