"""`--executor dask`: the same plan and upload code, run on a Dask cluster.

The coordinator scans, plans and alone writes the journal. Work goes out as batches (small files
grouped by count and bytes; each large file alone). A worker runs the very same Engine on its batch,
with a journal in memory whose multipart events (session opened, part sent and checked) are relayed
to the coordinator as they happen, so a killed coordinator resumes large files part by part, exactly
as a local run does. Credentials never travel in the task graph: targets are sent without them and
each worker reads its own environment (or mounted files), as Label Studio's pods already do.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from .endpoints import open_store
from .engine.results import Stats, settled_without_transfer
from .engine.scheduling import Engine
from .engine.sizes import Settings
from .journal import Journal, Record
from .origins import LocalOrigin, StoreOrigin
from .outcome import FileResult, Outcome
from .plan import Action
from .report import Progress
from .target import Target

TOPIC = "lsmigrate-journal"
_SECRET_FIELDS = ("access_key", "secret_key", "account_key", "connection_string")


@dataclass(frozen=True)
class Batching:
    max_files: int = 256
    max_bytes: int = 256 * 1024 * 1024


def without_secrets(target: Target) -> Target:
    return replace(target, **{name: None for name in _SECRET_FIELDS})


def batches(actions: Iterable[Action], settings: Settings, batching: Batching) -> Iterator[list[Action]]:
    """Small files together (up to a count and a size), each large file on its own."""
    batch: list[Action] = []
    nbytes = 0
    for action in actions:
        size = action.local.size
        if size > settings.multipart_threshold:
            yield [action]
            continue
        if batch and (len(batch) >= batching.max_files or nbytes + size > batching.max_bytes):
            yield batch
            batch, nbytes = [], 0
        batch.append(action)
        nbytes += size
    if batch:
        yield batch


# ---------------------------------------------------------------------------------------------- worker side
class _RelayJournal(Journal):
    """The worker's journal: in memory, seeded with the coordinator's records, and relaying multipart
    progress to the coordinator's journal as it happens (Dask worker events)."""

    def __init__(self, records: list[Record], parts: dict[str, dict[int, tuple[str, str | None]]]) -> None:
        super().__init__(":memory:", commit_every=3600)
        for record in records:
            self._write("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                        (record.rel, record.size, record.mtime_ns, record.md5, record.status, record.etag,
                         record.upload_id, record.part_size, record.basis))
            for number, (md5, etag) in parts.get(record.rel, {}).items():
                self._write("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?)", (record.rel, number, md5, etag))
        self._commit()

    @staticmethod
    def _relay(message: dict) -> None:
        from distributed import get_worker

        try:
            get_worker().log_event(TOPIC, message)
        except ValueError:  # not on a worker (tests calling it directly): nothing to relay to
            pass

    def start_upload(self, rel, size, mtime_ns, md5, upload_id, part_size) -> None:
        super().start_upload(rel, size, mtime_ns, md5, upload_id, part_size)
        self._relay({"kind": "start", "rel": rel, "size": size, "mtime_ns": mtime_ns, "md5": md5,
                     "upload_id": upload_id, "part_size": part_size})

    def part_done(self, rel, part, md5, etag) -> None:
        super().part_done(rel, part, md5, etag)
        self._relay({"kind": "part", "rel": rel, "part": part, "md5": md5, "etag": etag})


_STORES: dict[str, object] = {}
_STORES_LOCK = threading.Lock()


def _worker_store(target: Target, settings: Settings):
    """One store per worker process and target, credentials from the worker's own environment."""
    from .jobs import with_credentials

    key = repr(target)  # no secrets in it: targets arrive without them
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            configured = with_credentials(target, dict(os.environ))
            store = open_store(replace(configured, endpoint_url=target.endpoint_url or configured.endpoint_url),
                               transfers=settings.transfers, retries=settings.retries)
            if not _STORES:
                atexit.register(_close_stores)
            _STORES[key] = store
        return store


def _close_stores() -> None:
    """At worker exit: close the HTTP sessions of the cached stores (else aiohttp warns about each)."""
    for store in _STORES.values():
        try:
            store.close()
        except Exception:  # noqa: BLE001 - the process is ending; nothing to report to
            pass
    _STORES.clear()


