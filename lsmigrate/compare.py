"""Is the object at the destination the same as the local file? The strongest check the server allows."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

from . import basis
from .checksum import digest_file, part_count
from .scan import LocalFile, RemoteObject
from .stores.base import Store
from .units import MiB

# Part sizes other tools use, tried when an object carries only a multipart ETag.
COMMON_PART_SIZES = (5 * MiB, 8 * MiB, 15 * MiB, 16 * MiB, 50 * MiB, 64 * MiB, 100 * MiB, 128 * MiB)


@dataclass(frozen=True, slots=True)
class Comparison:
    same: bool | None  # None: nothing the server computed to compare the local file with (unchecked)
    basis: str  # what decided (lsmigrate.basis), or what was found wanting: size, missing
    md5: str | None = None  # the local file's MD5, when it was computed


def compare(local: LocalFile, remote: RemoteObject, store: Store, *, chunk_size: int = 16 * MiB,
            download: bool = False) -> Comparison:
    """The strongest check the server allows: its own MD5 of the bytes (a plain S3 ETag, GCS md5Hash, Azure
    Put Blob's Content-MD5), else S3's multipart ETag arithmetic, else nothing (unchecked). A checksum that
    only an uploader wrote (md5chksum) can show a difference but never proves a match."""
    if remote.size != local.size:
        return Comparison(False, basis.SIZE)
    if download:
        return _by_download(local, remote, store)
    listed = remote.md5 is not None or (store.multipart_etags and part_count(remote.etag))
    head = None
    if not listed:
        head = store.head(local.rel)
        if head is None:
            return Comparison(False, basis.MISSING)
        remote = head
    mine = digest_file(local.path).md5.hex()
    if remote.md5 is not None and remote.md5 != mine and head is None:
        # A listed ETag taken for an MD5 may belong to an object encrypted with SSE-KMS (its ETag is opaque):
        # the object's own answer says what its ETag is before it is called different.
        head = store.head(local.rel)
        if head is None:
            return Comparison(False, basis.MISSING)
        remote = head
    if remote.md5 is not None:
        return Comparison(remote.md5 == mine, store.md5_basis, mine)
    parts = part_count(remote.etag)
    if parts and store.multipart_etags:
        candidates = {chunk_size, math.ceil(local.size / parts / MiB) * MiB, *COMMON_PART_SIZES}
        for size in sorted(candidates):
            if math.ceil(local.size / size) != parts:
                continue
            digests = digest_file(local.path, size)
            if store.expected_token(digests.md5, list(digests.parts)) == remote.etag:
                return Comparison(True, basis.MULTIPART_ETAG, digests.md5.hex())
        # No part size we know of explains it: that proves no difference, only that we could not check.
    client_md5 = remote.client_md5 if head is not None else (store.head(local.rel) or remote).client_md5
    if client_md5 is not None and client_md5 != mine:
        return Comparison(False, basis.CLIENT_MD5, mine)
    return Comparison(None, basis.CLIENT_MD5 if client_md5 else basis.NONE, mine)


def _by_download(local: LocalFile, remote: RemoteObject, store: Store) -> Comparison:
    theirs = hashlib.md5()
    with store.open(local.rel) as handle:
        while block := handle.read(8 * MiB):
            theirs.update(block)
    mine = digest_file(local.path).md5.hex()
    return Comparison(theirs.hexdigest() == mine, basis.DOWNLOAD, mine)


def unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    return before.st_size == after.st_size and before.st_mtime_ns == after.st_mtime_ns and before.st_ino == after.st_ino
