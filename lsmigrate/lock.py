"""One run per destination: an flock'd file whose content names the holder.

The kernel drops an flock when its process dies, however it dies, so a lock left by a killed run is
never stale for long: the next run takes it over and says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path


class LockHeld(Exception):
    """Another run holds the destination (one line: who, since when)."""


class DestinationLock:
    def __init__(self, state_dir: Path, destination: str) -> None:
        name = hashlib.sha256(destination.encode()).hexdigest()[:16]
        self.path = state_dir / "locks" / f"{name}.lock"
        self.destination = destination
        self.took_over: dict | None = None
        self._fd: int | None = None

    def acquire(self) -> DestinationLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            since = holder.get("since")
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "an unknown time"
            raise LockHeld(f"another lsmigrate run (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                           f"since {when}) is working on {self.destination}; try again when it ends") from None
        previous = _read_holder(fd)
        if previous.get("pid"):
            self.took_over = previous  # its process is gone: the kernel released its flock
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                                  "destination": self.destination}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DestinationLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (ValueError, OSError):
        return {}
