"""glibc's allocator told to keep freed memory: a training step frees and re-allocates the same large
activation buffers every step.

By default glibc serves blocks over 128 KiB-32 MiB with fresh `mmap` calls and hands them back on `free`, so
every step faults its activations in again, page by page, and returns them; on this VM that cost vdsr-x2
and srcnn-x2 38-47% of their training speed (benchmarks/train_speed.py: 0.53-0.62 of a bare loop whose
process keeps its memory, 0.92-1.03 with this setting). Peak memory is unchanged: the same buffers are
reused instead of being returned and requested again. DataLoader workers, forked later, inherit it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_UP_TO = 2**31 - 1  # bytes of free memory at the top of the heap kept rather than trimmed (the int max)


def keep_freed_memory() -> bool:
    """Turn off mmap-per-allocation and heap trimming; True where it applied (Linux with glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt: keep their defaults
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO))
    if not applied:
        log.info("mallopt refused; training keeps the allocator's defaults")
    return applied
