"""Compare every source file with its destination object: missing, different, extra, or verified (and how)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .compare import compare, unchanged
from .journal import Journal
from .plan import Action, Do
from .uploads.base import StoreError

OK = "ok"
MISSING = "missing"
DIFFERENT = "different"
EXTRA = "extra"
UNCHECKED = "unchecked"  # the server holds no checksum we can compare (use --download)
ERROR = "error"
SKIPPED = "skipped"  # not a regular file (FIFO, socket, link to a directory): never copied


@dataclass
class VerifyReport:
    counts: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (status, rel, detail)
    fatal: str | None = None

    def add(self, status: str, rel: str, method: str, detail: str = "") -> None:
        self.counts[status] += 1
        if status == OK:
            self.methods[method] += 1
        elif len(self.problems) < 10_000:
            self.problems.append((status, rel, detail or method))

    @property
    def clean(self) -> bool:
        return self.fatal is None and not any(self.counts[s] for s in (MISSING, DIFFERENT, UNCHECKED, ERROR))


def verify(actions: Iterable[Action], store, journal: Journal, *, download: bool = False, workers: int = 16,
           chunk_size: int = 16 * 1024 * 1024, record: bool = True) -> VerifyReport:
    """Journal-verified files whose object still has the recorded ETag count as verified without re-reading;
    with `download` every object is read back and hashed."""
    report = VerifyReport()
    lock = threading.Lock()
    gate = threading.BoundedSemaphore(workers * 2)

    def check(action: Action) -> None:
        local, remote = action.local, action.remote
        try:
            before = os.stat(local.path)
            result = compare(local, remote, store, chunk_size=chunk_size, download=download)
            if result.same and record and unchanged(before, os.stat(local.path)):
                journal.mark_verified(local.rel, before.st_size, before.st_mtime_ns, result.md5, remote.etag)
            status = {True: OK, False: DIFFERENT, None: UNCHECKED}[result.same]
            with lock:
                report.add(status, local.rel, result.method)
        except StoreError as exc:
            with lock:
                if exc.fatal:
                    report.fatal = str(exc)
                report.add(ERROR, local.rel, "", str(exc))
        except OSError as exc:
            with lock:
                report.add(ERROR, local.rel, "", f"cannot read: {exc.strerror or exc}")
        finally:
            gate.release()

    with ThreadPoolExecutor(workers, thread_name_prefix="lsmigrate-verify") as pool:
        try:
            for action in actions:
                if report.fatal:
                    break
                if action.do is Do.EXTRA:
                    report.add(EXTRA, action.rel, "listing")
                elif action.do is Do.PROBLEM:
                    report.add(ERROR if action.error else SKIPPED, action.rel, "", action.reason)
                elif action.do is Do.COPY:
                    status = MISSING if action.remote is None else DIFFERENT
                    report.add(status, action.rel, "size" if action.remote else "listing", action.reason)
                elif action.do is Do.SKIP and not download:
                    report.add(OK, action.rel, "journal+etag")
                else:
                    gate.acquire()
                    pool.submit(check, action)
        except StoreError as exc:
            report.fatal = str(exc)
    return report
