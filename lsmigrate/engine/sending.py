"""Sending one file: whole, in parts (resumed where an earlier run left a session), or copied by the provider
itself; each returns the basis on which the stored object was verified, and journals it.

Plain functions over one `Sending` record: what every send needs (both ends, the journal, the limits, the
pool that parts go to). The file's retry loop is here too: a file is sent again only for what the store's
retried requests cannot fix.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import basis
from ..compare import compare, unchanged
from ..journal import Journal
from ..origins import LocalOrigin, SourceChanged, StoreOrigin
from ..outcome import FileResult, Outcome
from ..plan import Action
from ..report import Progress
from ..retry import RetryPolicy
from ..scan import LocalFile, RemoteObject, mtime_ns
from ..stores.base import Receipt, Store, StoreError
from .limits import BufferPool, ByteBudget, RateLimit
from .sizes import Settings, part_size_for


@dataclass
class Sending:
    store: Store
    origin: LocalOrigin | StoreOrigin
    journal: Journal
    settings: Settings
    progress: Progress
    budget: ByteBudget
    buffers: BufferPool
    rate: RateLimit
    stop: threading.Event
    parts: ThreadPoolExecutor  # the parts of large files (files go to another pool: never starved by their parts)
    resumed: dict[str, int] = field(default_factory=dict)  # rel -> bytes its resumed upload found at the server


def send_file(ctx: Sending, action: Action, prior: BaseException | None = None) -> FileResult:
    """A file the plan sends (or checks first): its outcome. `prior`: what went wrong on the small-file path's
    try, the file's first, judged here like any other."""
    local = action.local
    if action.do is Outcome.CHECK and action.remote is not None:
        try:
            verified_by = identical(ctx, local, action.remote)
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
    policy = RetryPolicy.from_retries(ctx.settings.retries)
    last = ""
    for attempt in range(policy.attempts):
        if (attempt and ctx.stop.wait(policy.delay(attempt))) or ctx.stop.is_set():
            return FileResult(local.rel, Outcome.FAILED, local.size, "not finished: run stopped")
        try:
            if prior is not None:
                failure, prior = prior, None
                raise failure
            verified_by = upload(ctx, local)
            return FileResult(local.rel, Outcome.COPIED, local.size, basis=verified_by,
                              resumed=ctx.resumed.pop(local.rel, 0))
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


async def send_small(ctx: Sending, local: LocalFile) -> FileResult | BaseException:
    """One attempt at a small local file from the store's event loop (its request retried by the store, as
    every request is). What sending it again can fix comes back as the exception: the thread path retries it."""
    try:
        data, before = ctx.origin.read_whole(local)  # small, and mostly in the page cache
        md5 = hashlib.md5(data).digest()
        verified_by = record_put(ctx, local, md5, await ctx.store.put_async(local.rel, data, md5), before)
    except StoreError as exc:
        if not (exc.fatal or exc.resend):  # the request was tried as often as --retries allows
            return FileResult(local.rel, Outcome.FAILED, local.size, str(exc))
        return exc
    except Exception as exc:  # noqa: BLE001 - the thread path tries again and reports it
        return exc
    return FileResult(local.rel, Outcome.COPIED, local.size, basis=verified_by)


def identical(ctx: Sending, local: LocalFile, remote: RemoteObject) -> str | None:
    """The basis on which the object already there is the local file, or None if it is not (or unproven)."""
    before = os.stat(local.path)
    result = compare(local, remote, ctx.store, chunk_size=ctx.settings.chunk_size)
    if result.same and unchanged(before, os.stat(local.path)):
        ctx.journal.mark_verified(local.rel, before.st_size, before.st_mtime_ns, result.md5, remote.etag,
                                  result.basis)
        return result.basis
    return None


def upload(ctx: Sending, entry) -> str:
    verified_by = server_side(ctx, entry)
    if verified_by:
        return verified_by
    if entry.size > ctx.settings.multipart_threshold:
        return send_multipart(ctx, entry)
    return upload_whole(ctx, entry)


