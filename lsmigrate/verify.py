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
from .outcome import FOUND, FOUND_WANTING, FileResult, Outcome
from .plan import Action
from .stores.base import StoreError


@dataclass
class VerifyReport:
    counts: Counter = field(default_factory=Counter)  # files per outcome word (outcome.FOUND, and EXTRA)
    bases: Counter = field(default_factory=Counter)  # verified files per basis (lsmigrate.basis)
    recalled: int = 0  # of the verified, how many on the journal's word (verified earlier, ETag unchanged)
    planned: int = 0  # source files the plan held: each must end in exactly one of outcome.FOUND
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (outcome word, rel, detail)
    fatal: str | None = None

    def add(self, result: FileResult) -> None:
        word = result.outcome.value
        self.counts[word] += 1
        if result.outcome is Outcome.OK:
            self.bases[result.basis] += 1
        elif len(self.problems) < 10_000:
            self.problems.append((word, result.rel, result.reason or result.basis))

    @property
    def unaccounted(self) -> int:
        return self.planned - sum(self.counts[s] for s in FOUND)

    @property
    def clean(self) -> bool:
        return (self.fatal is None and self.unaccounted == 0
                and not any(self.counts[s] for s in FOUND_WANTING))


def verify(actions: Iterable[Action], store, journal: Journal, *, download: bool = False, workers: int = 16,
           chunk_size: int = 16 * 1024 * 1024, record: bool = True) -> VerifyReport:
    """Journal-verified files whose object still has the recorded ETag count as verified without re-reading
    (on the basis recorded then); with `download` every object is read back and hashed."""
    report = VerifyReport()
    lock = threading.Lock()
    gate = threading.BoundedSemaphore(workers * 2)

    def check(action: Action) -> None:
        try:
            result = _compared(action, store, journal, download=download, chunk_size=chunk_size, record=record)
        except StoreError as exc:
            with lock:
                if exc.fatal:
                    report.fatal = str(exc)
            result = _error(action, str(exc))
        except OSError as exc:
            result = _error(action, f"cannot read: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - a check that broke is an error for that file, never a gap
            result = _error(action, f"internal error: {exc.__class__.__name__}: {exc}")
        finally:
            gate.release()
        with lock:
            report.add(result)

    with ThreadPoolExecutor(workers, thread_name_prefix="lsmigrate-verify") as pool:
        try:
            for action in actions:
                if report.fatal:
                    break
                settled = _settled(action, download)
                if settled is not None and settled.outcome in (Outcome.MISSING, Outcome.DIFFERENT) and record \
                        and action.record and action.record.verified:
                    journal.forget(action.rel)  # found wanting: the next copy sends it, even with --no-traverse
                if settled is None:
                    gate.acquire()
                    pool.submit(check, action)
                with lock:
                    report.planned += action.do is not Outcome.EXTRA
                    if settled is not None:
                        report.add(settled)
                        report.recalled += action.do is Outcome.SKIP
        except StoreError as exc:
            report.fatal = str(exc)
    return report


def _compared(action: Action, store, journal: Journal, *, download: bool, chunk_size: int,
              record: bool) -> FileResult:
    """A file checked against its object now: the comparison journaled when it verifies the file."""
    local, remote = action.local, action.remote
    before = os.stat(local.path)
    result = compare(local, remote, store, chunk_size=chunk_size, download=download)
    if result.same and record and unchanged(before, os.stat(local.path)):
        journal.mark_verified(local.rel, before.st_size, before.st_mtime_ns, result.md5, remote.etag, result.basis)
    found = {True: Outcome.OK, False: Outcome.DIFFERENT, None: Outcome.UNCHECKED}[result.same]
    if found is Outcome.DIFFERENT and record and action.record is not None and action.record.verified:
        journal.forget(local.rel)  # the journal must no longer vouch for it (copy --no-traverse trusts it)
    detail = _UNCHECKED_DETAIL.get(result.basis, "") if found is Outcome.UNCHECKED else ""
    return FileResult(local.rel, found, local.size, detail, basis=result.basis, compared_by=action.compared_by)


def _error(action: Action, detail: str) -> FileResult:
    return FileResult(action.rel, Outcome.ERROR, action.local.size, detail, compared_by=action.compared_by)


def _settled(action: Action, download: bool) -> FileResult | None:
    """The outcome of a file the plan already decided, or None to check it."""
    size = action.local.size if action.local is not None else 0
    if action.do is Outcome.EXTRA:
        return FileResult(action.rel, Outcome.EXTRA, 0, basis=basis.LISTING, compared_by=action.compared_by)
    if action.do is Outcome.PROBLEM:
        return FileResult(action.rel, Outcome.ERROR if action.error else Outcome.SKIPPED, size, action.reason)
    if action.do is Outcome.COPY:
        found, how = (Outcome.MISSING, basis.LISTING) if action.remote is None else (Outcome.DIFFERENT, basis.SIZE)
        return FileResult(action.rel, found, size, action.reason, basis=how, compared_by=action.compared_by)
    if action.do is Outcome.SKIP and not download:
        recorded = (action.record and action.record.basis) or basis.UNRECORDED
        return FileResult(action.rel, Outcome.OK, size, basis=recorded, compared_by=action.compared_by)
    return None


_UNCHECKED_DETAIL = {
    basis.CLIENT_MD5: "only a checksum the uploader wrote matches (the server computed none); --download to check",
    basis.NONE: "the server holds no checksum of its own for it; --download to check",
}
