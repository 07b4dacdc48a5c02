"""Moving a live deployment to another bucket (`--move-from-current`): the objects Label Studio serves now
are copied with `sync`'s machinery, and each must be verified at the new destination before the switch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import basis, endpoints
from .endpoints import Target
from .engine import Settings
from .jobs import destination_label
from .journal import Journal, default_path, state_dir
from .origins import StoreOrigin
from .plan import Do, plan_sync
from .report import Progress
from .sync import Filters, JsonLog, SyncOutcome, run_sync
from .uploads.base import StoreError
from .verify import DIFFERENT, ERROR, EXTRA, MISSING, OK, UNCHECKED, VerifyReport


@contextmanager
def _stores(current: Target, target: Target, settings: Settings) -> Iterator[tuple]:
    source = endpoints.open_store(current, transfers=settings.transfers, retries=settings.retries)
    try:
        dest = endpoints.open_store(target, transfers=settings.transfers, retries=settings.retries)
        try:
            for store in (source, dest):
                if hasattr(store, "probe_encryption"):
                    store.probe_encryption = True  # listed ETags decide alone here: know whether they are MD5s
            source.check()
            dest.check()
            yield source, dest
        finally:
            dest.close()
    finally:
        source.close()


def copy_objects(current: Target, target: Target, *, settings: Settings, state: str | None,
                 progress: Progress) -> SyncOutcome:
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
                if action.do is Do.EXTRA:
                    report.add(EXTRA, action.rel, "listing")
                    continue
                report.planned += 1
                report.add(*_outcome(action, dest.md5_basis))
                report.recalled += action.reason.startswith("verified earlier")
        except StoreError as exc:
            report.fatal = str(exc)
    return report


def _outcome(action, md5_basis: str) -> tuple[str, str, str, str]:
    if action.do is Do.PROBLEM:
        return ERROR, action.rel, "", action.reason
    if action.do is Do.COPY:
        return (MISSING if action.remote is None else DIFFERENT), action.rel, "listing", action.reason
    if action.reason == "same md5":  # both servers computed it over the bytes they hold
        return OK, action.rel, md5_basis, ""
    recorded = action.record.basis if action.record and action.record.verified else None
    if action.reason.startswith("verified earlier") and (recorded or basis.UNRECORDED) in basis.VERIFYING:
        return OK, action.rel, recorded or basis.UNRECORDED, ""
    return UNCHECKED, action.rel, basis.NONE, f"not verified: {action.reason}"
