"""Is the object at the destination the same as the local file? The strongest check the server allows."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

from .checksum import digest_file, part_count
from .scan import LocalFile, RemoteObject
from .uploads.base import Store

MiB = 1024 * 1024
# Part sizes other tools use, tried when an object carries only a multipart ETag.
COMMON_PART_SIZES = (5 * MiB, 8 * MiB, 15 * MiB, 16 * MiB, 50 * MiB, 64 * MiB, 100 * MiB, 128 * MiB)


@dataclass(frozen=True, slots=True)
class Comparison:
    same: bool | None  # None: nothing to compare the local file with
    method: str  # which check decided: md5, multipart-etag, download, none
    md5: str | None = None  # the local file's MD5, when it was computed


def compare(local: LocalFile, remote: RemoteObject, store: Store, *, chunk_size: int = 16 * MiB,
            download: bool = False) -> Comparison:
    if remote.size != local.size:
        return Comparison(False, "size")
    if download:
        return _by_download(local, remote, store)
    md5 = remote.md5
    if md5 is None:
        head = store.head(local.rel)
        if head is None:
            return Comparison(False, "missing")
        remote, md5 = head, head.md5
    if md5 is not None:
        mine = digest_file(local.path).md5.hex()
        return Comparison(mine == md5, "md5", mine)
    parts = part_count(remote.etag)
    if parts and store.expected_token(b"\0" * 16, None) is not None:
        candidates = {chunk_size, math.ceil(local.size / parts / MiB) * MiB, *COMMON_PART_SIZES}
        for size in sorted(candidates):
            if math.ceil(local.size / size) != parts:
                continue
            digests = digest_file(local.path, size)
            if store.expected_token(digests.md5, list(digests.parts)) == remote.etag:
                return Comparison(True, "multipart-etag", digests.md5.hex())
        return Comparison(False, "multipart-etag")
    return Comparison(None, "none")


def _by_download(local: LocalFile, remote: RemoteObject, store: Store) -> Comparison:
    theirs = hashlib.md5()
    with store.open(local.rel) as handle:
        while block := handle.read(8 * MiB):
            theirs.update(block)
    mine = digest_file(local.path).md5.hex()
    return Comparison(theirs.hexdigest() == mine, "download", mine)


def unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    return before.st_size == after.st_size and before.st_mtime_ns == after.st_mtime_ns and before.st_ino == after.st_ino
