"""The interface every store keeps, what it answers for a stored object, and the content type it writes."""

from __future__ import annotations

import io
import mimetypes
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .. import basis
from ..scan import RemoteObject
from .errors import NotFound, StoreError

__all__ = ["RangeReader", "Receipt", "Store", "StoreError", "content_type"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the server answered for an object it stored.

    `checksum`, where the server computed one, is held against the local bytes by the caller (the store
    predicts it with `expected_token`); where it is None, `basis` names what the server did check on the
    requests themselves (a Content-MD5 on every one) and refused otherwise."""

    token: str | None  # what the journal keeps and listings show for the object (ETag, or its content MD5)
    basis: str  # lsmigrate.basis
    checksum: str | None = None


def content_type(name: str) -> tuple[str, str | None]:
    """Content type and encoding as Django's storages guess them for Label Studio's own uploads."""
    kind, encoding = mimetypes.guess_type(name)
    return kind or "application/octet-stream", encoding


class RangeReader(io.RawIOBase):
    """A read-only file over ranged GETs: memory stays at one block whatever the object's size."""

    def __init__(self, fetch, rel: str, size: int, block: int = 8 * 1024 * 1024) -> None:
        self._fetch, self._rel, self._size, self._block, self._pos = fetch, rel, size, block, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        n = min(n, self._size - self._pos, self._block)
        data = self._fetch(self._rel, self._pos, n)
        self._pos += len(data)
        return data


class Store(ABC):
    """A bucket/container and folder. Methods are blocking and thread-safe; `rel` is relative to the folder."""

    url: str
    min_part_size: int = 5 * 1024 * 1024
    max_parts: int = 10_000
    part_granule: int = 1  # every part but the last must be a multiple of this (GCS: 256 KiB)
    parallel_parts: bool = True
    trust_listed_parts: bool = False  # True where the whole-object checksum is enforced at completion
    part_views: bool = False  # put_part takes any bytes-like data and keeps no reference to it after it returns
    max_key_bytes: int = 1024  # S3 and GCS: 1024 bytes of UTF-8; Azure: 1024 characters (stricter here)
    md5_basis: str = basis.SERVER_MD5  # what a RemoteObject's `md5` from this store is (see lsmigrate.basis)
    multipart_etags: bool = False  # listed ETags of multipart objects are S3's MD5-of-part-MD5s
    probe_encryption: bool = False  # set where listed checksums decide alone (sync): ask first what they are
    prefix: str = ""

    def __init__(self, target, fs) -> None:
        """A store is a target (bucket and folder) reached through one fsspec filesystem."""
        self.target = target
        self.fs = fs
        self.bucket = target.bucket
        self.prefix = f"{target.folder}/" if target.folder else ""
        self.url = target.url

    def _key(self, rel: str) -> str:
        return self.prefix + rel

    def _where(self, rel: str | None) -> str:
        """The object (the bucket, for None) as a URL, for messages."""
        bucket = f"{self.url.split('://', 1)[0]}://{self.bucket}"
        return f"{bucket}/{self.prefix}{rel}" if rel is not None else bucket

    def key_bytes(self, rel: str) -> int:
        return len(self._key(rel).encode("utf-8"))

    @abstractmethod
    def check(self) -> None:
        """Credentials resolve and the bucket exists; raises a fatal StoreError saying which is wrong."""

    @abstractmethod
    def list(self) -> Iterator[RemoteObject]:
        """Every object below the folder, in key order."""

    @abstractmethod
    def head(self, rel: str) -> RemoteObject | None:
        """One object with the MD5 the server computed (`md5`) and any an uploader wrote (`client_md5`), or None."""

    @abstractmethod
    def put(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        """Store a whole object, the server checking `md5`; returns what it answered."""

    def event_loop(self):
        """The event loop `put_async` runs on, or None where the store has no `put_async`."""
        return None

    def verification_note(self) -> str | None:
        """What a copy's report should add about how its files were verified here, if anything."""
        return None

    def cors_rules(self) -> list | None:
        """The bucket's CORS rules (empty: none), or None where lsmigrate cannot read them for this provider."""
        return None

    def apply_cors(self, rule: dict) -> None:
        """Adds Label Studio's CORS rule (doctor --apply-cors)."""
        raise NotImplementedError

    def doctor_checks(self) -> list:
        """The provider's own preflight checks (lsmigrate.checks.Check), beyond those every store gets."""
        return []

    def can_copy_from(self, source: Store, size: int) -> bool:
        """Whether `copy_from(source, ...)` can copy an object of `size` without its bytes passing here."""
        return False

    def copy_from(self, source: Store, rel: str) -> Receipt:
        """The provider copies `rel` from `source` (same endpoint and credentials): see can_copy_from."""
        raise NotImplementedError

    async def put_async(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        """`put` for callers already on `event_loop()`: many small files without a thread handoff each."""
        raise NotImplementedError

    @abstractmethod
    def start_upload(self, rel: str, md5: bytes, size: int) -> str:
        """Open a chunked upload for an object whose whole MD5 is `md5`; returns its session id."""

    @abstractmethod
    def uploaded_parts(self, rel: str, session: str, *, size: int = 0,
                       part_size: int = 0) -> dict[int, str | None] | None:
        """Parts the server holds for this session (number -> its checksum token, or None where the server
        lists no checksum: then the journal's record of the part, checked when it was sent, decides);
        None if the session is gone."""

    @abstractmethod
    def put_part(self, rel: str, session: str, number: int, data: bytes, md5: bytes, *, offset: int = 0,
                 size: int = 0) -> str:
        """Send one part (1-based, starting at byte `offset` of a `size`-byte object), the server checking
        `md5` where it can; returns the part's checksum token."""

    @abstractmethod
    def complete(self, rel: str, session: str, parts: list[tuple[int, str]], md5: bytes) -> Receipt:
        """Assemble the parts; returns what the server answered for the whole object."""

    @abstractmethod
    def abort(self, rel: str, session: str) -> None:
        """Drop an unfinished upload (no error if it is already gone)."""

    @abstractmethod
    def expected_token(self, md5: bytes, part_md5s: list[bytes] | None) -> str | None:
        """The checksum a Receipt must carry for these bytes (whole MD5, and the part MD5s of a chunked upload)."""

    @abstractmethod
    def part_token(self, md5: bytes) -> str | None:
        """The token `put_part` must answer for a part with this MD5 (None: cannot be predicted)."""

    @abstractmethod
    def read_range(self, rel: str, start: int, length: int) -> bytes:
        """`length` bytes of an object from `start` (one ranged GET)."""

    def open(self, rel: str) -> BinaryIO:
        """Read an object back as a file (verify --download, doctor), one ranged GET per block."""
        head = self.head(rel)
        if head is None:
            raise NotFound(f"{self.url}/{rel} does not exist")
        return RangeReader(self.read_range, rel, head.size)

    @abstractmethod
    def delete(self, rel: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
