"""Every switch of a deployment file is undone one step at a time, back to the original.

A switch leaves two files next to the deployment file: the backup (`<name>.lsmigrate-backup-<UTC stamp>[-n]`,
the file's bytes before the switch, its mode and owner) and the record of the switch (the backup's name +
`.json`): when, the sha256 of the bytes before and after, what changed (secrets masked), and a salted hash
per line of what the switch wrote, which tells a rollback whether, and which lines, were edited by hand since.
The records are the stack: a rollback restores the newest one's backup and deletes that record, keeping the
backup file. Order of writes: backup, record, then the file (each fsynced, the file replaced atomically), so a
crash at any point leaves either no record or a record whose switch a rollback recognises as not in effect.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import deployment, redact
from .deployment import DeploymentFileError, StrPath

BACKUP_MARK = ".lsmigrate-backup-"
RECORD_SUFFIX = ".json"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_SHOWN_VALUE = 80  # longer values (JSON object parameters) are cut in listings
_NAMED_LINES = 5
_LINE_KEY = re.compile(r"""[ \t]*(?:-[ \t]+)?(?:export[ \t]+)?["']?([A-Za-z_][\w.-]*)["']?[ \t]*[=:]""")
_COMPOSE_ENV = re.compile(r"services\.[^.]+\.environment\.")


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


@dataclass(frozen=True)
class Rollback:
    entry: Entry
    state: str  # "in effect", "edited since", "not in effect", "missing": the file as the rollback found it
    remaining: int


# ------------------------------------------------------------------------------------------ files on disk


def _real(path: StrPath) -> Path:
    return Path(os.path.realpath(path))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _fill(fd: int, data: bytes, mode: int, owner: tuple[int, int]) -> None:
    with os.fdopen(fd, "wb", closefd=False) as f:
        f.write(data)
        f.flush()
        os.fchmod(fd, mode)
        if _is_root():
            os.fchown(fd, *owner)
        os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(target: Path, data: bytes, mode: int, owner: tuple[int, int]) -> None:
    """Replace `target` by a file holding `data` (temp file in the same directory, fsync, os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".lsmigrate-tmp")
    try:
        try:
            _fill(fd, data, mode, owner)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _order(target: Path, name: str, suffix: str = "") -> tuple[str, int] | None:
    m = re.fullmatch(re.escape(target.name + BACKUP_MARK) + r"(\d{8}T\d{6}Z)(?:-(\d+))?" + re.escape(suffix), name)
    return (m[1], int(m[2] or 0)) if m else None


def _listdir(target: Path) -> list[Path]:
    try:
        return list(target.parent.iterdir())
    except OSError as exc:
        raise DeploymentFileError(f"cannot list {target.parent}: {exc.strerror or exc}") from None


def _candidates(target: Path, when: datetime) -> Iterator[Path]:
    """Backup names after every existing one, even when the clock went back since the last switch."""
    stamp, n = when.strftime(_STAMP_FORMAT), 0
    taken = [o for p in _listdir(target) if (o := _order(target, p.name)) is not None]
    if taken and max(taken)[0] >= stamp:
        stamp, n = max(taken)[0], max(taken)[1] + 1
    while True:
        yield target.with_name(f"{target.name}{BACKUP_MARK}{stamp}" + (f"-{n}" if n else ""))
        n += 1


def _create_backup(target: Path, data: bytes, st: os.stat_result, when: datetime) -> Path:
    for candidate in _candidates(target, when):
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            try:
                _fill(fd, data, stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid))
            finally:
                os.close(fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(candidate)
            raise
        return candidate
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------- what a switch changed


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")][: -1 if text.endswith("\n") else None]


def _line_hash(salt: bytes, line: str) -> str:
    return hashlib.sha256(salt + line.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _line_key(line: str) -> str | None:
    m = _LINE_KEY.match(line)
    return m[1] if m and not line.lstrip().startswith("#") else None


def _flat(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    if isinstance(node, list):
        if node and all(isinstance(item, str) and "=" in item for item in node):  # compose `KEY=value` list
            return {f"{prefix}{k}": v for k, _, v in (item.partition("=") for item in node)}
        return {k: v for i, value in enumerate(node) for k, v in _flat(value, f"{prefix}{i}.").items()}
    if isinstance(node, bool):
        return {prefix[:-1]: "true" if node else "false"}
    return {prefix[:-1]: "null" if node is None else str(node)}


def _settings(text: str, kind: str) -> dict[str, str]:
    if kind == "env":
        return {ln.key: ln.value for ln in deployment._parse_env(text, "file")
                if ln.key is not None and ln.value is not None}
    data = deployment._plain(deployment._load_yaml(text, "file").data)
    return {} if data is None else {_COMPOSE_ENV.sub("", k): v for k, v in _flat(data).items()}


def _readings(old: str, new: str) -> tuple[dict[str, str], dict[str, str]] | None:
    for kind in ("env", "yaml"):
        try:
            return _settings(old, kind), _settings(new, kind)
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


def _record(backup: Path, when: datetime, old: bytes, new: bytes) -> dict[str, Any]:
    salt = secrets.token_bytes(16)
    old_text, new_text = old.decode("utf-8", "surrogateescape"), new.decode("utf-8", "surrogateescape")
    diff = difflib.ndiff(_lines(old_text), _lines(new_text))
    return {
        "lsmigrate_switch": 1,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backup": backup.name,
        "before_sha256": _sha256(old),
        "after_sha256": _sha256(new),
        "salt": salt.hex(),
        "after_lines": [[_line_hash(salt, line), _line_key(line)] for line in _lines(new_text)],
        "changes": _changes(old_text, new_text),
        "lines_changed": sum(1 for line in diff if line[:1] in "+-"),
    }


# ------------------------------------------------------------------------------------------------- switch


def _utc(now: datetime | None) -> datetime:
    when = now or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def switch(path: StrPath, new_text: str, *, now: datetime | None = None) -> Path:
    """Write `new_text` to the file at `path` (atomically, mode and owner kept) after backing it up and
    recording the switch; returns the backup's path."""
    name = os.fspath(path)
    target = _real(path)
    try:
        st = target.stat()
        original = target.read_bytes()
    except FileNotFoundError:
        raise DeploymentFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise DeploymentFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DeploymentFileError(f"{name} is not a regular file")
    when, data = _utc(now), new_text.encode("utf-8")
    mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    try:
        backup = _create_backup(target, original, st, when)
    except OSError as exc:
        raise DeploymentFileError(f"cannot back up {name}: {exc.strerror or exc}; nothing was changed") from None
    record = backup.with_name(backup.name + RECORD_SUFFIX)
    try:
        _atomic_write(record, json.dumps(_record(backup, when, original, data), indent=1).encode(), mode, owner)
        _atomic_write(target, data, mode, owner)
    except OSError as exc:
        for leftover in (record, backup):
            with suppress(OSError):
                leftover.unlink()
        raise DeploymentFileError(f"cannot write {name}: {exc.strerror or exc}; nothing was changed") from None
    return backup


# -------------------------------------------------------------------------------------------- the stack


def _load(record: Path) -> Entry:
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


def entries(path: StrPath) -> list[Entry]:
    """The recorded switches of the file at `path`, newest first."""
    target = _real(path)
    found = [(o, p) for p in _listdir(target) if (o := _order(target, p.name, RECORD_SUFFIX)) is not None]
    return [_load(p) for _, p in sorted(found, reverse=True)]


def latest(path: StrPath) -> Path | None:
    stack = entries(path)
    return stack[0].backup if stack else None


def _when(entry: Entry) -> str:
    return entry.time.replace("T", " ").replace("Z", " UTC")


def _state(entry: Entry, current: bytes | None) -> str:
    if current is None:
        return "missing"
    digest = _sha256(current)
    if digest == entry.after_sha256:
        return "in effect"
    return "not in effect" if digest == entry.before_sha256 else "edited since"


def _edited_lines(entry: Entry, current: bytes) -> list[str]:
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


def _read_current(target: Path, name: str) -> bytes | None:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DeploymentFileError(f"cannot read {name}: {exc.strerror or exc}") from None


def roll_back(path: StrPath, *, force: bool = False) -> Rollback:
    """Undo the newest recorded switch: restore its backup (atomically, with the backup's mode and owner) and
    drop its record. Refuses, naming the lines, when the file was edited since that switch, unless `force`."""
    name = os.fspath(path)
    target = _real(path)
    stack = entries(path)
    if not stack:
        left = sorted((o, p) for p in _listdir(target) if (o := _order(target, p.name)) is not None)
        if not left:
            raise DeploymentFileError(f"no lsmigrate backup of {name} found")
        raise DeploymentFileError(f"no recorded lsmigrate switch of {name} left to roll back (backups without a "
                                  f"record, the newest {left[-1][1].name}, are kept: copy one back by hand if needed)")
    top = stack[0]
    try:
        st = top.backup.stat()
        data = top.backup.read_bytes()
    except OSError as exc:
        raise DeploymentFileError(f"cannot read {top.backup}, the backup of the switch of {name} at {_when(top)}: "
                                  f"{exc.strerror or exc}") from None
    if _sha256(data) != top.before_sha256:
        raise DeploymentFileError(f"{top.backup} no longer holds what {name} held before the switch at {_when(top)}; "
                                  "not rolling back: restore it by hand")
    current = _read_current(target, name)
    state = _state(top, current)
    if state == "edited since" and not force:
        assert current is not None
        raise DeploymentFileError(
            f"{name} was edited since lsmigrate switched it at {_when(top)} ({', '.join(_edited_lines(top, current))}); "
            "rolling back would undo those edits: check them, then pass --force to roll back anyway")
    if state != "not in effect":
        try:
            _atomic_write(target, data, stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid))
        except OSError as exc:
            raise DeploymentFileError(f"cannot restore {name} from {top.backup.name}: {exc.strerror or exc}") from None
    try:
        top.record.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DeploymentFileError(f"restored {name}, but cannot remove {top.record}: {exc.strerror or exc}; remove it "
                                  "before the next rollback") from None
    _fsync_dir(target.parent)
    return Rollback(top, state, len(stack) - 1)


