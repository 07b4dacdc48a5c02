"""Runs a plan: bounded concurrency, Content-MD5 on every request, journal updates, re-queue on change.

Threads, not processes: every request is I/O or hashing of large buffers, both of which release the GIL.
Files go to one pool, parts of large files to another, so a large file never starves behind its own parts.
Small local files bound for a store with `put_async` (S3) skip the threads: they are sent in batches from
the store's own event loop, one attempt each; anything unusual falls back to the thread path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from ..journal import Journal, JournalError
from ..memory import release_large_buffers
from ..origins import LocalOrigin, StoreOrigin
from ..outcome import FileResult, Outcome
from ..plan import Action
from ..report import Progress
from ..stores.base import Store, StoreError
from .limits import BufferPool, ByteBudget, RateLimit, bytes_in_flight
from .results import Stats, as_decided, settled_without_transfer
from .sending import Sending, send_file, send_small
from .sizes import Settings, check_sizes

# Local files up to this size are sent from the store's event loop, BATCH_FILES to a hand-off: one
# thread-to-loop hop per file cost about as much CPU as the request itself.
SMALL_FILE = 1024 * 1024
BATCH_FILES = 32


class Engine:
    def __init__(self, store: Store, journal: Journal, settings: Settings, progress: Progress | None = None,
                 origin: LocalOrigin | StoreOrigin | None = None, cleanup: bool = True) -> None:
        check_sizes(store, settings)  # every path that sends (copy, sync, a Dask worker) refuses what cannot go
        self.store = store
        self.cleanup = cleanup
        self.origin = origin or LocalOrigin()
        self.journal = journal
        self.settings = settings
        self.progress = progress or Progress(enabled=False)
        release_large_buffers()
        in_flight = bytes_in_flight(settings)
        self._stop = threading.Event()
        self._sending = Sending(store, self.origin, journal, settings, self.progress, ByteBudget(in_flight),
                                BufferPool(in_flight), RateLimit(settings.bwlimit, self._stop), self._stop,
                                ThreadPoolExecutor(settings.transfers, thread_name_prefix="lsmigrate-part"))
        self._slots: asyncio.Semaphore | None = None  # small files sending at once, on the store's loop
        self._handed_off: dict[str, BaseException] = {}  # rel -> why the small-file path gave a file to the threads

    def run(self, actions: Iterable[Action], listener: Callable[[FileResult], None] | None = None) -> Stats:
        """Every action in order of the plan; `listener` hears each file's outcome (for --json-log)."""
        stats = Stats(listener=listener)
        started = time.monotonic()
        dispatch = _Dispatch(self, stats)
        try:
            try:
                for action in actions:
                    if self._stop.is_set():
                        break
                    if action.do is not Outcome.EXTRA:
                        dispatch.take(action)
                dispatch.finish()
            except StoreError as exc:  # listing the destination failed
                self._stop.set()
                stats.fatal = str(exc)
            dispatch.files.shutdown(wait=True)
            self._sending.parts.shutdown(wait=True)
        except BaseException as exc:
            # Ctrl-C (or SIGTERM), also while waiting above: stop at once. Queued files are dropped; threads in
            # the middle of a part or a --bwlimit wait see the stop event and end, so the process can exit.
            stats.interrupted = isinstance(exc, KeyboardInterrupt)
            self._stop.set()
            dispatch.files.shutdown(wait=False, cancel_futures=True)
            self._sending.parts.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            self._sending.buffers.clear()
            self.journal.flush()
            stats.seconds = time.monotonic() - started
        if self.cleanup and stats.fatal is None and stats.failed == 0:
            abort_orphans(self.store, self.journal)
        return stats

    def _small_file_loop(self):
        """The store's event loop when small local files can be sent from it directly, else None."""
        if not isinstance(self.origin, LocalOrigin) or self.settings.bwlimit:
            return None
        return self.store.event_loop()

    async def _send_small_files(self, batch: list[Action]) -> list[tuple[Action, FileResult | None]]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.transfers)
        return await asyncio.gather(*(self._send_small(action) for action in batch))

    async def _send_small(self, action: Action) -> tuple[Action, FileResult | None]:
        """One attempt at a small local file; None hands it to the thread path, with what went wrong."""
        local = action.local
        if self._stop.is_set():
            return action, FileResult(local.rel, Outcome.FAILED, local.size, "not attempted: run stopped")
        async with self._slots:
            result = await send_small(self._sending, local)
        if isinstance(result, BaseException):
            self._handed_off[local.rel] = result
            return action, None
        return action, result

    def _name_too_long(self, local) -> FileResult | None:
        key_bytes = self.store.key_bytes(local.rel)
        if key_bytes <= self.store.max_key_bytes:
            return None
        return FileResult(local.rel, Outcome.FAILED, local.size,
                          f"object name would be {key_bytes} bytes, over the {self.store.max_key_bytes}-byte "
                          "limit of the store: shorten the path or the folder")

    def _process(self, action: Action) -> FileResult:
        """One file on the thread path (the tests watch which files come here)."""
        local = action.local
        assert local is not None
        prior = self._handed_off.pop(local.rel, None)  # the small-file path's try: the file's first
        if self._stop.is_set():
            return FileResult(local.rel, Outcome.FAILED, local.size, "not attempted: run stopped")
        return send_file(self._sending, action, prior)


