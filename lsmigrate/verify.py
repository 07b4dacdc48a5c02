"""Compare every source file with its destination object: missing, different, extra, or verified (and how)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import basis
from .compare import compare, unchanged
from .journal import Journal
from .plan import Action, Do
from .uploads.base import StoreError

OK = "ok"
MISSING = "missing"
DIFFERENT = "different"
EXTRA = "extra"
UNCHECKED = "unchecked"  # the server holds no checksum of its own to compare with (use --download)
ERROR = "error"
SKIPPED = "skipped"  # not a regular file (FIFO, socket, link to a directory): never copied
FILE_STATUSES = (OK, MISSING, DIFFERENT, UNCHECKED, ERROR, SKIPPED)  # one of these per planned file


@dataclass
class VerifyReport:
    counts: Counter = field(default_factory=Counter)
    bases: Counter = field(default_factory=Counter)  # verified files per basis (lsmigrate.basis)
    recalled: int = 0  # of the verified, how many on the journal's word (verified earlier, ETag unchanged)
    planned: int = 0  # source files the plan held: each must end in exactly one status
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (status, rel, detail)
    fatal: str | None = None

    def add(self, status: str, rel: str, how: str, detail: str = "") -> None:
        self.counts[status] += 1
        if status == OK:
            self.bases[how] += 1
        elif len(self.problems) < 10_000:
            self.problems.append((status, rel, detail or how))

    @property
    def unaccounted(self) -> int:
        return self.planned - sum(self.counts[s] for s in FILE_STATUSES)

    @property
    def clean(self) -> bool:
        return (self.fatal is None and self.unaccounted == 0
                and not any(self.counts[s] for s in (MISSING, DIFFERENT, UNCHECKED, ERROR)))


def verify(actions: Iterable[Action], store, journal: Journal, *, download: bool = False, workers: int = 16,
           chunk_size: int = 16 * 1024 * 1024, record: bool = True) -> VerifyReport:
    """Journal-verified files whose object still has the recorded ETag count as verified without re-reading
    (on the basis recorded then); with `download` every object is read back and hashed."""
    report = VerifyReport()
    lock = threading.Lock()
    gate = threading.BoundedSemaphore(workers * 2)

    def check(action: Action) -> None:
        local, remote = action.local, action.remote
        try:
            before = os.stat(local.path)
            result = compare(local, remote, store, chunk_size=chunk_size, download=download)
            if result.same and record and unchanged(before, os.stat(local.path)):
                journal.mark_verified(local.rel, before.st_size, before.st_mtime_ns, result.md5, remote.etag,
                                      result.basis)
            status = {True: OK, False: DIFFERENT, None: UNCHECKED}[result.same]
            if status == DIFFERENT and record and action.record is not None and action.record.verified:
                journal.forget(local.rel)  # the journal must no longer vouch for it (copy --no-traverse trusts it)
            detail = _UNCHECKED_DETAIL.get(result.basis, "") if status == UNCHECKED else ""
            outcome = (status, local.rel, result.basis, detail)
        except StoreError as exc:
            with lock:
                if exc.fatal:
                    report.fatal = str(exc)
            outcome = (ERROR, local.rel, "", str(exc))
        except OSError as exc:
            outcome = (ERROR, local.rel, "", f"cannot read: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - a check that broke is an error for that file, never a gap
            outcome = (ERROR, local.rel, "", f"internal error: {exc.__class__.__name__}: {exc}")
        finally:
            gate.release()
        with lock:
            report.add(*outcome)

    with ThreadPoolExecutor(workers, thread_name_prefix="lsmigrate-verify") as pool:
        try:
            for action in actions:
                if report.fatal:
                    break
                settled = _settled(action, download)
                if settled is not None and settled[0] in (MISSING, DIFFERENT) and record and action.record \
                        and action.record.verified:
                    journal.forget(action.rel)  # found wanting: the next copy sends it, even with --no-traverse
                if settled is None:
                    gate.acquire()
                    pool.submit(check, action)
                with lock:
                    report.planned += action.do is not Do.EXTRA
                    if settled is not None:
                        report.add(*settled)
                        report.recalled += action.do is Do.SKIP
        except StoreError as exc:
            report.fatal = str(exc)
    return report


def _settled(action: Action, download: bool) -> tuple[str, str, str, str] | None:
    """The outcome of a file the plan already decided (status, rel, basis, detail), or None to check it."""
    if action.do is Do.EXTRA:
        return EXTRA, action.rel, "listing", ""
    if action.do is Do.PROBLEM:
        return ERROR if action.error else SKIPPED, action.rel, "", action.reason
    if action.do is Do.COPY:
        return MISSING if action.remote is None else DIFFERENT, action.rel, "size" if action.remote else "listing", action.reason
    if action.do is Do.SKIP and not download:
        return OK, action.rel, (action.record and action.record.basis) or basis.UNRECORDED, ""
    return None


_UNCHECKED_DETAIL = {
    basis.CLIENT_MD5: "only a checksum the uploader wrote matches (the server computed none); --download to check",
    basis.NONE: "the server holds no checksum of its own for it; --download to check",
}
