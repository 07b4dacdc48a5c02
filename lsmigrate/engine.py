"""Runs a plan: bounded concurrency, Content-MD5 on every request, journal updates, re-queue on change.

Threads, not processes: every request is I/O or hashing of large buffers, both of which release the GIL.
Files go to one pool, parts of large files to another, so a large file never starves behind its own parts.
Small local files bound for a store with `put_async` (S3) skip the threads: they are sent in batches from
the store's own event loop, one attempt each; anything unusual falls back to the thread path.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum

from . import basis
from .compare import compare, unchanged
from .journal import Journal, JournalError
from .memory import release_large_buffers
from .origins import LocalOrigin, SourceChanged, StoreOrigin
from .plan import Action, Do
from .report import Progress
from .retry import RetryPolicy
from .scan import LocalFile, RemoteObject, mtime_ns
from .uploads.base import Receipt, Store, StoreError

MiB = 1024 * 1024
# Bytes of file data in flight at once, whatever --transfers x --chunk-size say: the HTTP stack holds
# about one more copy of each request body, so this keeps the process near 2.5x this figure.
MEMORY_BUDGET = 128 * MiB
# Local files up to this size are sent from the store's event loop, BATCH_FILES to a hand-off: one
# thread-to-loop hop per file cost about as much CPU as the request itself.
SMALL_FILE = 1 * MiB
BATCH_FILES = 32


@dataclass(frozen=True)
class Settings:
    transfers: int = 16
    chunk_size: int = 16 * MiB
    multipart_threshold: int = 32 * MiB
    retries: int = 5
    bwlimit: int = 0  # bytes per second, 0 for none


class Outcome(str, Enum):
    COPIED = "copied"
    SKIPPED = "skipped"  # verified earlier (journal)
    IDENTICAL = "identical"  # already at the destination, checksums compared now
    FAILED = "failed"
    PROBLEM = "problem"  # not copyable, a warning only (see reason)


@dataclass(frozen=True, slots=True)
class FileResult:
    rel: str
    outcome: Outcome
    size: int
    reason: str = ""
    basis: str = ""  # for copied, identical and skipped files: on what "verified" rests (lsmigrate.basis)
    resumed: int = 0  # for a copied file whose upload went on from an earlier run's session: the bytes it held


@dataclass
class Stats:
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    identical: int = 0
    failed: int = 0
    warnings: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    fatal: str | None = None
    interrupted: bool = False
    listener: Callable[[FileResult], None] | None = None
    planned: int = 0  # files the plan handed to the run: each must end in exactly one outcome
    bases: Counter = field(default_factory=Counter)  # verified files (copied, identical, skipped) per basis
    verified_bytes: int = 0  # the size of those files
    resumed: int = 0  # uploads that went on from a session an earlier run left
    resumed_bytes: int = 0  # what those sessions already held at the server: not sent again

    @property
    def sent_bytes(self) -> int:
        """Bytes of the copied files that this run sent (the rest were at the server already)."""
        return self.copied_bytes - self.resumed_bytes

    @property
    def settled(self) -> int:
        return self.copied + self.skipped + self.identical + self.failed + self.warnings

    @property
    def unaccounted(self) -> int:
        """Planned files that ended in no outcome (a run stopped early, or a bug): never a clean run."""
        return max(0, self.planned - self.settled)

    def add(self, result: FileResult) -> None:
        if self.listener is not None:
            self.listener(result)
        if result.outcome in (Outcome.COPIED, Outcome.SKIPPED, Outcome.IDENTICAL):
            self.bases[result.basis or basis.UNRECORDED] += 1
            self.verified_bytes += result.size
        if result.outcome is Outcome.COPIED:
            self.copied += 1
            self.copied_bytes += result.size
            if result.resumed:
                self.resumed += 1
                self.resumed_bytes += result.resumed
        elif result.outcome is Outcome.SKIPPED:
            self.skipped += 1
        elif result.outcome is Outcome.IDENTICAL:
            self.identical += 1
        elif result.outcome is Outcome.PROBLEM:
            self.warnings += 1
            if len(self.failures) < 1000:
                self.failures.append((result.rel, "skipped: " + result.reason))
        else:
            self.failed += 1
            if len(self.failures) < 1000:
                self.failures.append((result.rel, result.reason))

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.fatal is None and not self.interrupted and not self.unaccounted


class RateLimit:
    """--bwlimit: callers take bytes before sending them; the sum stays under `rate` bytes per second.

    The wait is on `stop`, not a sleep: at 50 KiB/s one 5 MiB part waits 100 s, and Ctrl-C must not."""

    def __init__(self, rate: int, stop: threading.Event | None = None) -> None:
        self._rate = rate
        self._stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int) -> None:
        """Returns when `n` bytes may go; raises StoreError if the run stops meanwhile.

        The wait lasts until the time these bytes take at the rate has passed: waiting only for the bytes
        before them let the first request of a run (often a whole file in one PUT) go unthrottled."""
        if self._rate <= 0 or n <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + n / self._rate
            until = self._next
        if self._stop.wait(until - now):
            raise StoreError("not sent: run stopped")


class BufferPool:
    """Part buffers kept for the next part instead of fresh bytes for each read.

    A fresh 16 MiB bytes object is a new mapping (see memory.py), and the kernel faults in and zeroes its
    4,096 pages as pread fills it: measured on 2 x 256 MiB, those faults were the largest system-CPU item
    (about 0.35 s of 1.0 s). Buffers are handed out only inside the byte budget and kept up to `limit`
    bytes, so the pool holds no more than the budget itself.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if len(buf) == size:
                    return self._free.pop(i)
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        with self._lock:
            if sum(map(len, self._free)) + len(buf) <= self._limit:
                self._free.append(buf)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