def run_batch(target: Target, source: Target | None, settings: Settings, actions: list[Action],
              seed: tuple[list[Record], dict]) -> list[tuple[FileResult, Record | None]]:
    """On a worker: the local engine over one batch; returns each file's outcome and its journal row."""
    store = _worker_store(target, settings)
    origin = LocalOrigin() if source is None else StoreOrigin(_worker_store(source, settings))
    journal = _RelayJournal(*seed)
    engine = Engine(store, journal, settings, origin=origin, cleanup=False)
    outcomes: dict[str, FileResult] = {}
    stats = engine.run(iter(actions), listener=lambda result: outcomes.__setitem__(result.rel, result))
    if stats.fatal:
        raise RuntimeError(stats.fatal)
    results: list[tuple[FileResult, Record | None]] = []
    for action in actions:
        result = outcomes.get(action.rel) or FileResult(action.rel, Outcome.FAILED, action.local.size, "no result",
                                                        compared_by=action.compared_by)
        record = journal.get(action.rel)
        results.append((result, record if record is not None and record.verified else None))
    journal.close()
    return results


# ----------------------------------------------------------------------------------------- coordinator side
def run_on_cluster(scheduler: str | object, target: Target, journal: Journal, settings: Settings,
                   actions: Iterable[Action], progress: Progress | None = None, source: Target | None = None,
                   batching: Batching = Batching(), listener=None) -> Stats:
    """Submit the plan's work to the cluster and fold results (and relayed part events) into the journal;
    `listener` hears each file's outcome (sync's --json-log)."""
    import time

    from distributed import Client, as_completed

    progress = progress or Progress(enabled=False)
    stats = Stats(listener=listener)
    started = time.monotonic()
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    client.subscribe_topic(TOPIC, lambda event: _apply_event(journal, event[1]))
    clean = without_secrets(target)
    clean_source = without_secrets(source) if source is not None else None
    try:
        futures = as_completed()
        pending, window = 0, 2
        for batch in batches(_count_inline(actions, stats), settings, batching):
            seed = _seed(journal, batch)
            for action in batch:
                progress.planned(action.local.size)
            futures.add(client.submit(run_batch, clean, clean_source, settings, batch, seed, pure=False, retries=3))
            pending += 1
            if pending >= window:  # the cluster's size asked once per submit, not per collected future
                window = 4 * max(1, len(client.scheduler_info().get("workers", {}))) + 2
            while pending >= window:
                pending -= _collect(next(futures), journal, stats, progress)
        for future in futures:
            _collect(future, journal, stats, progress)
    finally:
        client.unsubscribe_topic(TOPIC)
        journal.flush()
        stats.seconds = time.monotonic() - started
        if not isinstance(scheduler, Client):
            client.close()
    return stats


def _count_inline(actions: Iterable[Action], stats: Stats) -> Iterator[Action]:
    """What needs no worker (skips, problems) is counted here; the rest goes out."""
    for action in actions:
        if action.do is Outcome.EXTRA:
            continue
        stats.planned += 1
        settled = settled_without_transfer(action)
        if settled is not None:
            stats.add(settled)
        else:
            yield action


def _seed(journal: Journal, batch: list[Action]):
    records = [a.record for a in batch if a.record is not None]
    parts = {r.rel: journal.parts(r.rel) for r in records if r.upload_id}
    return records, parts


def _collect(future, journal: Journal, stats: Stats, progress: Progress) -> int:
    try:
        results = future.result()
    except Exception as exc:  # noqa: BLE001 - a batch that failed on every retry
        stats.fatal = stats.fatal or f"a batch failed on the cluster: {exc}"
        return 1
    for result, record in results:
        if record is not None:
            journal.mark_verified(record.rel, record.size, record.mtime_ns, record.md5, record.etag, record.basis)
        stats.add(result)
        if result.outcome is Outcome.COPIED:
            progress.sent(result.size)
        progress.file_done()
    return 1


def _apply_event(journal: Journal, message: dict) -> None:
    if message.get("kind") == "start":
        journal.start_upload(message["rel"], message["size"], message["mtime_ns"], message["md5"],
                             message["upload_id"], message["part_size"])
    elif message.get("kind") == "part":
        journal.part_done(message["rel"], message["part"], message["md5"], message["etag"])