def checked(ctx: Sending, entry, receipt: Receipt, md5: bytes, part_md5s: list | None = None) -> str:
    """The basis of a stored object, after holding the server's checksum (where it gave one) against ours."""
    if receipt.checksum is not None:
        expected = ctx.store.expected_token(md5, part_md5s)
        if receipt.checksum != expected:
            raise StoreError(f"{entry.rel}: the server's checksum {receipt.checksum} is not the file's {expected}",
                             digest=True)
    return receipt.basis


def server_side(ctx: Sending, entry) -> str | None:
    """Same provider and endpoint on both sides: let the provider copy (no bytes through this machine)."""
    source = getattr(ctx.origin, "store", None)
    if source is None or not ctx.store.can_copy_from(source, entry.size):
        return None
    receipt = ctx.store.copy_from(source, entry.rel)
    known = (source.head(entry.rel) or entry).md5  # the object's own answer: a listed ETag may be SSE-KMS's
    verified_by = checked(ctx, entry, receipt, bytes.fromhex(known)) if known else basis.SERVER_COPY
    md5 = known or receipt.checksum or ""
    ctx.journal.mark_verified(entry.rel, entry.size, mtime_ns(entry), md5, receipt.token, verified_by)
    ctx.progress.sent(entry.size)
    return verified_by


def upload_whole(ctx: Sending, entry) -> str:
    ctx.budget.acquire(entry.size)
    try:
        data, before = ctx.origin.read_whole(entry)
        md5 = hashlib.md5(data).digest()
        ctx.rate.take(len(data))
        receipt = ctx.store.put(entry.rel, data, md5)
    finally:
        ctx.budget.release(entry.size)
    return record_put(ctx, entry, md5, receipt, before)


def record_put(ctx: Sending, entry, md5: bytes, receipt: Receipt, before) -> str:
    """A whole object sent: its checksum and the source unchanged since it was read, then journaled."""
    verified_by = checked(ctx, entry, receipt, md5)
    if ctx.origin.version(entry) != before:
        raise SourceChanged(f"{entry.rel} changed while being sent")
    ctx.journal.mark_verified(entry.rel, before.size, before.mtime_ns, md5.hex(), receipt.token, verified_by)
    ctx.progress.sent(before.size)
    return verified_by


@dataclass
class _Upload:
    """One multipart upload under way: its session, and the parts the server holds (number -> token)."""

    entry: LocalFile | RemoteObject
    before: object  # the source's version when the upload started: it must be the same at the end
    part_size: int
    session: str
    md5: bytes  # the whole file's, in the object's metadata from the start
    part_md5s: list[bytes | None]
    done: dict[int, str]

    @property
    def size(self) -> int:
        return self.before.size

    def length_of(self, number: int) -> int:
        return min(self.part_size, self.size - (number - 1) * self.part_size)


def send_multipart(ctx: Sending, entry) -> str:
    """A large file in parts, going on from the session an earlier run left where the server still has it."""
    store, origin = ctx.store, ctx.origin
    up = _open_upload(ctx, entry)
    already = sum(up.length_of(n) for n in up.done)
    ctx.resumed[entry.rel] = already  # 0 when this try started a new session
    ctx.progress.sent(already)
    _send_parts(ctx, up, [n for n in range(1, len(up.part_md5s) + 1) if n not in up.done])
    receipt = store.complete(entry.rel, up.session, sorted(up.done.items()), up.md5)
    if origin.version(entry) != up.before:
        ctx.journal.forget(entry.rel)
        raise SourceChanged(f"{entry.rel} changed while being sent")
    try:
        verified_by = checked(ctx, entry, receipt, up.md5, up.part_md5s)
    except StoreError:
        ctx.journal.forget(entry.rel)
        raise
    ctx.journal.mark_verified(entry.rel, up.size, up.before.mtime_ns, up.md5.hex(), receipt.token, verified_by)
    return verified_by