class ByteBudget:
    """Caps the bytes held in memory by requests in flight (one oversize request may always go alone)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def acquire(self, n: int) -> None:
        with self._cond:
            while self._used and self._used + n > self._limit:
                self._cond.wait()
            self._used += n

    def release(self, n: int) -> None:
        with self._cond:
            self._used -= n
            self._cond.notify_all()


def settled_without_transfer(action: Action) -> FileResult | None:
    """The outcome of an action that needs no transfer (a problem, or verified earlier), else None."""
    if action.do is Do.PROBLEM:
        return FileResult(action.rel, Outcome.FAILED if action.error else Outcome.PROBLEM, 0, action.reason)
    if action.do is Do.SKIP:
        recorded = action.record.basis if action.record is not None else None
        return FileResult(action.rel, Outcome.SKIPPED, action.local.size, action.reason,
                          basis=recorded or basis.UNRECORDED)
    return None


def part_size_for(size: int, chunk_size: int, *, min_part: int, max_parts: int, granule: int = 1) -> int:
    """The chunk size, grown (to whole MiB) so the file fits in max_parts parts, and rounded up to a
    multiple of the store's granule (GCS refuses other chunk sizes)."""
    part = max(chunk_size, min_part)
    if math.ceil(size / part) > max_parts:
        part = math.ceil(size / max_parts / MiB) * MiB
    return -(-part // granule) * granule


GiB = 1024 * MiB
PROVIDER_NAME = {"s3": "S3", "gcs": "GCS", "azure": "Azure"}
# What each provider itself refuses: S3 parts (all but the last) under 5 MiB or over 5 GiB, Azure blocks over
# 4000 MiB, S3 objects over 5 GiB in one PutObject. Smaller parts elsewhere are only below the store's own floor
# (min_part_size: GCS 8 MiB, Azure 1 MiB) and are raised to it; GCS chunks are rounded up to 256 KiB.
MIN_PART = {"s3": 5 * MiB}
MAX_PART = {"s3": 5 * GiB, "azure": 4000 * MiB}
MAX_WHOLE = {"s3": 5 * GiB}


class SettingsError(ValueError):
    """A --chunk-size or --multipart-threshold the destination's provider cannot take (a usage error)."""


def _exact(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def check_sizes(store: Store, settings: Settings) -> str | None:
    """Refuses a part size or threshold the provider cannot take, naming what it takes; returns a note when the
    part size used is not the one given (raised to the store's floor, rounded up to its granule), else None.
    Files too large for max_parts parts of that size get larger parts (part_size_for); `plan` lists them."""
    provider = store.target.provider
    name = PROVIDER_NAME.get(provider, provider)
    chunk, low, high = settings.chunk_size, MIN_PART.get(provider, 1), MAX_PART.get(provider)
    if chunk < low or (high and chunk > high):
        allowed = f"from {_exact(low)} to {_exact(high)}" if low > 1 else f"at most {_exact(high)}"
        raise SettingsError(f"--chunk-size {_exact(chunk)} is outside the part sizes {name} takes: pass one {allowed}")
    whole = MAX_WHOLE.get(provider)
    if whole and settings.multipart_threshold > whole:
        raise SettingsError(f"--multipart-threshold {_exact(settings.multipart_threshold)} is above {_exact(whole)}, "
                            f"the largest object {name} takes in one request")
    granule = store.part_granule
    part = part_size_for(0, chunk, min_part=store.min_part_size, max_parts=store.max_parts, granule=granule)
    if part == chunk:
        return None
    rule = f"at least {_exact(store.min_part_size)}" + (f", in multiples of {_exact(granule)}" if granule > 1 else "")
    return f"--chunk-size {_exact(chunk)} is used as {_exact(part)}: {name} parts are sent {rule}"


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
        in_flight = max(min(settings.transfers * settings.chunk_size, MEMORY_BUDGET), settings.multipart_threshold)
        self.budget = ByteBudget(in_flight)
        self.buffers = BufferPool(in_flight)
        self._stop = threading.Event()
        self.limit = RateLimit(settings.bwlimit, self._stop)
        self._parts = ThreadPoolExecutor(settings.transfers, thread_name_prefix="lsmigrate-part")
        self._slots: asyncio.Semaphore | None = None  # small files sending at once, on the store's loop
        self._handed_off: dict[str, BaseException] = {}  # rel -> why the small-file path gave a file to the threads
        self._resumed: dict[str, int] = {}  # rel -> bytes its resumed upload found at the server

    # running a plan
    def run(self, actions: Iterable[Action], listener: Callable[[FileResult], None] | None = None) -> Stats:
        """Every action in order of the plan; `listener` hears each file's outcome (for --json-log)."""
        stats = Stats(listener=listener)
        started = time.monotonic()
        lock = threading.Lock()
        in_flight = threading.BoundedSemaphore(self.settings.transfers * 2)
        files = ThreadPoolExecutor(self.settings.transfers, thread_name_prefix="lsmigrate-file")
        threaded: set[Future] = set()

        def collect(future: Future, action: Action) -> None:
            in_flight.release()
            with lock:
                threaded.discard(future)
            try:
                result = future.result()
            except (StoreError, JournalError) as exc:  # fatal: stop everything
                self._stop.set()
                result = FileResult(action.rel, Outcome.FAILED, action.local.size, str(exc))
                with lock:
                    stats.fatal = stats.fatal or str(exc)
            except BaseException as exc:  # noqa: BLE001 - a bug must not hang the run, nor lose the file
                self._stop.set()
                message = f"internal error: {exc.__class__.__name__}: {exc}"
                result = FileResult(action.rel, Outcome.FAILED, action.local.size, message)
                with lock:
                    stats.fatal = stats.fatal or message
            with lock:
                stats.add(result)
            self.progress.file_done()

        def send_on_threads(action: Action) -> None:
            in_flight.acquire()
            future = files.submit(self._process, action)
            with lock:
                threaded.add(future)
            future.add_done_callback(lambda done, action=action: collect(done, action))

        # Small files go from the loop, the rest on threads. With --transfers 1 they take turns, one request at
        # a time; otherwise they overlap, each side bounded by --transfers (as files and parts were before).
        loop = self._small_file_loop()
        take_turns = self.settings.transfers == 1
        batch: list[Action] = []
        batches: deque[Future] = deque()

        def settle(keep: int) -> None:
            """Take the outcomes of sent batches until at most `keep` are in flight."""
            while len(batches) > keep:
                for action, result in batches.popleft().result():
                    if result is None:  # anything unusual: the thread path retries it and says why
                        send_on_threads(action)
                        continue
                    with lock:
                        stats.add(result)
                    self.progress.file_done()

        def send_batch() -> None:
            nonlocal batch
            if take_turns:
                with lock:
                    busy = list(threaded)
                wait(busy)
            if batch:
                batches.append(asyncio.run_coroutine_threadsafe(self._send_small_files(batch), loop))
                batch = []
            settle(keep=max(2, 4 * self.settings.transfers // BATCH_FILES))

        try:
            try:
                for action in actions:
                    if self._stop.is_set():
                        break
                    if action.do is Do.EXTRA:
                        continue
                    stats.planned += 1
                    settled = settled_without_transfer(action) or self._name_too_long(action.local)
                    if settled is not None:
                        stats.add(settled)
                        continue
                    self.progress.planned(action.local.size)
                    if loop is not None and action.do is Do.COPY and action.local.size <= SMALL_FILE:
                        batch.append(action)
                        if len(batch) >= BATCH_FILES:
                            send_batch()
                    else:
                        if batch:
                            send_batch()
                        if take_turns:
                            settle(keep=0)
                        send_on_threads(action)
                if loop is not None:
                    send_batch()
                    settle(keep=0)
            except StoreError as exc:  # listing the destination failed
                self._stop.set()
                stats.fatal = str(exc)
            files.shutdown(wait=True)
            self._parts.shutdown(wait=True)
        except BaseException as exc:
            # Ctrl-C (or SIGTERM), also while waiting above: stop at once. Queued files are dropped; threads in
            # the middle of a part or a --bwlimit wait see the stop event and end, so the process can exit.
            stats.interrupted = isinstance(exc, KeyboardInterrupt)
            self._stop.set()
            files.shutdown(wait=False, cancel_futures=True)
            self._parts.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            self.buffers.clear()
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
        """One attempt at a small local file (its request retried by the store, as every request is); None hands
        it to the thread path, with what went wrong, for what sending it again can fix."""
        local = action.local
        if self._stop.is_set():
            return action, FileResult(local.rel, Outcome.FAILED, local.size, "not attempted: run stopped")
        async with self._slots:
            try:
                data, before = self.origin.read_whole(local)  # small, and mostly in the page cache
                md5 = hashlib.md5(data).digest()
                verified_by = self._record_put(local, md5, await self.store.put_async(local.rel, data, md5), before)
            except StoreError as exc:
                if not (exc.fatal or exc.resend):  # the request was tried as often as --retries allows
                    return action, FileResult(local.rel, Outcome.FAILED, local.size, str(exc))
                self._handed_off[local.rel] = exc
                return action, None
            except Exception as exc:  # noqa: BLE001 - the thread path tries again and reports it
                self._handed_off[local.rel] = exc
                return action, None
        return action, FileResult(local.rel, Outcome.COPIED, local.size, basis=verified_by)

    def _name_too_long(self, local) -> FileResult | None:
        key_bytes = self.store.key_bytes(local.rel)
        if key_bytes <= self.store.max_key_bytes:
            return None
        return FileResult(local.rel, Outcome.FAILED, local.size,
                          f"object name would be {key_bytes} bytes, over the {self.store.max_key_bytes}-byte "
                          "limit of the store: shorten the path or the folder")

    def _process(self, action: Action) -> FileResult:
        local = action.local
        assert local is not None
        prior = self._handed_off.pop(local.rel, None)  # the small-file path's try: the file's first
        if self._stop.is_set():
            return FileResult(local.rel, Outcome.FAILED, local.size, "not attempted: run stopped")
        if action.do is Do.CHECK and action.remote is not None:
            try:
                verified_by = self._identical(local, action.remote)
                if verified_by:
                    return FileResult(local.rel, Outcome.IDENTICAL, local.size, basis=verified_by)
            except OSError as exc:
                return FileResult(local.rel, Outcome.FAILED, local.size, f"cannot read: {exc.strerror or exc}")
            except StoreError as exc:
                if exc.fatal:
                    raise
                # the comparison could not be made (a HEAD that failed): sending the file settles it
        # The file is sent again only for what the store's retried requests cannot fix: the source changed
        # while read, the server holds other bytes than were hashed, a session vanished, a local read error.
        policy = RetryPolicy.from_retries(self.settings.retries)
        last = ""
        for attempt in range(policy.attempts):
            if (attempt and self._stop.wait(policy.delay(attempt))) or self._stop.is_set():
                return FileResult(local.rel, Outcome.FAILED, local.size, "not finished: run stopped")
            try:
                if prior is not None:  # judged here like any other try
                    failure, prior = prior, None
                    raise failure
                verified_by = self._upload(local)
                return FileResult(local.rel, Outcome.COPIED, local.size, basis=verified_by,
                                  resumed=self._resumed.pop(local.rel, 0))
            except SourceChanged as exc:
                last = str(exc)
            except StoreError as exc:
                if exc.fatal:
                    raise
                last = str(exc)
                if not exc.resend:  # its request was tried as often as --retries allows; again would multiply it
                    break
            except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
                return FileResult(local.rel, Outcome.FAILED, local.size, f"cannot read: {exc.strerror or exc}")
            except OSError as exc:
                last = f"read error: {exc.strerror or exc}"
        return FileResult(local.rel, Outcome.FAILED, local.size, last)

    # deciding whether an object already there is the same
    def _identical(self, local: LocalFile, remote: RemoteObject) -> str | None:
        """The basis on which the object already there is the local file, or None if it is not (or unproven)."""
        before = os.stat(local.path)
        result = compare(local, remote, self.store, chunk_size=self.settings.chunk_size)
        if result.same and unchanged(before, os.stat(local.path)):
            self.journal.mark_verified(local.rel, before.st_size, before.st_mtime_ns, result.md5, remote.etag,
                                       result.basis)
            return result.basis
        return None

    # sending: each returns the basis the object was verified on
    def _upload(self, local) -> str:
        verified_by = self._server_side(local)
        if verified_by:
            return verified_by
        if local.size > self.settings.multipart_threshold:
            return self._upload_multipart(local)
        return self._upload_whole(local)

    def _checked(self, entry, receipt: Receipt, md5: bytes, part_md5s: list | None = None) -> str:
        """The basis of a stored object, after holding the server's checksum (where it gave one) against ours."""
        if receipt.checksum is not None:
            expected = self.store.expected_token(md5, part_md5s)
            if receipt.checksum != expected:
                raise StoreError(f"{entry.rel}: the server's checksum {receipt.checksum} is not the file's {expected}",
                                 digest=True)
        return receipt.basis

    def _server_side(self, entry) -> str | None:
        """Same provider and endpoint on both sides: let the provider copy (no bytes through this machine)."""
        source = getattr(self.origin, "store", None)
        can = getattr(self.store, "can_copy_from", None)
        if source is None or can is None or not can(source, entry.size):
            return None
        receipt = self.store.copy_from(source, entry.rel)
        known = (source.head(entry.rel) or entry).md5  # the object's own answer: a listed ETag may be SSE-KMS's
        verified_by = self._checked(entry, receipt, bytes.fromhex(known)) if known else basis.SERVER_COPY
        md5 = known or receipt.checksum or ""
        self.journal.mark_verified(entry.rel, entry.size, mtime_ns(entry), md5, receipt.token, verified_by)
        self.progress.sent(entry.size)
        return verified_by

    def _upload_whole(self, entry) -> str:
        self.budget.acquire(entry.size)
        try:
            data, before = self.origin.read_whole(entry)
            md5 = hashlib.md5(data).digest()
            self.limit.take(len(data))
            receipt = self.store.put(entry.rel, data, md5)
        finally:
            self.budget.release(entry.size)
        return self._record_put(entry, md5, receipt, before)

    def _record_put(self, entry, md5: bytes, receipt: Receipt, before) -> str:
        """A whole object sent: its checksum and the source unchanged since it was read, then journaled."""
        verified_by = self._checked(entry, receipt, md5)
        if self.origin.version(entry) != before:
            raise SourceChanged(f"{entry.rel} changed while being sent")
        self.journal.mark_verified(entry.rel, before.size, before.mtime_ns, md5.hex(), receipt.token, verified_by)
        self.progress.sent(before.size)
        return verified_by

    def _upload_multipart(self, entry) -> str:
        store, origin = self.store, self.origin
        before = origin.version(entry)
        size = before.size
        part_size = part_size_for(size, self.settings.chunk_size, min_part=store.min_part_size, max_parts=store.max_parts,
                                  granule=store.part_granule)
        count = max(1, math.ceil(size / part_size))
        session, md5, part_md5s, done = self._resume(entry, before, part_size, count)
        if session is None:
            md5 = origin.md5(entry, before)  # the whole object's MD5 goes into its metadata at the start
            session = store.start_upload(entry.rel, md5, size)
            self.journal.start_upload(entry.rel, size, before.mtime_ns, md5.hex(), session, part_size)
            part_md5s, done = [None] * count, {}
        already = sum(min(part_size, size - (n - 1) * part_size) for n in done)
        self._resumed[entry.rel] = already  # 0 when this try started a new session
        self.progress.sent(already)

        # Into a reused buffer when the store sends bytes-like data without keeping it past put_part.
        read_into = getattr(origin, "read_into", None) if store.part_views else None

        def length_of(number: int) -> int:
            return min(part_size, size - (number - 1) * part_size)

        def send(number: int) -> tuple[int, str]:
            """One part; the caller has taken its share of the byte budget, which this gives back."""
            offset = (number - 1) * part_size
            length = length_of(number)
            buf = None
            try:
                if self._stop.is_set():
                    raise StoreError(f"{entry.rel}: stopped")
                if read_into is not None:
                    buf = self.buffers.take(part_size)
                    data = read_into(entry, offset, memoryview(buf)[:length])
                else:
                    data = origin.read(entry, offset, length)
                digest = hashlib.md5(data).digest()
                self.limit.take(length)
                token = store.put_part(entry.rel, session, number, data, digest, offset=offset, size=size)
            finally:
                if buf is not None:
                    self.buffers.give(buf)
                self.budget.release(length)
            expected = store.part_token(digest)
            if expected is not None and token != expected:
                raise StoreError(f"{entry.rel} part {number}: the server's checksum differs", digest=True)
            part_md5s[number - 1] = digest
            self.journal.part_done(entry.rel, number, digest.hex(), token)
            self.progress.sent(length)
            return number, token

        todo = [n for n in range(1, count + 1) if n not in done]
        if store.parallel_parts:
            # The budget is taken here, in part order, before a part is queued: a server that writes the parts
            # of an upload in order (rclone serve s3 does) can then never find every slot held by parts waiting
            # for one still queued behind them (seen: 8 parts of two files parked for 15 minutes).
            futures = []
            for n in todo:
                self.budget.acquire(length_of(n))
                try:
                    futures.append(self._parts.submit(send, n))
                except BaseException:
                    self.budget.release(length_of(n))
                    raise
            results = []
            for future in futures:  # wait for all, so no part is still sending when we give up
                try:
                    results.append(future.result())
                except BaseException as exc:  # noqa: BLE001
                    results.append(exc)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
            done.update(dict(results))
        else:
            for n in todo:
                self.budget.acquire(length_of(n))
                done.update([send(n)])
        receipt = store.complete(entry.rel, session, sorted(done.items()), md5)
        if origin.version(entry) != before:
            self.journal.forget(entry.rel)
            raise SourceChanged(f"{entry.rel} changed while being sent")
        try:
            verified_by = self._checked(entry, receipt, md5, part_md5s)
        except StoreError:
            self.journal.forget(entry.rel)
            raise
        self.journal.mark_verified(entry.rel, size, before.mtime_ns, md5.hex(), receipt.token, verified_by)
        return verified_by

    def _resume(self, entry, before, part_size: int, count: int):
        """The journal's unfinished session for this file, if it still fits the file and the server has it."""
        record = self.journal.get(entry.rel)
        if record is None or not record.upload_id:
            return None, b"", [], {}
        fits = (record.size == before.size and record.mtime_ns == before.mtime_ns
                and record.part_size == part_size and record.md5)
        server = (self.store.uploaded_parts(entry.rel, record.upload_id, size=before.size, part_size=part_size)
                  if fits else None)
        if server is None:
            self.store.abort(entry.rel, record.upload_id)
            self.journal.forget(entry.rel)
            return None, b"", [], {}
        parts = self.journal.parts(entry.rel)
        part_md5s: list[bytes | None] = [None] * count
        done = {}
        for number, token in server.items():
            if not 1 <= number <= count:
                continue
            md5_hex, recorded = parts.get(number, (None, None))
            if self.store.trust_listed_parts:
                done[number] = token or ""
            elif recorded is not None:  # journaled as sent and checked
                expected = self.store.part_token(bytes.fromhex(md5_hex))
                if token is None or token == (expected if expected is not None else recorded):
                    done[number] = recorded if token is None else token
            if number in done and md5_hex:
                part_md5s[number - 1] = bytes.fromhex(md5_hex)
        return record.upload_id, bytes.fromhex(record.md5), part_md5s, done


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
