"""Keep large request buffers from pinning memory after they are freed.

glibc raises its mmap threshold each time a large block is freed, after which 16 MiB part buffers come
from per-thread heaps that are rarely given back: with 16 threads the resident size grows to several
times the data in flight. A fixed threshold keeps every buffer of 1 MiB or more in its own mapping,
returned to the system on free. (Measured: 2 x 256 MiB copy, peak RSS 471 -> 328 MiB.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_MMAP_THRESHOLD = -3


@functools.cache  # one setting for the whole process: the Dask workers build an Engine per batch
def release_large_buffers(threshold: int = 1 << 20) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return False
