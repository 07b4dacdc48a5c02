"""S3 (and S3-compatible servers): single PUTs and multipart uploads, each checked by Content-MD5."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

from fsspec.asyn import sync

from ... import basis
from ...checksum import b64_to_hex, md5_b64, multipart_etag
from ...retry import RetryPolicy
from ...scan import RemoteObject
from ..base import Receipt, Store, StoreError, content_type
from ..errors import AccessDenied, CredentialsRejected, NotFound
from . import bucket_settings
from .failures import failure_of
from .lean_list import LeanList
from .lean_list import Unsupported as ListUnsupported
from .lean_put import LeanPut, Unsupported
from .limits import LIMITS
from .part_body import PartBody

if TYPE_CHECKING:
    from ..destination import Destination

MD5_METADATA = "md5chksum"  # rclone's key: base64 of the whole-object MD5
_KMS = {"aws:kms", "aws:kms:dsse"}
# Keys of STORAGE_AWS_OBJECT_PARAMETERS that PutObject and CreateMultipartUpload both take.
_OBJECT_PARAMETERS = {"ACL", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage",
                      "ContentType", "Expires", "Metadata", "ServerSideEncryption", "SSEKMSKeyId",
                      "SSEKMSEncryptionContext", "BucketKeyEnabled", "StorageClass", "Tagging",
                      "WebsiteRedirectLocation", "ObjectLockMode", "ObjectLockRetainUntilDate",
                      "ObjectLockLegalHoldStatus", "GrantFullControl", "GrantRead", "GrantReadACP",
                      "GrantWriteACP", "ChecksumAlgorithm", "SSECustomerAlgorithm", "SSECustomerKey",
                      "SSECustomerKeyMD5", "ExpectedBucketOwner", "RequestPayer"}


_SSE_C_ARGS = {"SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5"}  # every request on such an object
_PART_ARGS = _SSE_C_ARGS | {"RequestPayer", "ExpectedBucketOwner"}
_COPY_PARAMETERS = {"ACL", "ServerSideEncryption", "SSEKMSKeyId", "StorageClass", "BucketKeyEnabled"}
LIST_AHEAD = 3  # listing pages fetched ahead of the plan (1,000 keys each)
MAX_COPY_SIZE = LIMITS.max_whole  # CopyObject's limit, as PutObject's; larger objects stream through like any other


class S3Store(Store):
    min_part_size = LIMITS.min_part
    max_parts = LIMITS.max_parts
    md5_basis = basis.ETAG
    part_views = True  # UploadPart bodies go out as PartBody (part_body), never held after the answer

    def __init__(self, target: Destination, fs, *, connections: int = 32, retries: int = 5) -> None:
        super().__init__(target, fs)
        self._connections = connections
        self._retry = RetryPolicy.from_retries(retries)  # for the lean PUT; botocore retries the rest (endpoints)
        params = dict(target.object_parameters)
        unknown = sorted(set(params) - _OBJECT_PARAMETERS)
        if unknown:
            raise StoreError(f"STORAGE_AWS_OBJECT_PARAMETERS has keys S3 uploads do not take: {', '.join(unknown)}",
                             fatal=True)
        self._params = params
        # Under SSE-KMS or SSE-C an ETag is not an MD5 (AWS documents it): True when the object parameters ask
        # for it or an answer showed it (a bucket's default encryption), None while no answer has said.
        self._asked = params.get("ServerSideEncryption") in _KMS or "SSECustomerKey" in params
        self._encrypted: bool | None = self._asked or None
        self._sse_c = {k: v for k, v in params.items() if k in _SSE_C_ARGS}
        self._client = None
        self._lean: LeanPut | None = None
        self._lean_ok = True
        self._lister: LeanList | None = None
        self._lean_list_ok = True

    @property
    def etag_is_md5(self) -> bool:
        return not self._encrypted

    @property
    def multipart_etags(self) -> bool:
        return self.etag_is_md5

    def verification_note(self) -> str | None:
        if self.etag_is_md5:
            return None
        return ("SSE-KMS/SSE-C: ETags are not MD5s, so each upload was verified by the server's Content-MD5 check "
                "(content-md5), recorded in the journal for later verifies")

    def _seen(self, encryption: str | None, customer_algorithm: str | None) -> bool:
        """Notes what one answer said of the object's encryption; True if its ETag is no MD5."""
        encrypted = encryption in _KMS or bool(customer_algorithm)
        if encrypted:
            self._encrypted = True
        return encrypted

    def _seen_in(self, answer: dict) -> bool:
        return self._seen(answer.get("ServerSideEncryption"), answer.get("SSECustomerAlgorithm"))

    def _receipt(self, etag: str | None, encrypted: bool, *, multipart: bool = False) -> Receipt:
        """A plain or multipart ETag is the server's own MD5 arithmetic; under SSE-KMS/SSE-C it is opaque, and
        what the server checked is the Content-MD5 sent with every request (S3 answers BadDigest otherwise)."""
        if encrypted or self._asked or not etag:  # (CompleteMultipartUpload's answer never names SSE-C)
            return Receipt(etag or None, basis.CONTENT_MD5)
        return Receipt(etag, basis.MULTIPART_ETAG if multipart else basis.ETAG, etag)

    # plumbing
    async def _connect(self) -> None:
        if self._client is None:
            await self.fs.set_session()
            self._client = await self.fs.get_s3(self.bucket)
            self._client.meta.events.register("before-sign.s3", _no_expect_continue)

    async def _call(self, method: str, **kwargs):
        await self._connect()
        return await getattr(self._client, method)(**kwargs)

    def _run(self, action: str, rel: str | None, method: str, **kwargs):
        try:
            return sync(self.fs.loop, self._call, method, **kwargs)
        except Exception as exc:
            self._reraise(exc, action, rel)

    def _reraise(self, exc: Exception, action: str, rel: str | None) -> NoReturn:
        """Raise `exc` as the StoreError it means for the user, or as it is if it is no store failure."""
        failure = failure_of(exc, action, rel, where=self._where(rel), bucket=self.bucket)
        if failure is None:
            raise exc
        raise failure from None

    def _write_args(self, rel: str, md5: bytes) -> dict:
        kind, encoding = content_type(rel)
        args: dict = {"ContentType": kind}
        if encoding:
            args["ContentEncoding"] = encoding
        args.update(self._params)
        args["Metadata"] = {**dict(self._params.get("Metadata") or {}), MD5_METADATA: md5_b64(md5)}
        return args

    # Store
    def check(self) -> None:
        try:
            self._run("HeadBucket", None, "head_bucket", Bucket=self.bucket)
        except AccessDenied as exc:
            if isinstance(exc, CredentialsRejected):
                raise
            # A HEAD answer has no body, so a 403 cannot tell a wrong secret from a missing permission;
            # a one-key listing says which (and if it works, the bucket is usable).
            self._run("ListObjectsV2", None, "list_objects_v2", Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)

    def list(self) -> Iterator[RemoteObject]:
        """Pages from the lean lister, fetched up to LIST_AHEAD pages ahead of the consumer, so the
        server's time overlaps the local scan and the plan; botocore answers any page the lean path cannot."""
        cut = len(self.prefix)
        pages: queue.Queue = queue.Queue()
        room = asyncio.Semaphore(LIST_AHEAD)
        producer = asyncio.run_coroutine_threadsafe(self._list_pages(pages, room), self.fs.loop)
        try:
            while True:
                entries = pages.get()
                if isinstance(entries, BaseException):
                    raise entries
                if entries is None:
                    return
                self.fs.loop.call_soon_threadsafe(room.release)
                for key, size, etag, mtime in entries:
                    if key.endswith("/"):
                        continue  # a "folder" marker, not a file
                    # A listing says nothing of encryption: a plain ETag is taken for the MD5 until an answer has
                    # shown SSE-KMS/SSE-C, and wherever it disagrees with a file, the object's HEAD has the last word.
                    if self.probe_encryption and self._encrypted is None and etag:
                        self._probe_encryption(key[cut:])
                    plain = etag if etag and "-" not in etag and self.etag_is_md5 else None
                    yield RemoteObject(key[cut:], size, etag, plain, mtime)
        finally:
            producer.cancel()

    def _probe_encryption(self, rel: str) -> None:
        """One object's HEAD says whether the bucket's objects are encrypted with SSE-KMS (default encryption
        applies to every new object), before any listed ETag is taken for an MD5 (sync compares listings)."""
        try:
            self.head(rel)
        except StoreError as exc:
            if exc.fatal:
                raise
            self._encrypted = True  # an SSE-C object we hold no key for cannot be HEADed; its ETag is no MD5

    async def _list_pages(self, pages: queue.Queue, room: asyncio.Semaphore) -> None:
        """Puts each page's entries on `pages` as it arrives, then None (or the error that ended it)."""
        token = None
        try:
            while True:
                await room.acquire()
                entries, token = await self._page(token)
                pages.put(entries)
                if not token:
                    break
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            pages.put(exc)
            return
        pages.put(None)

    async def _page(self, token: str | None) -> tuple[list, str | None]:
        """One page of (key, size, etag, mtime), and the next continuation token (None after the last)."""
        try:
            if self._lean_list_ok:
                try:
                    if self._lister is None:
                        await self._connect()
                        self._lister = LeanList(self._client, self.bucket, verify=bool(self.target.verify_ssl))
                    return await self._lister.page(self.prefix, token)
                except ListUnsupported as exc:
                    self._lean_list_ok = not exc.permanent
            page = await self._call("list_objects_v2", Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1000,
                                    **({"ContinuationToken": token} if token else {}))
        except Exception as exc:
            self._reraise(exc, "ListObjectsV2", None)
        entries = [(item["Key"], int(item["Size"]), item.get("ETag", "").strip('"') or None,
                    item["LastModified"].timestamp()) for item in page.get("Contents", ())]
        return entries, page.get("NextContinuationToken") if page.get("IsTruncated") else None

    def head(self, rel: str) -> RemoteObject | None:
        """The ETag is the server's own MD5 unless the object is encrypted with SSE-KMS/SSE-C (which the
        answer says); `md5chksum` is only what the uploader wrote, kept apart as `client_md5`."""
        try:
            meta = self._run("HeadObject", rel, "head_object", Bucket=self.bucket, Key=self._key(rel), **self._sse_c)
        except NotFound:
            return None
        encrypted = self._seen_in(meta)
        if self._encrypted is None:
            self._encrypted = encrypted
        etag = meta.get("ETag", "").strip('"') or None
        md5 = etag if etag and "-" not in etag and not encrypted else None
        client_md5 = b64_to_hex(meta.get("Metadata", {}).get(MD5_METADATA, "") or "")
        return RemoteObject(rel, int(meta["ContentLength"]), etag, md5, meta["LastModified"].timestamp(),
                            client_md5=client_md5)

    def put(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        return sync(self.fs.loop, self.put_async, rel, data, md5)

    def event_loop(self):
        return self.fs.loop

    async def put_async(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        try:
            args = self._write_args(rel, md5)
            if self._lean_ok and LeanPut.supports(args):
                try:
                    etag, headers = await self._lean_put(self._key(rel), data, md5_b64(md5), args)
                    encrypted = self._seen(headers.get("x-amz-server-side-encryption"),
                                           headers.get("x-amz-server-side-encryption-customer-algorithm"))
                    return self._receipt(etag, encrypted)
                except Unsupported:
                    self._lean_ok = False  # from now on, botocore's full path for this store
            answer = await self._call("put_object", Bucket=self.bucket, Key=self._key(rel), Body=data,
                                      ContentMD5=md5_b64(md5), ContentLength=len(data), **args)
            return self._receipt(answer.get("ETag", "").strip('"'), self._seen_in(answer))
        except Exception as exc:
            self._reraise(exc, "PutObject", rel)

    async def _lean_put(self, key: str, data: bytes, content_md5: str, args: dict) -> tuple[str, dict[str, str]]:
        if self._lean is None:
            await self._connect()
            self._lean = LeanPut(self._client, self.bucket, connections=self._connections,
                                 verify=bool(self.target.verify_ssl))
        return await self._retry.run(lambda: self._lean.put(key, data, content_md5, args))

    def close(self) -> None:
        for lean in (self._lister, self._lean):
            if lean is not None:
                try:
                    sync(self.fs.loop, lean.close)
                except Exception:  # noqa: BLE001 - closing at exit: nothing useful to report
                    pass
        self._lister = self._lean = None

    def start_upload(self, rel: str, md5: bytes, size: int) -> str:
        answer = self._run("CreateMultipartUpload", rel, "create_multipart_upload", Bucket=self.bucket,
                           Key=self._key(rel), **self._write_args(rel, md5))
        self._seen_in(answer)
        return answer["UploadId"]

    def uploaded_parts(self, rel: str, session: str, *, size: int = 0,
                       part_size: int = 0) -> dict[int, str | None] | None:
        parts: dict[int, str] = {}
        marker = 0
        while True:
            try:
                page = self._run("ListParts", rel, "list_parts", Bucket=self.bucket, Key=self._key(rel),
                                 UploadId=session, PartNumberMarker=marker, MaxParts=1000)
            except StoreError as exc:
                if exc.gone:
                    return None
                raise
            for part in page.get("Parts", ()):
                parts[int(part["PartNumber"])] = part["ETag"].strip('"')
            if not page.get("IsTruncated"):
                return parts
            marker = int(page["NextPartNumberMarker"])

    def put_part(self, rel: str, session: str, number: int, data, md5: bytes, *, offset: int = 0,
                 size: int = 0) -> str:
        """`data` is bytes-like (bytes, bytearray, memoryview): sent as it is, without a copy (part_body)."""
        args = {name: value for name, value in self._params.items() if name in _PART_ARGS}
        answer = self._run("UploadPart", rel, "upload_part", Bucket=self.bucket, Key=self._key(rel), UploadId=session,
                           PartNumber=number, Body=PartBody(data), ContentMD5=md5_b64(md5),
                           ContentLength=memoryview(data).nbytes, **args)
        self._seen_in(answer)
        return answer["ETag"].strip('"')

    def complete(self, rel: str, session: str, parts: list[tuple[int, str]], md5: bytes) -> Receipt:
        body = {"Parts": [{"PartNumber": number, "ETag": f'"{etag}"'} for number, etag in parts]}
        answer = self._run("CompleteMultipartUpload", rel, "complete_multipart_upload", Bucket=self.bucket,
                           Key=self._key(rel), UploadId=session, MultipartUpload=body,
                           **{k: v for k, v in self._params.items() if k in ("RequestPayer", "ExpectedBucketOwner")})
        return self._receipt(answer.get("ETag", "").strip('"'), self._seen_in(answer), multipart=True)

    def abort(self, rel: str, session: str) -> None:
        try:
            self._run("AbortMultipartUpload", rel, "abort_multipart_upload", Bucket=self.bucket,
                      Key=self._key(rel), UploadId=session)
        except StoreError as exc:
            if not exc.gone:
                raise

    def expected_token(self, md5: bytes, part_md5s: list[bytes] | None) -> str | None:
        return multipart_etag(part_md5s) if part_md5s else md5.hex()

    def part_token(self, md5: bytes) -> str | None:
        return md5.hex() if self.etag_is_md5 else None

    def read_range(self, rel: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return sync(self.fs.loop, self._get_range, rel, start, length)

    async def _get_range(self, rel: str, start: int, length: int) -> bytes:
        try:
            answer = await self._call("get_object", Bucket=self.bucket, Key=self._key(rel),
                                      Range=f"bytes={start}-{start + length - 1}", **self._sse_c)
            async with answer["Body"] as body:
                return await body.read()
        except Exception as exc:  # a dropped connection too, as for every other request: a retryable StoreError
            self._reraise(exc, "GetObject", rel)

    def delete(self, rel: str) -> None:
        self._run("DeleteObject", rel, "delete_object", Bucket=self.bucket, Key=self._key(rel))

    # server-side copy (sync between two buckets of one S3 endpoint)
    def can_copy_from(self, source: Store, size: int) -> bool:
        return (isinstance(source, S3Store) and source.target.endpoint_url == self.target.endpoint_url
                and source.target.access_key == self.target.access_key and size <= MAX_COPY_SIZE)

    def copy_from(self, source: S3Store, rel: str) -> Receipt:
        """CopyObject: the bytes never leave the provider; metadata (md5chksum included) is copied along."""
        answer = self._run("CopyObject", rel, "copy_object", Bucket=self.bucket, Key=self._key(rel),
                           CopySource={"Bucket": source.bucket, "Key": source._key(rel)}, MetadataDirective="COPY",
                           **{k: v for k, v in self._params.items() if k in _COPY_PARAMETERS})
        etag = answer.get("CopyObjectResult", {}).get("ETag", "").strip('"') or None
        if self._seen_in(answer) or not etag or "-" in etag:
            return Receipt(etag, basis.SERVER_COPY)
        return Receipt(etag, basis.ETAG, etag)

    # doctor: the bucket's own settings (bucket_settings.py)
    def cors_rules(self) -> list:
        return bucket_settings.cors_rules(self._run, self.bucket)

    def apply_cors(self, rule: dict) -> None:
        bucket_settings.apply_cors(self._run, self.bucket, rule)

    def doctor_checks(self) -> list:
        return [bucket_settings.encryption_check(self._run, self.bucket),
                bucket_settings.lifecycle_check(self._run, self.bucket)]

def _no_expect_continue(request, **kwargs) -> None:
    """botocore asks for `Expect: 100-continue` on bodies over 1 MiB; aiohttp then waits for the server's
    interim answer with no fallback, and a server that never sends one stalls the part until the read
    timeout (seen once: 7 parts idle for minutes). The header is not signed; without it the body follows
    the headers at once, as every peer tool sends it."""
    if "Expect" in request.headers:
        del request.headers["Expect"]
