"""The record of one switch, kept as JSON next to the backup: what it holds, how it is written and read back,
and what it tells a rollback about the file today (in effect, edited since, not in effect).

Besides when and the sha256 of the bytes before and after, a record holds what changed (secrets masked) and a
salted hash per line of what the switch wrote, which tells a rollback whether, and which lines, were edited
by hand since.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import redact
from .kinds import KINDS
from .text import DeploymentFileError

RECORD_SUFFIX = ".json"
_SHOWN_VALUE = 80  # longer values (JSON object parameters) are cut in listings
_NAMED_LINES = 5
_LINE_KEY = re.compile(r"""[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?["']?([A-Za-z_][\w.-]*)["']?[ \t]*[=:]""")


@dataclass(frozen=True)
class Entry:
    """One recorded switch."""

    backup: Path
    record: Path
    time: str  # ISO 8601, UTC
    before_sha256: str
    after_sha256: str
    salt: str
    after_lines: tuple[tuple[str, str | None], ...]  # (salted line hash, variable or key on that line)
    changes: tuple[dict[str, Any], ...]  # {"name", "old", "new"}, secrets masked
    lines_changed: int

    @property
    def summary(self) -> str:
        return describe(self.changes, self.lines_changed)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")][: -1 if text.endswith("\n") else None]


def _line_hash(salt: bytes, line: str) -> str:
    return hashlib.sha256(salt + line.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _line_key(line: str) -> str | None:
    m = _LINE_KEY.match(line)
    return m[1] if m and not line.lstrip().startswith("#") else None


def _readings(old: str, new: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """Each text's settings, read as the first kind of deployment file that reads both (the record does not
    know the file's kind)."""
    for kind in KINDS:
        try:
            return kind.text_settings(old), kind.text_settings(new)
        except DeploymentFileError:
            continue
    return None


def _shown(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if redact.is_secret_name(name):
        return redact.MASK
    for secret in sorted(redact.nested(value), key=len, reverse=True):
        value = value.replace(secret, redact.MASK)
    value = redact.scrub(value)
    return value if len(value) <= _SHOWN_VALUE else value[: _SHOWN_VALUE - 3] + "..."


def _changes(old: str, new: str) -> list[dict[str, Any]]:
    readings = _readings(old, new)
    if readings is None:
        return []
    before, after = readings
    names = [*before, *(k for k in after if k not in before)]
    return [{"name": k, "old": _shown(k, before.get(k)), "new": _shown(k, after.get(k))}
            for k in names if before.get(k) != after.get(k)]


def describe(changes: tuple[dict[str, Any], ...] | list[dict[str, Any]], lines_changed: int = 0) -> str:
    """`STORAGE_TYPE volume -> s3, STORAGE_AWS_BUCKET_NAME -> b` (values as recorded, secrets masked)."""
    def show(v: str) -> str:
        return v if v else '""'

    parts = []
    for c in changes:
        if c["old"] is None:
            parts.append(f"{c['name']} -> {show(c['new'])}")
        elif c["new"] is None:
            parts.append(f"{c['name']} {show(c['old'])} -> (removed)")
        else:
            parts.append(f"{c['name']} {show(c['old'])} -> {show(c['new'])}")
    return ", ".join(parts) or f"{lines_changed} line(s) changed"


def new_record(backup: Path, when: datetime, old: bytes, new: bytes) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    old_text, new_text = old.decode("utf-8", "surrogateescape"), new.decode("utf-8", "surrogateescape")
    diff = difflib.ndiff(_lines(old_text), _lines(new_text))
    return {
        "lsmigrate_switch": 1,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backup": backup.name,
        "before_sha256": sha256(old),
        "after_sha256": sha256(new),
        "salt": salt.hex(),
        "after_lines": [[_line_hash(salt, line), _line_key(line)] for line in _lines(new_text)],
        "changes": _changes(old_text, new_text),
        "lines_changed": sum(1 for line in diff if line[:1] in "+-"),
    }


def load_record(record: Path) -> Entry:
    try:
        doc = json.loads(record.read_text(encoding="utf-8"))
        entry = Entry(backup=record.with_name(doc["backup"]), record=record, time=doc["time"],
                      before_sha256=doc["before_sha256"], after_sha256=doc["after_sha256"], salt=doc["salt"],
                      after_lines=tuple((h, k) for h, k in doc["after_lines"]),
                      changes=tuple(doc["changes"]), lines_changed=int(doc.get("lines_changed", 0)))
        bytes.fromhex(entry.salt)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not a record lsmigrate wrote"
        raise DeploymentFileError(f"{record}: unreadable record of a switch ({why}); move it away to go on") from None
    if record.name != entry.backup.name + RECORD_SUFFIX:
        raise DeploymentFileError(f"{record}: names another backup ({entry.backup.name}); move it away to go on")
    return entry


def when_of(entry: Entry) -> str:
    return entry.time.replace("T", " ").replace("Z", " UTC")


def state_of(entry: Entry, current: bytes | None) -> str:
    if current is None:
        return "missing"
    digest = sha256(current)
    if digest == entry.after_sha256:
        return "in effect"
    return "not in effect" if digest == entry.before_sha256 else "edited since"


def edited_lines(entry: Entry, current: bytes) -> list[str]:
    """Where the file differs from what the switch wrote: line numbers of today's file and the variable on
    each (never a value)."""
    lines = _lines(current.decode("utf-8", "surrogateescape"))
    salt = bytes.fromhex(entry.salt)
    matcher = difflib.SequenceMatcher(None, [h for h, _ in entry.after_lines],
                                      [_line_hash(salt, line) for line in lines], autojunk=False)
    places = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        keys = {_line_key(lines[j]) for j in range(j1, j2)}
        places += [f"line {j + 1}" + (f" ({key})" if (key := _line_key(lines[j])) else "") for j in range(j1, j2)]
        # A line of the switch whose variable is on none of the lines standing in its place was removed.
        where = f"after line {j1}" if j1 else "at the top"
        places += [f"a line removed {where}" + (f" ({key})" if key else "")
                   for _, key in entry.after_lines[i1:i2] if key not in keys or tag == "delete"]
    if not places:
        return ["line endings or the final newline"]
    more = len(places) - _NAMED_LINES
    return places[:_NAMED_LINES] + ([f"and {more} more"] if more > 0 else [])

