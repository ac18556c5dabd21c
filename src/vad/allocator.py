"""Keep freed memory in the process: glibc's defaults hand every large tensor back to the kernel.

glibc serves allocations above its mmap threshold (128 KiB at first, raised only as large blocks are freed)
with fresh mappings and trims the heap top beyond 128 KiB. A training step frees and reallocates the same
activation buffers every batch, so each one comes back as new zero-filled pages: millions of page faults
per epoch, most of the system time of a CPU run (measured in docs/benchmarks.md). Raising both thresholds
lets the heap reuse them, as PyTorch's tuning guide does with jemalloc or tcmalloc, without a dependency.
Only where the allocator is glibc's (Linux); elsewhere a no-op. Memory use stays the run's high-water mark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest on 64-bit (HEAP_MAX_SIZE / 2); larger blocks are still mmapped
TRIM_THRESHOLD = 2**31 - 1   # never give the heap top back during a run (mallopt takes an int)
# The user's own setting wins: the variables glibc reads at start-up.
_USER_SET = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD")

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); True if they were set.

    Skipped where the allocator is not glibc's, or the user already tuned it (`MALLOC_*_` variables,
    `GLIBC_TUNABLES`, or a preloaded allocator such as jemalloc).
    """
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or any(os.environ.get(k) for k in _USER_SET):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("glibc malloc: mmap threshold %d, trim threshold %d (%s)", MMAP_THRESHOLD, TRIM_THRESHOLD,
              "set" if _done else "refused")
    return _done
