"""`lsmigrate sync`: incremental replication between any two of local, s3://, gs://, az://, for cron.

Plan as for copy (streamed, key order), copy through the same engine, then (only with --delete, only
after a copy phase without errors, only up to --max-delete) remove what the source no longer has.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .engine.scheduling import Engine
from .engine.sizes import Settings
from .jobs import destination_label
from .journal import Journal, default_path
from .lock import DestinationLock
from .origins import LocalOrigin, StoreOrigin
from .outcome import FileResult, Outcome
from .plan import Action, plan_sync
from .report import Progress
from .stores.base import StoreError


@dataclass(frozen=True)
class Filters:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def wants(self, rel: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(rel, pattern) for pattern in self.include):
            return False
        return not any(fnmatch.fnmatchcase(rel, pattern) for pattern in self.exclude)


class JsonLog:
    """--json-log FILE: one JSON object per line per file event, then one final stats line."""

    def __init__(self, path: str | None) -> None:
        self._handle = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()

    def event(self, kind: str, **fields: object) -> None:
        if self._handle is None:
            return
        line = json.dumps({"time": round(time.time(), 3), "event": kind, **fields}, ensure_ascii=False)
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()

    def result(self, result: FileResult) -> None:
        fields = {"path": result.rel, "bytes": result.size}
        if result.reason:
            fields["reason"] = result.reason
        if result.basis:
            fields["verified_by"] = result.basis
        self.event(result.outcome.value, **fields)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


@dataclass
class DeletePlan:
    limit: int | None
    rels: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, rel: str) -> None:
        self.count += 1
        if self.limit is None or len(self.rels) <= self.limit:
            self.rels.append(rel)


@dataclass
class SyncSummary:
    """What a sync adds up to: the copy's stats, by what files were compared, and what was deleted."""

    stats: object
    compared_by: Counter  # files per word of outcome.Compared: by what the plan judged them
    deleted: int = 0
    delete_refused: str | None = None
    delete_failures: list[tuple[str, str]] = field(default_factory=list)
    took_over_lock: dict | None = None


def _tap(actions: Iterable[Action], filters: Filters, deletes: DeletePlan | None, compared_by: Counter) -> Iterator[Action]:
    for action in actions:
        if not filters.wants(action.rel):
            continue
        if action.do is Outcome.EXTRA:
            if deletes is not None:
                deletes.add(action.rel)
            continue
        if action.do in (Outcome.SKIP, Outcome.COPY, Outcome.CHECK):
            compared_by[action.compared_by.value] += 1
        yield action


def run_sync(source_entries: Iterable, origin: LocalOrigin | StoreOrigin, dest_store, *, source_label: str,
             settings: Settings, state: str | None, state_dir: Path, delete: bool, max_delete: int | None,
             filters: Filters, log: JsonLog, progress: Progress, executor=None) -> SyncSummary:
    """`executor(journal, actions, listener) -> Stats` runs the transfers elsewhere (Dask); default: here."""
    for store in (dest_store, getattr(origin, "store", None)):
        if store is not None:
            store.probe_encryption = True  # listed ETags compare alone here: know first whether they are MD5s
    destination = destination_label(dest_store.target)
    lock = DestinationLock(state_dir, destination).acquire()
    try:
        journal = Journal(Path(state) if state else default_path(source_label, destination),
                          source=source_label, destination=destination)
        try:
            compared_by: Counter = Counter()
            deletes = DeletePlan(max_delete) if delete else None
            actions = _tap(plan_sync(source_entries, dest_store.list(), journal.records()), filters, deletes,
                           compared_by)
            if executor is None:
                stats = Engine(dest_store, journal, settings, progress, origin).run(actions, listener=log.result)
            else:
                stats = executor(journal, actions, log.result)
            summary = SyncSummary(stats, compared_by, took_over_lock=lock.took_over)
            if deletes is not None:
                _delete_extras(summary, deletes, dest_store, journal, log)
            return summary
        finally:
            journal.close()
    finally:
        lock.release()


def _delete_extras(summary: SyncSummary, deletes: DeletePlan, dest_store, journal: Journal, log: JsonLog) -> None:
    stats = summary.stats
    if not deletes.count:
        return
    if not stats.ok:
        summary.delete_refused = (f"{deletes.count} object(s) only at the destination were not deleted: "
                                  "the copy phase had errors")
        return
    if deletes.limit is not None and deletes.count > deletes.limit:
        summary.delete_refused = (f"{deletes.count} object(s) only at the destination exceed --max-delete "
                                  f"{deletes.limit}: nothing was deleted (raise --max-delete if this is intended)")
        return
    for rel in deletes.rels:
        try:
            dest_store.delete(rel)
        except StoreError as exc:
            summary.delete_failures.append((rel, str(exc)))
            log.event(Outcome.FAILED.value, path=rel, reason=f"delete: {exc}")
            continue
        journal.forget(rel)
        summary.deleted += 1
        log.event(Outcome.DELETED.value, path=rel)
