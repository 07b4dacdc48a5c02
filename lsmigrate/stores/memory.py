"""An object store held in memory that keeps every promise of the Store interface, the way S3 keeps them.

For tests: the engine, plan and verify run against it without a server. It answers as S3 does (without
SSE-KMS): the ETag of a whole PUT is the MD5 of its bytes, a completed multipart upload's is the MD5 of
the part MD5s with `-N`, Content-MD5 is checked on every request that carries bytes, listings come in key
order a page at a time, parts below the minimum size are refused at completion. tests/test_store_contract.py
holds it to the same promises as the real S3 store on moto.

A `MemoryServer` is the service (buckets, open uploads, the requests it answered); a `MemoryStore` is
one bucket and folder on it, as a real store is. Faults are injected on the server (`inject`,
`drop_part`) and met in one place, `MemoryServer.request`; the normal path never looks at them.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .. import basis
from ..checksum import multipart_etag
from ..scan import RemoteObject
from ..units import MiB
from .base import Receipt, Store, StoreError, content_type
from .errors import BucketNotFound, ChecksumMismatch, Gone, NotFound
from .s3.limits import LIMITS as S3_LIMITS

MAX_COPY_SIZE = S3_LIMITS.max_whole  # CopyObject's limit: the memory store answers as S3 does
MAX_PART_NUMBER = 10_000
PAGE_SIZE = 1000  # keys per listing request, as S3's
REQUEST_KINDS = frozenset({"check", "list", "head", "put", "start_upload", "uploaded_parts", "put_part", "complete",
                           "abort", "read_range", "delete", "copy_from"})
WRITES = frozenset({"put", "put_part", "complete", "copy_from"})  # the requests a `corrupt` fault can meet


@dataclass
class StoredObject:
    data: bytes
    etag: str
    mtime: float
    client_md5: str | None  # the `md5chksum` metadata the uploader wrote (hex), kept apart from the ETag
    content_type: str


@dataclass
class OpenUpload:
    bucket: str
    key: str
    client_md5: str | None
    content_type: str
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)  # number -> (bytes, ETag)


@dataclass
class Fault:
    """From the `nth` request of `kind` (for `rel` only, when given) on, `times` requests meet it: `error`
    is raised instead of an answer, or with `corrupt` the request is served but the server keeps other
    bytes than it received (one byte flipped) and answers honestly for those."""

    kind: str
    nth: int = 1
    times: int = 1
    rel: str | None = None
    error: StoreError | None = None
    corrupt: bool = False
    seen: int = 0  # matching requests so far
    fired: int = 0

    def meets(self, kind: str, rel: str | None) -> bool:
        if kind != self.kind or (self.rel is not None and rel != self.rel):
            return False
        self.seen += 1
        if self.seen >= self.nth and self.fired < self.times:
            self.fired += 1
            return True
        return False


@dataclass(frozen=True)
class MemoryTarget:
    """What the engine and the journal's naming read of a store's target (lsmigrate.target.Target)."""

    bucket: str
    folder: str = ""
    provider: str = "memory"
    endpoint_url: str | None = None

    @property
    def url(self) -> str:
        return f"memory://{self.bucket}/{self.folder}" if self.folder else f"memory://{self.bucket}"


class MemoryServer:
    """The service behind MemoryStores: buckets of objects, open multipart uploads, a log of the requests
    it answered (`requests`, `count`), and the faults tests inject."""

    def __init__(self, buckets: tuple[str, ...] = ("bucket",), *, clock: Callable[[], float] = time.time) -> None:
        self.buckets: dict[str, dict[str, StoredObject]] = {name: {} for name in buckets}
        self.uploads: dict[str, OpenUpload] = {}
        self.requests: list[tuple[str, str | None]] = []  # (kind, rel) in the order they were answered
        self.faults: list[Fault] = []
        self.clock = clock
        self.lock = threading.RLock()
        self._ids = itertools.count(1)

    def new_upload_id(self) -> str:
        return f"upload-{next(self._ids)}"

    def now(self) -> float:
        return float(int(self.clock()))  # LastModified has whole seconds, as S3's

    # faults and inspection, for tests
    def inject(self, kind: str, *, error: StoreError | None = None, corrupt: bool = False, nth: int = 1,
               times: int = 1, rel: str | None = None) -> Fault:
        if kind not in REQUEST_KINDS:
            raise ValueError(f"no request kind {kind!r}: one of {sorted(REQUEST_KINDS)}")
        if (error is None) == (not corrupt) or (corrupt and kind not in WRITES):
            raise ValueError("a fault raises an error, or corrupts what one of the writes stores")
        fault = Fault(kind, nth, times, rel, error, corrupt)
        with self.lock:
            self.faults.append(fault)
        return fault

    def drop_part(self, upload_id: str, number: int) -> None:
        """The server loses one part of an open upload (its listing no longer shows it)."""
        with self.lock:
            del self.uploads[upload_id].parts[number]

    def open_uploads(self, bucket: str | None = None) -> list[tuple[str, str]]:
        """(key, upload id) of every upload not yet completed or aborted, as ListMultipartUploads shows them."""
        with self.lock:
            return sorted((u.key, uid) for uid, u in self.uploads.items() if bucket in (None, u.bucket))

    def count(self, kind: str, rel: str | None = None) -> int:
        with self.lock:
            return sum(1 for k, r in self.requests if k == kind and (rel is None or r == rel))

    def request(self, kind: str, rel: str | None) -> bool:
        """Logs one request; raises the error of a fault it meets; True when it meets a `corrupt` one."""
        with self.lock:
            self.requests.append((kind, rel))
            for fault in self.faults:
                if fault.meets(kind, rel):
                    if fault.error is not None:
                        raise copy.copy(fault.error)
                    return True
        return False


def _flipped(data: bytes) -> bytes:
    """Other bytes of the same size (one more byte for an empty body): what a corrupting server keeps."""
    return data[:-1] + bytes([data[-1] ^ 0xFF]) if data else b"\0"


class MemoryStore(Store):
    """One bucket and folder on a MemoryServer (a fresh server with that bucket when none is given)."""

    md5_basis = basis.ETAG
    multipart_etags = True
    etag_is_md5 = True
    probe_encryption = False
    part_views = True  # put_part copies what it keeps: the caller may reuse its buffer at once

    def __init__(self, server: MemoryServer | None = None, bucket: str = "bucket", folder: str = "", *,
                 min_part_size: int = 5 * MiB, event_loop: bool = True) -> None:
        super().__init__(MemoryTarget(bucket, folder), None)
        self.server = server or MemoryServer((bucket,))
        self.min_part_size = min_part_size
        self._with_loop = event_loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # plumbing
    def _request(self, kind: str, rel: str | None) -> bool:
        return self.server.request(kind, rel)

    def _objects(self) -> dict[str, StoredObject]:
        """The bucket's objects (the caller holds the server's lock); a missing bucket is fatal, as on S3."""
        objects = self.server.buckets.get(self.bucket)
        if objects is None:
            raise BucketNotFound(f"bucket {self.bucket} does not exist (create it, or fix the bucket name)")
        return objects

    def _failed(self, action: str, rel: str | None, code: str, message: str) -> StoreError:
        """An error answer as S3's store types it (lsmigrate.stores.s3.failures): NoSuchKey is NotFound."""
        kind = NotFound if code == "NoSuchKey" else StoreError
        return kind(f"{action} {self._where(rel)} failed: {code}: {message}", code=code)

    def _check_digest(self, action: str, rel: str, data: bytes, md5: bytes) -> None:
        if hashlib.md5(data).digest() != md5:
            raise ChecksumMismatch(f"{action} {self._where(rel)}: the server received other bytes than were sent "
                                   "(BadDigest)", code="BadDigest")

    def _session(self, action: str, rel: str, session: str) -> OpenUpload:
        upload = self.server.uploads.get(session)
        if upload is None or upload.bucket != self.bucket or upload.key != self._key(rel):
            raise Gone(f"upload session for {self._where(rel)} no longer exists", code="NoSuchUpload")
        return upload

    @staticmethod
    def _remote(rel: str, obj: StoredObject, *, with_metadata: bool) -> RemoteObject:
        md5 = obj.etag if "-" not in obj.etag else None
        return RemoteObject(rel, len(obj.data), obj.etag, md5, obj.mtime,
                            client_md5=obj.client_md5 if with_metadata else None)

    # Store
    def check(self) -> None:
        with self.server.lock:
            self._request("check", None)
            self._objects()

    def list(self) -> Iterator[RemoteObject]:
        """Every object below the folder in key order, one request per page of PAGE_SIZE keys; like S3's, a
        listing is no snapshot: each page starts after the last key of the one before, as the bucket is then."""
        cut, after = len(self.prefix), None
        while True:
            with self.server.lock:
                self._request("list", None)
                objects = self._objects()
                keys = sorted(key for key in objects
                              if key.startswith(self.prefix) and (after is None or key > after))[:PAGE_SIZE + 1]
                page = [(key, objects[key]) for key in keys[:PAGE_SIZE]]
            for key, obj in page:
                if not key.endswith("/"):  # a "folder" marker, not a file
                    yield self._remote(key[cut:], obj, with_metadata=False)
            if len(keys) <= PAGE_SIZE:
                return
            after = page[-1][0]

    def head(self, rel: str) -> RemoteObject | None:
        """None for a missing object, and for a missing bucket too: S3's HEAD answers both with a bare 404."""
        with self.server.lock:
            self._request("head", rel)
            obj = self.server.buckets.get(self.bucket, {}).get(self._key(rel))
            return self._remote(rel, obj, with_metadata=True) if obj is not None else None

    def put(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        with self.server.lock:
            corrupt = self._request("put", rel)
            objects = self._objects()
            if self.key_bytes(rel) > self.max_key_bytes:
                raise self._failed("PutObject", rel, "KeyTooLongError", "Your key is too long")
            data = bytes(data)
            self._check_digest("PutObject", rel, data, md5)
            if corrupt:
                data = _flipped(data)
            etag = hashlib.md5(data).hexdigest()
            objects[self._key(rel)] = StoredObject(data, etag, self.server.now(), md5.hex(), content_type(rel)[0])
        return Receipt(etag, basis.ETAG, etag)

    def event_loop(self):
        """A loop of the store's own (started on first use) when it offers `put_async`, as S3's does."""
        if not self._with_loop:
            return None
        with self.server.lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="lsmigrate-memory-loop",
                                                daemon=True)
                self._thread.start()
        return self._loop

    async def put_async(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        await asyncio.sleep(0)  # other puts of the batch get their turn, as on a network
        return self.put(rel, data, md5)

    def close(self) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def start_upload(self, rel: str, md5: bytes, size: int) -> str:
        with self.server.lock:
            self._request("start_upload", rel)
            self._objects()
            session = self.server.new_upload_id()
            self.server.uploads[session] = OpenUpload(self.bucket, self._key(rel), md5.hex() if len(md5) == 16 else None,
                                                      content_type(rel)[0])
            return session

    def uploaded_parts(self, rel: str, session: str, *, size: int = 0,
                       part_size: int = 0) -> dict[int, str | None] | None:
        with self.server.lock:
            self._request("uploaded_parts", rel)
            try:
                upload = self._session("ListParts", rel, session)
            except Gone:
                return None
            return {number: etag for number, (_, etag) in sorted(upload.parts.items())}

    def put_part(self, rel: str, session: str, number: int, data, md5: bytes, *, offset: int = 0,
                 size: int = 0) -> str:
        with self.server.lock:
            corrupt = self._request("put_part", rel)
            self._objects()
            upload = self._session("UploadPart", rel, session)
            if not 1 <= number <= MAX_PART_NUMBER:
                raise self._failed("UploadPart", rel, "InvalidArgument",
                                   f"Part number must be an integer between 1 and {MAX_PART_NUMBER}")
            data = bytes(data)  # a copy: the caller's buffer is its own again when this returns
            self._check_digest("UploadPart", rel, data, md5)
            if corrupt:
                data = _flipped(data)
            etag = hashlib.md5(data).hexdigest()
            upload.parts[number] = (data, etag)
            return etag

    def complete(self, rel: str, session: str, parts: list[tuple[int, str]], md5: bytes) -> Receipt:
        with self.server.lock:
            corrupt = self._request("complete", rel)
            objects = self._objects()
            upload = self._session("CompleteMultipartUpload", rel, session)
            chosen = self._chosen_parts(rel, upload, parts)
            if corrupt:
                chosen[-1] = _flipped(chosen[-1])
            etag = multipart_etag(hashlib.md5(data).digest() for data in chosen)
            objects[upload.key] = StoredObject(b"".join(chosen), etag, self.server.now(), upload.client_md5,
                                               upload.content_type)
            del self.server.uploads[session]
        return Receipt(etag, basis.MULTIPART_ETAG, etag)

    def _chosen_parts(self, rel: str, upload: OpenUpload, parts: list[tuple[int, str]]) -> list[bytes]:
        """The bytes of the parts named, refused as S3 refuses them: none, out of order, unknown or with
        another ETag, or (but the last) smaller than the minimum part size."""
        action = "CompleteMultipartUpload"
        if not parts:
            raise self._failed(action, rel, "MalformedXML", "the request names no part")
        numbers = [number for number, _ in parts]
        if numbers != sorted(set(numbers)):
            raise self._failed(action, rel, "InvalidPartOrder", "The list of parts was not in ascending order")
        chosen = []
        for number, etag in parts:
            held = upload.parts.get(number)
            if held is None or held[1] != etag.strip('"'):
                raise self._failed(action, rel, "InvalidPart", f"part {number} was not uploaded with that ETag")
            chosen.append(held[0])
        if any(len(data) < self.min_part_size for data in chosen[:-1]):
            raise self._failed(action, rel, "EntityTooSmall",
                               "Your proposed upload is smaller than the minimum allowed object size")
        return chosen

    def abort(self, rel: str, session: str) -> None:
        with self.server.lock:
            self._request("abort", rel)
            try:
                self._session("AbortMultipartUpload", rel, session)
            except Gone:
                return  # gone already
            del self.server.uploads[session]

    def expected_token(self, md5: bytes, part_md5s: list[bytes] | None) -> str | None:
        return multipart_etag(part_md5s) if part_md5s else md5.hex()

    def part_token(self, md5: bytes) -> str | None:
        return md5.hex()

    def read_range(self, rel: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        with self.server.lock:
            self._request("read_range", rel)
            obj = self._objects().get(self._key(rel))
            if obj is None:
                raise self._failed("GetObject", rel, "NoSuchKey", "The specified key does not exist.")
            if start >= len(obj.data):
                raise self._failed("GetObject", rel, "InvalidRange", "The requested range is not satisfiable")
            return obj.data[start:start + length]

    def delete(self, rel: str) -> None:
        """No error for an object that is not there, as S3's DeleteObject."""
        with self.server.lock:
            self._request("delete", rel)
            self._objects().pop(self._key(rel), None)

    # server-side copy between stores of one server
    def can_copy_from(self, source: Store, size: int) -> bool:
        return isinstance(source, MemoryStore) and source.server is self.server and size <= MAX_COPY_SIZE

    def copy_from(self, source: MemoryStore, rel: str) -> Receipt:
        """CopyObject: the metadata comes along; the copy is one object whose ETag is the MD5 of its bytes."""
        with self.server.lock:
            corrupt = self._request("copy_from", rel)
            objects = self._objects()
            original = source._objects().get(source._key(rel))
            if original is None:
                raise self._failed("CopyObject", rel, "NoSuchKey", "The specified key does not exist.")
            data = _flipped(original.data) if corrupt else original.data
            etag = hashlib.md5(data).hexdigest()
            objects[self._key(rel)] = StoredObject(data, etag, self.server.now(), original.client_md5,
                                                   original.content_type)
        return Receipt(etag, basis.ETAG, etag)