# ---------------------------------------------------------------------------------------------- showing


def listing(path: StrPath) -> dict[str, Any]:
    """The stack as a document: newest first, the newest with the state of the file today."""
    name = os.fspath(path)
    stack = entries(path)
    current = _read_current(_real(path), name) if stack else None
    return {"file": name, "switches": [
        {"time": e.time, "backup": str(e.backup), "changes": list(e.changes), "summary": e.summary,
         "state": _state(e, current) if i == 0 else None}
        for i, e in enumerate(stack)]}


def render_listing(doc: dict[str, Any]) -> str:
    if not doc["switches"]:
        return f"No recorded lsmigrate switch of {doc['file']} to roll back."
    lines = [f"Switches of {doc['file']} that --rollback undoes, newest first:"]
    for s in doc["switches"]:
        state = f"  [{s['state']}]" if s["state"] and s["state"] != "in effect" else ""
        lines.append(f"  {s['time'].replace('T', ' ').replace('Z', ' UTC')}  {s['backup']}  {s['summary']}{state}")
    return "\n".join(lines)


def render_rollback(result: Rollback, name: str) -> str:
    entry = result.entry
    if result.state == "not in effect":
        head = (f"{name} already held what it held before the switch at {_when(entry)} ({entry.summary}); "
                "dropped that switch's record.")
    else:
        forced = " (over the edits made since)" if result.state == "edited since" else ""
        head = f"Rolled back {name} from {entry.backup}{forced}: undid {entry.summary} (switched {_when(entry)})."
    if result.remaining:
        return f"{head}\n{result.remaining} earlier switch(es) left to roll back."
    return f"{head}\nThis was the last recorded switch."


def rollback_document(result: Rollback, name: str) -> dict[str, Any]:
    entry = result.entry
    return {"file": name, "restored_from": str(entry.backup), "time": entry.time, "undid": list(entry.changes),
            "summary": entry.summary, "state": result.state, "remaining": result.remaining}


# The names the rest of lsmigrate and its tests use for one switch and one step back.
write_with_backup = switch
latest_backup = latest


def rollback(path: StrPath, *, force: bool = False) -> Path:
    """Undo the newest recorded switch of the file; returns the backup it restored."""
    return roll_back(path, force=force).entry.backup
