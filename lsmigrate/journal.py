"""The SQLite journal: what was verified, and where each interrupted large upload stands.

One journal per (source, destination) pair. Writes are batched into transactions (a kill loses at most
the last batch, which only means those files are checked again); multipart state is committed at once,
since it is what a resume stands on.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    rel TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    md5 TEXT,
    status TEXT NOT NULL,
    etag TEXT,
    upload_id TEXT,
    part_size INTEGER,
    updated REAL NOT NULL,
    basis TEXT
);
CREATE TABLE IF NOT EXISTS parts (
    rel TEXT NOT NULL,
    part INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    etag TEXT,
    PRIMARY KEY (rel, part)
);
"""
VERIFIED = "verified"
UPLOADING = "uploading"


class JournalError(Exception):
    """The journal cannot be opened or written (one line, names the file)."""


@dataclass(frozen=True, slots=True)
class Record:
    rel: str
    size: int
    mtime_ns: int
    md5: str | None
    status: str
    etag: str | None
    upload_id: str | None
    part_size: int | None
    basis: str | None = None  # on what the verification rested (lsmigrate.basis)

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/lsmigrate (default ~/.local/state/lsmigrate): journals and locks."""
    environ = os.environ if environ is None else environ
    state = environ.get("XDG_STATE_HOME") or os.path.join(environ.get("HOME", str(Path.home())), ".local", "state")
    return Path(state) / "lsmigrate"


def default_path(source: str, destination: str, environ: Mapping[str, str] | None = None) -> Path:
    """<state dir>/<pair hash>.sqlite3: one journal per (source, destination) pair."""
    pair = hashlib.sha256(f"{source}\0{destination}".encode()).hexdigest()[:16]
    return state_dir(environ) / f"{pair}.sqlite3"


class Journal:
    """Thread-safe: one connection behind a lock, batched commits."""

    def __init__(self, path: str | os.PathLike, *, source: str = "", destination: str = "",
                 commit_every: float = 0.25) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._commit_every = commit_every
        self._last_commit = time.monotonic()
        self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
            if "basis" not in columns:  # a journal from before bases were recorded
                self._db.execute("ALTER TABLE files ADD COLUMN basis TEXT")
            self._db.execute("BEGIN")
            for key, value in (("source", source), ("destination", destination)):
                if value:
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {self.path} is unusable ({exc}); move it aside or pass another --state") from exc
        except OSError as exc:
            raise JournalError(f"cannot create journal {self.path}: {exc.strerror or exc}") from exc

    # reading
    def records(self) -> Iterator[Record]:
        """All records in key order (SQLite's BINARY collation is UTF-8 byte order, like object listings).

        Streams from a second connection, so memory stays flat and writers are not held up (WAL).
        """
        self.flush()
        reader = sqlite3.connect(self.path, check_same_thread=False)
        try:
            cursor = reader.execute("SELECT rel, size, mtime_ns, md5, status, etag, upload_id, part_size, basis "
                                    "FROM files ORDER BY rel")
            for row in cursor:
                yield Record(*row)
        finally:
            reader.close()

    def get(self, rel: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT rel, size, mtime_ns, md5, status, etag, upload_id, part_size, basis "
                                   "FROM files WHERE rel = ?", (rel,)).fetchone()
        return Record(*row) if row else None

    def parts(self, rel: str) -> dict[int, tuple[str, str | None]]:
        """part number -> (local md5 hex, server etag or None when not yet confirmed)."""
        with self._lock:
            rows = self._db.execute("SELECT part, md5, etag FROM parts WHERE rel = ?", (rel,)).fetchall()
        return {part: (md5, etag) for part, md5, etag in rows}

    def open_uploads(self) -> list[Record]:
        with self._lock:
            rows = self._db.execute("SELECT rel, size, mtime_ns, md5, status, etag, upload_id, part_size, basis "
                                    "FROM files WHERE upload_id IS NOT NULL").fetchall()
        return [Record(*row) for row in rows]

    # writing
    def _write(self, sql: str, args: tuple, *, durable: bool = False) -> None:
        with self._lock:
            try:
                if not self._dirty:
                    self._db.execute("BEGIN")
                    self._dirty = True
                self._db.execute(sql, args)
                if durable or time.monotonic() - self._last_commit >= self._commit_every:
                    self._commit()
            except sqlite3.Error as exc:
                self._abandon()
                raise JournalError(f"cannot write journal {self.path}: {exc}") from None

    def _commit(self) -> None:
        if self._dirty:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._abandon()
                raise JournalError(f"cannot write journal {self.path}: {exc}") from None
            self._dirty = False
        self._last_commit = time.monotonic()

    def _abandon(self) -> None:
        """After a failed write (a full disk, say) SQLite may have rolled back already: make sure, and
        start clean, so what was committed before stays and nothing half-written is kept."""
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._dirty = False

    def mark_verified(self, rel: str, size: int, mtime_ns: int, md5: str, etag: str | None,
                      basis: str | None = None) -> None:
        """`basis`: on what the server vouched for the bytes (lsmigrate.basis)."""
        with self._lock:
            had_parts = self._has_upload(rel)
            self._write(
                "INSERT OR REPLACE INTO files (rel, size, mtime_ns, md5, status, etag, upload_id, part_size, updated, "
                "basis) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                (rel, size, mtime_ns, md5, VERIFIED, etag, time.time(), basis),
            )
            if had_parts:
                self._write("DELETE FROM parts WHERE rel = ?", (rel,), durable=True)

    def _has_upload(self, rel: str) -> bool:
        row = self._db.execute("SELECT upload_id FROM files WHERE rel = ?", (rel,)).fetchone()
        return bool(row and row[0])

    def start_upload(self, rel: str, size: int, mtime_ns: int, md5: str, upload_id: str, part_size: int) -> None:
        with self._lock:
            self._write("DELETE FROM parts WHERE rel = ?", (rel,))
            self._write(
                "INSERT OR REPLACE INTO files (rel, size, mtime_ns, md5, status, etag, upload_id, part_size, updated) "
                "VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (rel, size, mtime_ns, md5, UPLOADING, upload_id, part_size, time.time()),
            )
            self._commit()

    def part_done(self, rel: str, part: int, md5: str, etag: str) -> None:
        """A part sent and checked: its MD5 (for the final ETag arithmetic) and what the server answered."""
        self._write("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?)", (rel, part, md5, etag), durable=True)

    def forget(self, rel: str) -> None:
        with self._lock:
            self._write("DELETE FROM parts WHERE rel = ?", (rel,))
            self._write("DELETE FROM files WHERE rel = ?", (rel,), durable=True)

    def flush(self) -> None:
        with self._lock:
            self._commit()

    def close(self) -> None:
        with self._lock:
            try:
                self._commit()
            finally:
                self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
