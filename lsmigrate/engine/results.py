"""What a run adds up to: each file's outcome counted once, per basis, and the first thousand failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .. import basis
from ..outcome import DONE_VERIFIED, FileResult, Outcome
from ..plan import Action


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
        if result.outcome in DONE_VERIFIED:
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


def settled_without_transfer(action: Action) -> FileResult | None:
    """The outcome of an action that needs no transfer (a problem, or verified earlier), else None."""
    if action.do is Outcome.PROBLEM:
        return FileResult(action.rel, Outcome.FAILED if action.error else Outcome.PROBLEM, 0, action.reason)
    if action.do is Outcome.SKIP:
        recorded = action.record.basis if action.record is not None else None
        return FileResult(action.rel, Outcome.SKIPPED, action.local.size, action.reason,
                          basis=recorded or basis.UNRECORDED, compared_by=action.compared_by)
    return None


def as_decided(result: FileResult, action: Action) -> FileResult:
    """The result, carrying by what the plan compared its file (the sending code knows only the file)."""
    if result.compared_by is action.compared_by:
        return result
    return replace(result, compared_by=action.compared_by)
