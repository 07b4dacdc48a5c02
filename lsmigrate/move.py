"""Moving a live deployment to another bucket (`--move-from-current`): the objects Label Studio serves now
are copied with `sync`'s machinery, and each must be verified at the new destination before the switch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import basis, endpoints
from .engine.sizes import Settings
from .jobs import destination_label
from .journal import Journal, default_path, state_dir
from .origins import StoreOrigin
from .outcome import Compared, FileResult, Outcome
from .plan import plan_sync
from .report import Progress
from .stores.base import StoreError
from .sync import Filters, JsonLog, SyncSummary, run_sync
from .target import Target
from .verify import VerifyReport


@contextmanager
def _stores(current: Target, target: Target, settings: Settings) -> Iterator[tuple]:
    source = endpoints.open_store(current, transfers=settings.transfers, retries=settings.retries)
    try:
        dest = endpoints.open_store(target, transfers=settings.transfers, retries=settings.retries)
        try:
            for store in (source, dest):
                store.probe_encryption = True  # listed ETags decide alone here: know whether they are MD5s
            source.check()
            dest.check()
            yield source, dest
        finally:
            dest.close()
    finally:
        source.close()


def copy_objects(current: Target, target: Target, *, settings: Settings, state: str | None,
                 progress: Progress) -> SyncSummary:
    """`lsmigrate sync CURRENT TARGET`, with the same journal (a sync run by hand before is not repeated)."""
    with _stores(current, target, settings) as (source, dest):
        return run_sync(source.list(), StoreOrigin(source), dest, source_label=destination_label(current),
                        settings=settings, state=state, state_dir=state_dir(), delete=False, max_delete=None,
                        filters=Filters(), log=JsonLog(None), progress=progress)


def verify_objects(current: Target, target: Target, *, settings: Settings, state: str | None) -> VerifyReport:
    """Every object at `current` against its copy at `target`: verified only by checksums both servers
    computed, or by the journal of the sync that copied and checked it. Size and time alone prove nothing."""
    report = VerifyReport()
    source_label, destination = destination_label(current), destination_label(target)
    path = Path(state) if state else default_path(source_label, destination)
    with _stores(current, target, settings) as (source, dest), \
            Journal(path, source=source_label, destination=destination) as journal:
        try:
            for action in plan_sync(source.list(), dest.list(), journal.records()):
                if action.do is Outcome.EXTRA:
                    report.add(FileResult(action.rel, Outcome.EXTRA, 0, basis=basis.LISTING,
                                          compared_by=action.compared_by))
                    continue
                report.planned += 1
                report.add(_found(action, dest.md5_basis))
                report.recalled += action.do is Outcome.SKIP and action.compared_by is Compared.JOURNAL
        except StoreError as exc:
            report.fatal = str(exc)
    return report


def _found(action, md5_basis: str) -> FileResult:
    """What the two listings and the journal show of one object, without reading it."""
    size = action.local.size if action.local is not None else 0

    def result(outcome: Outcome, how: str, detail: str = "") -> FileResult:
        return FileResult(action.rel, outcome, size, detail, basis=how, compared_by=action.compared_by)

    if action.do is Outcome.PROBLEM:
        return result(Outcome.ERROR, "", action.reason)
    if action.do is Outcome.COPY:
        return result(Outcome.MISSING if action.remote is None else Outcome.DIFFERENT, basis.LISTING, action.reason)
    if action.do is Outcome.SKIP and action.compared_by is Compared.MD5:  # both servers computed it over their bytes
        return result(Outcome.OK, md5_basis)
    recorded = action.record.basis if action.record and action.record.verified else None
    if action.do is Outcome.SKIP and action.compared_by is Compared.JOURNAL \
            and (recorded or basis.UNRECORDED) in basis.VERIFYING:
        return result(Outcome.OK, recorded or basis.UNRECORDED)
    return result(Outcome.UNCHECKED, basis.NONE, f"not verified: {action.reason}")
