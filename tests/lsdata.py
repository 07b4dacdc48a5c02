"""Generate realistic Label Studio base data directories (deterministic for a given seed).

Layout (see /work/shared/LABEL_STUDIO.md)::

    label_studio.sqlite3                          the database: never migrated
    media/upload/<pid>/<uuid8>-<name>             uploaded task files
    media/upload/<uuid>-<name>                    legacy flat uploads (older installs)
    media/avatars/<uuid8>-<name>.png              user avatars
    media/export/<pid>/project-<pid>-at-2024-05-01-10-30-<md5_8>.json
    export/project-1-at-...json                   legacy synchronous export, outside media
    test_data/...                                 outside media

`DataDir.files` lists exactly the files under `media/` (what a migration must copy), as
posix paths relative to `media/` -> size in bytes.

No pytest import: benchmarks and demo scripts use this module too.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DataDir", "ODD_NAMES", "make_data_dir", "make_flat_tree"]

KiB = 1024
MiB = 1024 * 1024
BLOCK = MiB

_UPLOAD_TEMPLATES = (
    "image_{:04d}.jpg",
    "IMG_20240501_{:04d}.JPG",
    "photo-{:03d}.png",
    "tasks_{:03d}.json",
    "notes_{:03d}.txt",
    "audio_clip_{:03d}.mp3",
    "frame{:05d}.jpeg",
)

_MAGIC = {
    ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".png": b"\x89PNG\r\n\x1a\n",
    ".mp3": b"ID3\x04\x00\x00",
    ".json": b'[{"data": ',
}

#: File names that break naive URL / key handling. Each gets a `<uuid8>-` prefix, except those
#: starting with "-" (a leading dash must stay leading: option parsing in CLIs).
ODD_NAMES = (
    "my photo 01.jpg",  # spaces
    "café.jpg",  # é (NFC)
    "日本語のファイル.png",  # CJK
    "emoji 😀 cat.png",  # astral-plane emoji
    "hash#1.txt",
    "what?.txt",
    "100% done.txt",
    "a+b.json",
    "rock&roll.mp3",
    "key=value.txt",
    "literal%20space.jpg",  # a literal "%20": must not be decoded to a space
    "brackets [1] (copy).png",
    "it's; fine.txt",
    "-leading-dash.txt",
)


@dataclass(frozen=True)
class DataDir:
    """A generated tree. `.files` maps posix paths relative to `.media` to sizes in bytes."""

    root: Path
    media: Path
    files: dict[str, int] = field(default_factory=dict)

    def total_bytes(self) -> int:
        return sum(self.files.values())

    def path(self, rel: str) -> Path:
        """Absolute path of a file listed in `.files`."""
        return self.media / rel

    @property
    def sqlite(self) -> Path:
        return self.root / "label_studio.sqlite3"

    def __len__(self) -> int:
        return len(self.files)


class _Writer:
    def __init__(self, media: Path, rng: random.Random) -> None:
        self.media = media
        self.rng = rng
        self.files: dict[str, int] = {}
        self._u8: set[str] = set()
        self._base_block: bytes | None = None

    def uuid8(self) -> str:
        while True:
            u = f"{self.rng.getrandbits(32):08x}"
            if u not in self._u8:
                self._u8.add(u)
                return u

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def random_size(self, min_size: int = 1, max_size: int = 300 * KiB) -> int:
        # Skewed towards small files, a few near the maximum.
        return max(min_size, int(self.rng.random() ** 2 * max_size))

    def content(self, name: str, size: int) -> bytes:
        magic = _MAGIC.get(Path(name).suffix.lower(), b"")[:size]
        return magic + self.rng.randbytes(size - len(magic))

    def put(self, rel: str, data: bytes) -> None:
        if rel in self.files:
            raise AssertionError(f"duplicate generated name {rel!r}")
        path = self.media / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[rel] = len(data)

    def put_large(self, rel: str, size: int, file_id: int) -> None:
        if self._base_block is None:
            self._base_block = self.rng.randbytes(BLOCK)
        path = self.media / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_pattern(path, size, self._base_block, file_id)
        self.files[rel] = size


def _write_pattern(path: Path, size: int, base: bytes, file_id: int) -> None:
    """Write `size` bytes in 1 MiB blocks: each block is `base` with a (file, block) header,
    so every block of every file differs, without holding more than one block in memory."""
    with open(path, "wb") as f:
        remaining = size
        block_no = 0
        while remaining > 0:
            n = min(BLOCK, remaining)
            block = struct.pack("<QQ", file_id, block_no) + base[16:]
            f.write(block[:n])
            remaining -= n
            block_no += 1


def _write_sqlite(path: Path, rows: dict[str, list[tuple]]) -> None:
    """A small real SQLite database with the Label Studio tables that reference media files."""
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    try:
        con.executescript(
            """
            CREATE TABLE htx_user (id INTEGER PRIMARY KEY, email TEXT, avatar TEXT);
            CREATE TABLE project (id INTEGER PRIMARY KEY, title TEXT);
            CREATE TABLE data_import_fileupload (
                id INTEGER PRIMARY KEY, user_id INTEGER, project_id INTEGER, file TEXT);
            CREATE TABLE task (id INTEGER PRIMARY KEY, project_id INTEGER, data TEXT);
            CREATE TABLE data_export_export (
                id INTEGER PRIMARY KEY, project_id INTEGER, file TEXT, md5 TEXT);
            """
        )
        con.executemany("INSERT INTO htx_user VALUES (?, ?, ?)", rows["users"])
        con.executemany("INSERT INTO project VALUES (?, ?)", rows["projects"])
        con.executemany("INSERT INTO data_import_fileupload VALUES (?, ?, ?, ?)", rows["uploads"])
        con.executemany("INSERT INTO task VALUES (?, ?, ?)", rows["tasks"])
        con.executemany("INSERT INTO data_export_export VALUES (?, ?, ?, ?)", rows["exports"])
        con.commit()
    finally:
        con.close()


def make_data_dir(
    root: Path,
    *,
    projects: int = 3,
    uploads_per_project: int = 20,
    avatars: int = 3,
    exports: int = 2,
    legacy_flat: int = 3,
    odd_names: bool = True,
    empty_files: bool = True,
    large_files: Sequence[int] = (),
    seed: int = 0,
) -> DataDir:
    """Create a Label Studio base data dir under `root` (created if needed; `root/media` must
    not exist yet). Same arguments and seed -> same names, sizes and bytes.

    `exports` is the total number of export files, spread over the projects.
    `large_files` are sizes in bytes of extra `<uuid8>-large-<i>.bin` files under
    `media/upload/<pid>/`, written in 1 MiB blocks.
    """
    root = Path(root)
    media = root / "media"
    if media.exists() and any(media.iterdir()):
        raise FileExistsError(f"{media} already exists and is not empty")
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    w = _Writer(media, rng)
    pids = list(range(1, projects + 1))

    def upload_dir(i: int) -> str:
        return f"upload/{pids[i % len(pids)]}" if pids else "upload"

    db: dict[str, list[tuple]] = {"users": [], "projects": [], "uploads": [], "tasks": [], "exports": []}
    by_project: dict[int, list[str]] = {pid: [] for pid in pids}

    def record_upload(rel: str) -> None:
        parts = rel.split("/")
        pid = int(parts[1]) if len(parts) == 3 else (pids[0] if pids else None)
        n = len(db["uploads"]) + 1
        db["uploads"].append((n, 1, pid, rel))
        db["tasks"].append((n, pid, json.dumps({"image": f"/data/{rel}"}, ensure_ascii=False)))
        if pid is not None and pid in by_project:
            by_project[pid].append(rel)

    # Uploads per project.
    for pid in pids:
        db["projects"].append((pid, f"Project {pid}"))
        for j in range(uploads_per_project):
            name = rng.choice(_UPLOAD_TEMPLATES).format(j + 1)
            size = w.random_size()
            rel = f"upload/{pid}/{w.uuid8()}-{name}"
            w.put(rel, w.content(name, size))
            record_upload(rel)

    # Legacy flat uploads (older installs): full uuid, no project folder.
    for j in range(legacy_flat):
        name = rng.choice(_UPLOAD_TEMPLATES).format(j + 1)
        rel = f"upload/{w.uuid()}-{name}"
        w.put(rel, w.content(name, w.random_size()))
        record_upload(rel)

    # Odd names.
    if odd_names:
        for j, name in enumerate(ODD_NAMES):
            base = name if name.startswith("-") else f"{w.uuid8()}-{name}"
            rel = f"{upload_dir(j)}/{base}"
            w.put(rel, w.content(name, w.random_size(max_size=20 * KiB)))
            record_upload(rel)

    # Empty files.
    if empty_files:
        for j, name in enumerate(("empty.txt", "empty.json")):
            rel = f"{upload_dir(j * max(1, len(pids) - 1))}/{w.uuid8()}-{name}"
            w.put(rel, b"")
            record_upload(rel)

    # Avatars.
    for j in range(avatars):
        name = f"avatar_{j + 1}.png"
        rel = f"avatars/{w.uuid8()}-{name}"
        w.put(rel, w.content(name, w.random_size(min_size=64, max_size=60 * KiB)))
        db["users"].append((j + 1, f"user{j + 1}@example.com", rel))
    if not avatars:
        db["users"].append((1, "user1@example.com", None))

    # Exports (the JSON really lists the project's tasks).
    for j in range(exports):
        pid = pids[j % len(pids)] if pids else j + 1
        tasks = [
            {"id": k + 1, "data": {"image": f"/data/{rel}"}, "annotations": [], "export": j}
            for k, rel in enumerate(by_project.get(pid, []))
        ]
        data = json.dumps(tasks, ensure_ascii=False, indent=1).encode()
        md5 = hashlib.md5(data).hexdigest()
        rel = f"export/{pid}/project-{pid}-at-2024-05-01-10-30-{md5[:8]}.json"
        w.put(rel, data)
        db["exports"].append((j + 1, pid, rel, md5))

    # Large files.
    for j, size in enumerate(large_files):
        rel = f"{upload_dir(j)}/{w.uuid8()}-large-{j}.bin"
        w.put_large(rel, int(size), file_id=j)
        record_upload(rel)

    # Outside media: database, legacy export folder, test_data. Never migrated.
    _write_sqlite(root / "label_studio.sqlite3", db)
    legacy = json.dumps([{"id": 1, "data": {"text": "legacy export"}}]).encode()
    legacy_name = f"project-1-at-2023-01-15-09-00-{hashlib.md5(legacy).hexdigest()[:8]}.json"
    (root / "export").mkdir(exist_ok=True)
    (root / "export" / legacy_name).write_bytes(legacy)
    (root / "test_data").mkdir(exist_ok=True)
    (root / "test_data" / "sample_tasks.json").write_bytes(
        json.dumps([{"data": {"text": "sample"}}]).encode()
    )

    return DataDir(root=root, media=media, files=dict(sorted(w.files.items())))


def make_flat_tree(root: Path, n_files: int, size: int, seed: int = 0) -> DataDir:
    """`n_files` files of `size` bytes each, spread over a few subdirectories of `root`
    (`dNN/file_NNNNNN.bin`), for benchmarks. Every file (and every 1 MiB block) differs.

    Returns a DataDir whose `.root` and `.media` are both `root` (`.files` is relative to it).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = random.Random(seed).randbytes(BLOCK)
    n_dirs = min(16, max(1, n_files // 200))
    files: dict[str, int] = {}
    for i in range(n_files):
        rel = f"d{i % n_dirs:02d}/file_{i:06d}.bin"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_pattern(path, size, base, file_id=((seed & 0xFFFFFFFF) << 32) | i)
        files[rel] = size
    return DataDir(root=root, media=root, files=files)