def _open_upload(ctx: Sending, entry) -> _Upload:
    """The earlier run's session where it still fits, else a new one (journaled before any part is sent)."""
    store = ctx.store
    before = ctx.origin.version(entry)
    part_size = part_size_for(before.size, ctx.settings.chunk_size, min_part=store.min_part_size,
                              max_parts=store.max_parts, granule=store.part_granule)
    count = max(1, math.ceil(before.size / part_size))
    session, md5, part_md5s, done = resume(ctx, entry, before, part_size, count)
    if session is None:
        md5 = ctx.origin.md5(entry, before)  # the whole object's MD5 goes into its metadata at the start
        session = store.start_upload(entry.rel, md5, before.size)
        ctx.journal.start_upload(entry.rel, before.size, before.mtime_ns, md5.hex(), session, part_size)
        part_md5s, done = [None] * count, {}
    return _Upload(entry, before, part_size, session, md5, part_md5s, done)


def _send_parts(ctx: Sending, up: _Upload, todo: list[int]) -> None:
    if not ctx.store.parallel_parts:
        for n in todo:
            ctx.budget.acquire(up.length_of(n))
            up.done.update([_send_part(ctx, up, n)])
        return
    # The budget is taken here, in part order, before a part is queued: a server that writes the parts
    # of an upload in order (rclone serve s3 does) can then never find every slot held by parts waiting
    # for one still queued behind them (seen: 8 parts of two files parked for 15 minutes).
    futures = []
    for n in todo:
        ctx.budget.acquire(up.length_of(n))
        try:
            futures.append(ctx.parts.submit(_send_part, ctx, up, n))
        except BaseException:
            ctx.budget.release(up.length_of(n))
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
    up.done.update(dict(results))


def _send_part(ctx: Sending, up: _Upload, number: int) -> tuple[int, str]:
    """One part; the caller has taken its share of the byte budget, which this gives back."""
    store, entry = ctx.store, up.entry
    offset = (number - 1) * up.part_size
    length = up.length_of(number)
    # Into a reused buffer when the store sends bytes-like data without keeping it past put_part.
    read_into = getattr(ctx.origin, "read_into", None) if store.part_views else None
    buf = None
    try:
        if ctx.stop.is_set():
            raise StoreError(f"{entry.rel}: stopped")
        if read_into is not None:
            buf = ctx.buffers.take(up.part_size)
            data = read_into(entry, offset, memoryview(buf)[:length])
        else:
            data = ctx.origin.read(entry, offset, length)
        digest = hashlib.md5(data).digest()
        ctx.rate.take(length)
        token = store.put_part(entry.rel, up.session, number, data, digest, offset=offset, size=up.size)
    finally:
        if buf is not None:
            ctx.buffers.give(buf)
        ctx.budget.release(length)
    expected = store.part_token(digest)
    if expected is not None and token != expected:
        raise StoreError(f"{entry.rel} part {number}: the server's checksum differs", digest=True)
    up.part_md5s[number - 1] = digest
    ctx.journal.part_done(entry.rel, number, digest.hex(), token)
    ctx.progress.sent(length)
    return number, token


def resume(ctx: Sending, entry, before, part_size: int, count: int):
    """The journal's unfinished session for this file, if it still fits the file and the server has it:
    (session, the file's MD5, part MD5s, parts done); (None, ...) when there is none to go on from."""
    store, journal = ctx.store, ctx.journal
    record = journal.get(entry.rel)
    if record is None or not record.upload_id:
        return None, b"", [], {}
    fits = (record.size == before.size and record.mtime_ns == before.mtime_ns
            and record.part_size == part_size and record.md5)
    server = (store.uploaded_parts(entry.rel, record.upload_id, size=before.size, part_size=part_size)
              if fits else None)
    if server is None:
        store.abort(entry.rel, record.upload_id)
        journal.forget(entry.rel)
        return None, b"", [], {}
    parts = journal.parts(entry.rel)
    part_md5s: list[bytes | None] = [None] * count
    done = {}
    for number, token in server.items():
        if not 1 <= number <= count:
            continue
        md5_hex, recorded = parts.get(number, (None, None))
        if store.trust_listed_parts:
            done[number] = token or ""
        elif recorded is not None:  # journaled as sent and checked
            expected = store.part_token(bytes.fromhex(md5_hex))
            if token is None or token == (expected if expected is not None else recorded):
                done[number] = recorded if token is None else token
        if number in done and md5_hex:
            part_md5s[number - 1] = bytes.fromhex(md5_hex)
    return record.upload_id, bytes.fromhex(record.md5), part_md5s, done
