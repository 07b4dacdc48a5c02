"""Every switch of a deployment file is undone one step at a time, back to the original.

A switch leaves two files next to the deployment file: the backup (`<name>.lsmigrate-backup-<UTC stamp>[-n]`,
the file's bytes before the switch, its mode and owner) and the record of the switch (the backup's name +
`.json`, switch_record.py). The records are the stack: a rollback restores the newest one's backup and deletes that record, keeping the
backup file. Order of writes: backup, record, then the file (each fsynced, the file replaced atomically), so a
crash at any point leaves either no record or a record whose switch a rollback recognises as not in effect.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .switch_record import RECORD_SUFFIX, Entry, edited_lines, load_record, new_record, sha256, state_of, when_of
from .text import DeploymentFileError, StrPath

BACKUP_MARK = ".lsmigrate-backup-"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Rollback:
    entry: Entry
    state: str  # "in effect", "edited since", "not in effect", "missing": the file as the rollback found it
    remaining: int


# ------------------------------------------------------------------------------------------ files on disk


def _real(path: StrPath) -> Path:
    return Path(os.path.realpath(path))


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
        _atomic_write(record, json.dumps(new_record(backup, when, original, data), indent=1).encode(), mode, owner)
        _atomic_write(target, data, mode, owner)
    except OSError as exc:
        for leftover in (record, backup):
            with suppress(OSError):
                leftover.unlink()
        raise DeploymentFileError(f"cannot write {name}: {exc.strerror or exc}; nothing was changed") from None
    return backup


# -------------------------------------------------------------------------------------------- the stack

# -------------------------------------------------------------------------------------------- the stack


def entries(path: StrPath) -> list[Entry]:
    """The recorded switches of the file at `path`, newest first."""
    target = _real(path)
    found = [(o, p) for p in _listdir(target) if (o := _order(target, p.name, RECORD_SUFFIX)) is not None]
    return [load_record(p) for _, p in sorted(found, reverse=True)]


def latest(path: StrPath) -> Path | None:
    stack = entries(path)
    return stack[0].backup if stack else None


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
        raise DeploymentFileError(f"cannot read {top.backup}, the backup of the switch of {name} at {when_of(top)}: "
                                  f"{exc.strerror or exc}") from None
    if sha256(data) != top.before_sha256:
        raise DeploymentFileError(f"{top.backup} no longer holds what {name} held before the switch at {when_of(top)}; "
                                  "not rolling back: restore it by hand")
    current = _read_current(target, name)
    state = state_of(top, current)
    if state == "edited since" and not force:
        assert current is not None
        raise DeploymentFileError(
            f"{name} was edited since lsmigrate switched it at {when_of(top)} ({', '.join(edited_lines(top, current))}); "
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
         "state": state_of(e, current) if i == 0 else None}
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
        head = (f"{name} already held what it held before the switch at {when_of(entry)} ({entry.summary}); "
                "dropped that switch's record.")
    else:
        forced = " (over the edits made since)" if result.state == "edited since" else ""
        head = f"Rolled back {name} from {entry.backup}{forced}: undid {entry.summary} (switched {when_of(entry)})."
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
