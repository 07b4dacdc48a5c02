"""Where the bytes come from: a local tree, or another bucket (sync between clouds).

The engine reads through this, so the same upload code serves `copy` from disk and `sync` from a
remote store, streaming in parts: a large remote object never sits whole in memory or on disk.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

from .checksum import READ_BLOCK, digest_file, open_regular
from .scan import LocalFile, RemoteObject, mtime_ns
from .stores.base import Store


class SourceChanged(Exception):
    """The source changed while it was being read: nothing is marked done, the file is tried again."""


class Version(NamedTuple):
    """What identifies one state of a source file: it must not change while the file is being sent."""

    size: int
    mtime_ns: int
    tag: object  # the inode of a local file, the ETag of an object


class LocalOrigin:
    """Files of the local tree, by the absolute paths the scan recorded."""

    @staticmethod
    def _version(st: os.stat_result) -> Version:
        return Version(st.st_size, st.st_mtime_ns, st.st_ino)

    def read_whole(self, entry: LocalFile) -> tuple[bytes, Version]:
        with open_regular(entry.path) as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
        if len(data) != st.st_size:
            raise SourceChanged(f"{entry.rel} changed while being read")
        return data, self._version(st)

    def version(self, entry: LocalFile) -> Version:
        return self._version(os.stat(entry.path))

    def read(self, entry: LocalFile, offset: int, length: int) -> bytes:
        with open_regular(entry.path) as handle:
            data = os.pread(handle.fileno(), length, offset)
        if len(data) != length:
            raise SourceChanged(f"{entry.rel} changed while being sent")
        return data

    def read_into(self, entry: LocalFile, offset: int, view: memoryview) -> memoryview:
        """Like read, into the caller's buffer (no fresh pages to fault in); returns `view`."""
        done = 0
        with open_regular(entry.path) as handle:
            while done < len(view):  # one read stops short of 2 GiB on Linux
                n = os.preadv(handle.fileno(), [view[done:]], offset + done)
                if n <= 0:
                    break
                done += n
        if done != len(view):
            raise SourceChanged(f"{entry.rel} changed while being sent")
        return view

    def md5(self, entry: LocalFile, version: Version) -> bytes:
        digests = digest_file(entry.path)
        if digests.size != version.size:
            raise SourceChanged(f"{entry.rel} changed while being hashed")
        return digests.md5


class StoreOrigin:
    """Objects of another store, read with ranged GETs."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _version(entry: RemoteObject) -> Version:
        return Version(entry.size, mtime_ns(entry), entry.etag)

    def read_whole(self, entry: RemoteObject) -> tuple[bytes, Version]:
        data = self.store.read_range(entry.rel, 0, entry.size) if entry.size else b""
        if len(data) != entry.size:
            raise SourceChanged(f"{entry.rel} changed while being read")
        if entry.md5 and hashlib.md5(data).hexdigest() != entry.md5 and self._own_md5(entry):
            raise SourceChanged(f"{entry.rel}: the bytes read do not match the source's own MD5")
        return data, self._version(entry)

    def version(self, entry: RemoteObject) -> Version:
        head = self.store.head(entry.rel)
        if head is None:
            raise SourceChanged(f"{entry.rel} disappeared from the source")
        return self._version(head)

    def read(self, entry: RemoteObject, offset: int, length: int) -> bytes:
        data = self.store.read_range(entry.rel, offset, length)
        if len(data) != length:
            raise SourceChanged(f"{entry.rel} changed while being sent")
        return data

    def _own_md5(self, entry: RemoteObject) -> str | None:
        """The MD5 the source's server computed, from the object's own answer: a listed S3 ETag may be an
        SSE-KMS one, which is no MD5 (the listing cannot say)."""
        return (self.store.head(entry.rel) or entry).md5

    def md5(self, entry: RemoteObject, version: Version) -> bytes:
        """The source's MD5 when its server computed one; else one streaming pass over the object."""
        known = self._own_md5(entry)
        if known:
            return bytes.fromhex(known)
        digest = hashlib.md5()
        for offset in range(0, entry.size, READ_BLOCK * 2):
            digest.update(self.read(entry, offset, min(READ_BLOCK * 2, entry.size - offset)))
        return digest.digest()
