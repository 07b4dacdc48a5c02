"""How long a copy would take: from stated rates, or from a short real upload (`--probe`)."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

PROBE_DIR = ".lsmigrate-probe"


def estimate(files: int, nbytes: int, *, bytes_per_second: float, files_per_second: float,
             measured: tuple[float, float] | None = None) -> dict:
    """Per-file overhead and bandwidth overlap in a parallel copy, so the larger of the two bounds wins."""
    basis = "assumed; --probe measures"
    if measured:
        bytes_per_second, files_per_second = measured
        basis = "measured by --probe"
    seconds = max(nbytes / bytes_per_second if bytes_per_second else 0.0,
                  files / files_per_second if files_per_second else 0.0)
    return {"seconds": round(seconds, 1), "bytes_per_second": round(bytes_per_second),
            "files_per_second": round(files_per_second, 1), "basis": basis}


def probe(store, settings, *, small_files: int = 32, small_size: int = 64 * 1024,
          large_size: int = 8 * 1024 * 1024) -> tuple[float, float]:
    """Upload (then delete) a few small objects in parallel and one larger one; returns (bytes/s, files/s)."""
    payload = os.urandom(small_size)
    md5 = hashlib.md5(payload).digest()
    names = [f"{PROBE_DIR}/small-{i}" for i in range(small_files)]
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(settings.transfers) as pool:
            list(pool.map(lambda name: store.put(name, payload, md5), names))
        files_per_second = small_files / max(time.monotonic() - started, 1e-6)
        large = os.urandom(large_size)
        started = time.monotonic()
        store.put(f"{PROBE_DIR}/large", large, hashlib.md5(large).digest())
        bytes_per_second = large_size / max(time.monotonic() - started, 1e-6)
    finally:
        for name in [*names, f"{PROBE_DIR}/large"]:
            try:
                store.delete(name)
            except Exception:  # noqa: BLE001 - a probe object left behind is harmless; keep going
                pass
    return bytes_per_second, files_per_second
