"""One file's fate in one set of words: what the plan decides, what a run did, what verify found.

The words are the ones the user sees (the -v lines, sync's --json-log events, verify's problem lines, the
keys of the --json documents), one per state, as rclone logs one word per file. Each stage uses its own
part of the vocabulary (DECIDED, DONE, FOUND); a word common to two stages means the same there. A per-file
result carries, as fields, on what its "verified" rests (lsmigrate.basis) and by what the plan compared it
(Compared): nothing is ever read back out of the human-readable reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    # decided by the plan, before anything is sent or read
    COPY = "copy"  # missing or different at the destination
    SKIP = "skip"  # verified identical (journal record matches both sides)
    CHECK = "check"  # same size, no proof yet: compare checksums before deciding
    EXTRA = "extra"  # at the destination only
    PROBLEM = "problem"  # cannot be copied (see reason); only a warning unless an error
    # what a run did with it
    COPIED = "copied"
    SKIPPED = "skipped"  # left alone: verified earlier (copy), not a regular file (verify)
    IDENTICAL = "identical"  # already at the destination, checksums compared now
    FAILED = "failed"
    DELETED = "deleted"  # sync --delete: only at the destination, removed
    # what verify found at the destination
    OK = "ok"  # verified (see its basis)
    MISSING = "missing"
    DIFFERENT = "different"
    UNCHECKED = "unchecked"  # the server holds no checksum of its own to compare with (use --download)
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


DECIDED = (Outcome.COPY, Outcome.SKIP, Outcome.CHECK, Outcome.EXTRA, Outcome.PROBLEM)
DONE = (Outcome.COPIED, Outcome.SKIPPED, Outcome.IDENTICAL, Outcome.FAILED, Outcome.PROBLEM)
DONE_VERIFIED = frozenset({Outcome.COPIED, Outcome.SKIPPED, Outcome.IDENTICAL})  # a run's files now verified
# One of these per planned source file that verify looked at; EXTRA is counted apart (no source file).
FOUND = (Outcome.OK, Outcome.MISSING, Outcome.DIFFERENT, Outcome.UNCHECKED, Outcome.ERROR, Outcome.SKIPPED)
FOUND_WANTING = (Outcome.MISSING, Outcome.DIFFERENT, Outcome.UNCHECKED, Outcome.ERROR)  # verify is not clean


class Compared(str, Enum):
    """By what the plan judged a file that both sides (or the journal) know: sync's `compared_by`."""

    LISTING = "listing"  # the listings alone: missing, or another size
    JOURNAL = "journal"  # the journal vouches for both sides (verified earlier, unchanged)
    MD5 = "md5"  # the MD5s both servers state
    SIZE_MTIME = "size+mtime"  # size and modification time (no MD5 on both sides)
    CHECKSUM = "checksum"  # same size: checksums compared when the file is sent (or looked at)

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's fate at the end of a stage (a copy, a sync, a verify)."""

    rel: str
    outcome: Outcome
    size: int
    reason: str = ""  # for the user: why it failed, was left alone, or was found wanting
    basis: str = ""  # on what "verified" rests (lsmigrate.basis), or what was found wanting (size, listing)
    resumed: int = 0  # for a copied file whose upload went on from an earlier run's session: the bytes it held
    compared_by: Compared | None = None  # by what the plan judged it, when both sides were known