class _Dispatch:
    """One run's hand-out of files: small ones in batches to the store's loop, the rest to the file threads.

    With --transfers 1 the two take turns, one request at a time; otherwise they overlap, each side bounded
    by --transfers (as files and parts were before)."""

    def __init__(self, engine: Engine, stats: Stats) -> None:
        self.engine, self.stats = engine, stats
        transfers = engine.settings.transfers
        self.lock = threading.Lock()
        self.in_flight = threading.BoundedSemaphore(transfers * 2)
        self.files = ThreadPoolExecutor(transfers, thread_name_prefix="lsmigrate-file")
        self.threaded: set[Future] = set()
        self.loop = engine._small_file_loop()
        self.take_turns = transfers == 1
        self.keep_batches = max(2, 4 * transfers // BATCH_FILES)
        self.batch: list[Action] = []
        self.batches: deque[Future] = deque()

    def take(self, action: Action) -> None:
        """One planned file: settled at once, or queued for the loop or the threads."""
        engine, stats = self.engine, self.stats
        stats.planned += 1
        settled = settled_without_transfer(action) or engine._name_too_long(action.local)
        if settled is not None:
            stats.add(as_decided(settled, action))
            return
        engine.progress.planned(action.local.size)
        if self.loop is not None and action.do is Outcome.COPY and action.local.size <= SMALL_FILE:
            self.batch.append(action)
            if len(self.batch) >= BATCH_FILES:
                self.send_batch()
            return
        if self.batch:
            self.send_batch()
        if self.take_turns:
            self.settle(keep=0)
        self.send_on_threads(action)

    def finish(self) -> None:
        if self.loop is not None:
            self.send_batch()
            self.settle(keep=0)

    def add(self, action: Action, result: FileResult) -> None:
        result = as_decided(result, action)
        with self.lock:
            self.stats.add(result)
        self.engine.progress.file_done()

    def collect(self, future: Future, action: Action) -> None:
        self.in_flight.release()
        with self.lock:
            self.threaded.discard(future)
        try:
            result = future.result()
        except (StoreError, JournalError) as exc:  # fatal: stop everything
            result = self._fatal(action, str(exc))
        except BaseException as exc:  # noqa: BLE001 - a bug must not hang the run, nor lose the file
            result = self._fatal(action, f"internal error: {exc.__class__.__name__}: {exc}")
        self.add(action, result)

    def _fatal(self, action: Action, message: str) -> FileResult:
        self.engine._stop.set()
        with self.lock:
            self.stats.fatal = self.stats.fatal or message
        return FileResult(action.rel, Outcome.FAILED, action.local.size, message)

    def send_on_threads(self, action: Action) -> None:
        self.in_flight.acquire()
        future = self.files.submit(self.engine._process, action)
        with self.lock:
            self.threaded.add(future)
        future.add_done_callback(lambda done, action=action: self.collect(done, action))

    def settle(self, keep: int) -> None:
        """Take the outcomes of sent batches until at most `keep` are in flight."""
        while len(self.batches) > keep:
            for action, result in self.batches.popleft().result():
                if result is None:  # anything unusual: the thread path retries it and says why
                    self.send_on_threads(action)
                else:
                    self.add(action, result)

    def send_batch(self) -> None:
        if self.take_turns:
            with self.lock:
                busy = list(self.threaded)
            wait(busy)
        if self.batch:
            coroutine = self.engine._send_small_files(self.batch)
            self.batches.append(asyncio.run_coroutine_threadsafe(coroutine, self.loop))
            self.batch = []
        self.settle(keep=self.keep_batches)


def abort_orphans(store: Store, journal: Journal) -> None:
    """After a run in which every file verified, the sessions the journal still holds belong to files that
    are gone or changed into something else: abandoned, and ours. Only upload IDs the journal recorded are
    touched: Label Studio itself or a cron sync may have uploads of their own open under the same folder.
    (A run killed between creating an upload and journaling its ID leaves that one upload to the bucket's
    lifecycle rule; `lsmigrate doctor` says whether one is set.)"""
    try:
        for record in journal.open_uploads():
            store.abort(record.rel, record.upload_id)
            journal.forget(record.rel)
    except StoreError:
        pass  # cleanup is best effort; the next run tries again
