"""One line of a preflight checklist: what `doctor` prints, and what a store's own checks add to it."""

from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL, WARN = "pass", "fail", "warn"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | fail | warn
    detail: str = ""
    fix: str = ""
