"""The pure diff: local listing x destination listing x journal -> one action per path, with a reason.

The same actions drive `plan` (dry run), `copy`, `verify`, `sync` and the JSON report.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .journal import Record
from .labelstudio import category
from .outcome import Compared, Outcome
from .scan import LocalFile, Problem, RemoteObject, mtime_ns
from .stores.base import StoreError


@dataclass(frozen=True, slots=True)
class Action:
    do: Outcome  # one of outcome.DECIDED
    rel: str
    reason: str
    local: LocalFile | RemoteObject | None = None  # the source side (a local file, or an object when syncing)
    remote: RemoteObject | None = None
    record: Record | None = None
    error: bool = False
    compared_by: Compared | None = None  # by what the decision was taken (None: a problem, nothing compared)


class ListingOrderError(StoreError):
    """A listing out of key order, or holding one key twice: merged anyway, it would plan wrong actions."""

    def __init__(self, message: str) -> None:
        super().__init__(message, fatal=True)


def _in_order(items: Iterable, side: str) -> Iterator:
    """The items of one listing, each checked to come strictly after the one before (rclone's march does).

    Problems are left out of the check: they carry a name as it can be printed (an undecodable name with
    replacement characters), not a key of the listing."""
    previous = None
    for item in items:
        if not isinstance(item, Problem):
            rel = item.rel
            if previous is not None and rel <= previous:
                if rel == previous:
                    raise ListingOrderError(f"the {side} listing holds {rel!r} twice")
                raise ListingOrderError(f"the {side} listing is not in key order: {rel!r} came after {previous!r}")
            previous = rel
        yield item


def _merge(local: Iterable[LocalFile | Problem], remote: Iterable[RemoteObject], records: Iterable[Record]):
    """Yield (rel, local-or-problem, remote, record) for every rel in any of the three sorted streams."""
    tagged = heapq.merge(
        ((item.rel, 0, item) for item in _in_order(local, "source")),
        ((item.rel, 1, item) for item in _in_order(remote, "destination")),
        ((item.rel, 2, item) for item in _in_order(records, "journal")),
    )
    current: list = [None, None, None, None]
    for rel, side, item in tagged:
        if current[0] is not None and rel != current[0]:
            yield tuple(current)
            current = [None, None, None, None]
        current[0] = rel
        current[side + 1] = item
    if current[0] is not None:
        yield tuple(current)


def decide(
    local: LocalFile | Problem | None, remote: RemoteObject | None, record: Record | None, rel: str
) -> Action | None:
    if isinstance(local, Problem):
        return Action(Outcome.PROBLEM, rel, local.reason, remote=remote, error=local.error)
    if local is None:
        return Action(Outcome.EXTRA, rel, "only at the destination", remote=remote, compared_by=Compared.LISTING) \
            if remote else None
    if remote is None:
        why = "resume interrupted upload" if record and record.upload_id else "missing at destination"
        return Action(Outcome.COPY, rel, why, local=local, record=record, compared_by=Compared.LISTING)
    if remote.size != local.size:
        return Action(Outcome.COPY, rel, "size differs", local=local, remote=remote, record=record,
                      compared_by=Compared.LISTING)
    if (
        record is not None
        and record.verified
        and record.size == local.size
        and record.mtime_ns == local.mtime_ns
        and record.etag == remote.etag
    ):
        return Action(Outcome.SKIP, rel, "verified earlier, unchanged", local=local, remote=remote, record=record,
                      compared_by=Compared.JOURNAL)
    return Action(Outcome.CHECK, rel, "same size, checksum to compare", local=local, remote=remote, record=record,
                  compared_by=Compared.CHECKSUM)


def decide_unlisted(local: LocalFile | Problem | None, record: Record | None, rel: str) -> Action | None:
    """`--no-traverse`: the destination is not listed, so the journal alone vouches for what is there."""
    if isinstance(local, Problem):
        return Action(Outcome.PROBLEM, rel, local.reason, error=local.error)
    if local is None:
        return None
    if record is not None and record.verified and record.size == local.size and record.mtime_ns == local.mtime_ns:
        return Action(Outcome.SKIP, rel, "verified earlier, unchanged (destination not listed)", local=local,
                      record=record, compared_by=Compared.JOURNAL)
    why = "resume interrupted upload" if record and record.upload_id else "not verified earlier (destination not listed)"
    return Action(Outcome.COPY, rel, why, local=local, record=record, compared_by=Compared.JOURNAL)


def plan(
    local: Iterable[LocalFile | Problem], remote: Iterable[RemoteObject] | None, records: Iterable[Record] = ()
) -> Iterator[Action]:
    """Streams actions in key order; memory stays flat whatever the number of files.

    `remote` None: the destination was not listed (`--no-traverse`), and the journal decides alone.
    """
    for rel, left, right, record in _merge(local, remote or (), records):
        action = decide(left, right, record, rel) if remote is not None else decide_unlisted(left, record, rel)
        if action is not None:
            yield action


@dataclass
class Tally:
    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size


@dataclass
class Summary:
    """What a plan adds up to: per category, what to copy, what is there already, the largest files."""

    multipart_threshold: int
    top: int = 10
    by_category: dict[str, Tally] = field(default_factory=dict)
    source: Tally = field(default_factory=Tally)
    to_copy: Tally = field(default_factory=Tally)
    identical: Tally = field(default_factory=Tally)
    to_check: Tally = field(default_factory=Tally)
    multipart: Tally = field(default_factory=Tally)
    extra: Tally = field(default_factory=Tally)
    problems: list[tuple[str, str, bool]] = field(default_factory=list)
    _largest: list[tuple[int, str]] = field(default_factory=list)

    def add(self, action: Action) -> None:
        if action.do is Outcome.PROBLEM:
            if len(self.problems) < 1000:
                self.problems.append((action.rel, action.reason, action.error))
            return
        if action.do is Outcome.EXTRA:
            self.extra.add(action.remote.size if action.remote else 0)
            return
        size = action.local.size
        self.source.add(size)
        self.by_category.setdefault(category(action.rel), Tally()).add(size)
        if len(self._largest) < self.top:
            heapq.heappush(self._largest, (size, action.rel))
        elif size > self._largest[0][0]:
            heapq.heapreplace(self._largest, (size, action.rel))
        if action.do is Outcome.SKIP:
            self.identical.add(size)
        elif action.do is Outcome.CHECK:
            self.to_check.add(size)
        else:
            self.to_copy.add(size)
            if size > self.multipart_threshold:
                self.multipart.add(size)

    def settle(self, rel_size: int, identical: bool) -> None:
        """A CHECK resolved by comparing checksums."""
        self.to_check.files -= 1
        self.to_check.bytes -= rel_size
        if identical:
            self.identical.add(rel_size)
        else:
            self.to_copy.add(rel_size)
            if rel_size > self.multipart_threshold:
                self.multipart.add(rel_size)

    @property
    def largest(self) -> list[tuple[int, str]]:
        return sorted(self._largest, reverse=True)


def decide_sync(source: LocalFile | RemoteObject | Problem | None, dest: RemoteObject | None,
                record: Record | None, rel: str) -> Action | None:
    """Replication: content checksums where both sides state one, the journal where it vouches for both,
    else (objects with no MD5 on one side) size plus modification time, and the reason says which."""
    if source is None or isinstance(source, Problem) or isinstance(source, LocalFile):
        return decide(source, dest, record, rel)
    if dest is None:
        return Action(Outcome.COPY, rel, "missing at destination", local=source, record=record,
                      compared_by=Compared.LISTING)
    if dest.size != source.size:
        return Action(Outcome.COPY, rel, "size differs", local=source, remote=dest, record=record,
                      compared_by=Compared.LISTING)
    # The journal first: it vouches for the destination object by the ETag it answered, which holds whatever
    # that ETag is (under SSE-KMS it is no MD5, and a listing cannot say so).
    if (record is not None and record.verified and record.size == source.size
            and record.mtime_ns == mtime_ns(source) and record.etag == dest.etag
            and (not source.md5 or record.md5 == source.md5)):
        return Action(Outcome.SKIP, rel, "verified earlier, unchanged", local=source, remote=dest, record=record,
                      compared_by=Compared.JOURNAL)
    if source.md5 and dest.md5:
        if source.md5 == dest.md5:
            return Action(Outcome.SKIP, rel, "same md5", local=source, remote=dest, record=record,
                          compared_by=Compared.MD5)
        return Action(Outcome.COPY, rel, "md5 differs", local=source, remote=dest, record=record,
                      compared_by=Compared.MD5)
    if (dest.mtime or 0) >= (source.mtime or 0):
        return Action(Outcome.SKIP, rel, "same size, destination not older (size+mtime; no md5 on both sides)",
                      local=source, remote=dest, record=record, compared_by=Compared.SIZE_MTIME)
    return Action(Outcome.COPY, rel, "source newer (size+mtime; no md5 on both sides)", local=source, remote=dest,
                  record=record, compared_by=Compared.SIZE_MTIME)


def plan_sync(source: Iterable[LocalFile | RemoteObject | Problem], dest: Iterable[RemoteObject],
              records: Iterable[Record] = ()) -> Iterator[Action]:
    for rel, left, right, record in _merge(source, dest, records):
        action = decide_sync(left, right, record, rel)
        if action is not None:
            yield action
