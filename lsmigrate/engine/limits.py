"""What a run may hold and send at once: the --bwlimit rate, the bytes in flight, the reused part buffers."""

from __future__ import annotations

import threading
import time

from ..stores.base import StoreError
from ..units import MiB
from .sizes import Settings

# Bytes of file data in flight at once, whatever --transfers x --chunk-size say: the HTTP stack holds
# about one more copy of each request body, so this keeps the process near 2.5x this figure.
MEMORY_BUDGET = 128 * MiB


def bytes_in_flight(settings: Settings) -> int:
    """The byte budget of a run: every transfer's chunk, within MEMORY_BUDGET, and never below one whole file
    sent in one request."""
    return max(min(settings.transfers * settings.chunk_size, MEMORY_BUDGET), settings.multipart_threshold)


class RateLimit:
    """--bwlimit: callers take bytes before sending them; the sum stays under `rate` bytes per second.

    The wait is on `stop`, not a sleep: at 50 KiB/s one 5 MiB part waits 100 s, and Ctrl-C must not."""

    def __init__(self, rate: int, stop: threading.Event | None = None) -> None:
        self._rate = rate
        self._stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int) -> None:
        """Returns when `n` bytes may go; raises StoreError if the run stops meanwhile.

        The wait lasts until the time these bytes take at the rate has passed: waiting only for the bytes
        before them let the first request of a run (often a whole file in one PUT) go unthrottled."""
        if self._rate <= 0 or n <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + n / self._rate
            until = self._next
        if self._stop.wait(until - now):
            raise StoreError("not sent: run stopped")


class BufferPool:
    """Part buffers kept for the next part instead of fresh bytes for each read.

    A fresh 16 MiB bytes object is a new mapping (see memory.py), and the kernel faults in and zeroes its
    4,096 pages as pread fills it: measured on 2 x 256 MiB, those faults were the largest system-CPU item
    (about 0.35 s of 1.0 s). Buffers are handed out only inside the byte budget and kept up to `limit`
    bytes, so the pool holds no more than the budget itself.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if len(buf) == size:
                    return self._free.pop(i)
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        with self._lock:
            if sum(map(len, self._free)) + len(buf) <= self._limit:
                self._free.append(buf)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


class ByteBudget:
    """Caps the bytes held in memory by requests in flight (one oversize request may always go alone)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def acquire(self, n: int) -> None:
        with self._cond:
            while self._used and self._used + n > self._limit:
                self._cond.wait()
            self._used += n

    def release(self, n: int) -> None:
        with self._cond:
            self._used -= n
            self._cond.notify_all()
