"""glibc heap policy for worker processes: what a long-lived process holding models and full-size images needs.

Both helpers do nothing off Linux or on another C library (musl has its own policy).
"""

from __future__ import annotations

import ctypes
import functools
import sys

__all__ = ["HEAP_SLACK", "LARGE_ALLOCATION", "return_large_frees", "trim_heap"]

#: Allocations from this size up get their own pages from the kernel (glibc's ``M_MMAP_THRESHOLD``), given back
#: when freed. glibc's default raises this threshold to the size of each large block freed, up to 32 MiB, after which
#: the full-size copies of a 4000 px photo (12-48 MiB each) land on the heap and stay resident: a batch of four 4000 px
#: photos through marketplace-white peaked at 1,066 MiB and kept 726 MiB between batches, 945 / 573 MiB with a fixed
#: threshold. Not lower: every block from the kernel is fresh pages, faulted in on first touch, and a 1024 px photo's
#: arrays (3 MiB as uint8 RGB) are made and dropped several times per item. Decoding, resizing, CLAHE and
#: JPEG-encoding a 1024 px photo took 11.3 ms at a 256 KiB threshold (3,500 page faults), 10.2 ms with glibc's default
#: policy, 8.3 ms at 4 MiB with 8 MiB of :data:`HEAP_SLACK`, and 7.1-7.3 ms (no page faults) at 6 or 8 MiB with 12 or
#: 16 MiB. 6 MiB with 12: the 4000 px marketplace-white run in one process peaked at 947 MiB (927 at 256 KiB, 992 at
#: 8 and 16 MiB).
LARGE_ALLOCATION = 6 * 1024 * 1024
#: Free memory at the top of the heap kept for the next allocations instead of given back (``M_TRIM_THRESHOLD``):
#: glibc's default of 128 KiB, which a fixed mmap threshold leaves in place, gave every item's buffers back and
#: faulted them in again.
HEAP_SLACK = 12 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers in glibc's malloc.h
_M_TRIM_THRESHOLD = -1


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
    """Fix glibc's mmap threshold at :data:`LARGE_ALLOCATION` in this (worker) process, so freed full-size image
    buffers go back to the system, and keep :data:`HEAP_SLACK` of free heap for the smaller ones."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION)
        libc.mallopt(_M_TRIM_THRESHOLD, HEAP_SLACK)


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim(0)``), after a one-off burst of small
    allocations: an ONNX Runtime session parses its model into many small buffers and frees them, which left
    Real-ESRGAN's trunk session 170 MiB resident for 67 MB of weights, 86 MiB after a trim."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
