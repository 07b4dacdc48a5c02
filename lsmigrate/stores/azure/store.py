"""Azure Blob Storage: single Put Blob requests and staged blocks, each checked by a transactional Content-MD5.

Chunked uploads are block blobs: `start_upload` picks a random session, and block N of that session has the id
`<session><N:08d>` (equal length for every block, as Azure requires). Staged blocks stay on the service as
uncommitted blocks until the block list is committed, so a killed run resumes by listing them. The block list
carries no checksum, so the engine only trusts blocks its journal recorded as accepted (each was checked by the
service against the MD5 sent with it). The whole-blob MD5 is stored as the blob's Content-MD5 property.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContentSettings, CorsRule
from fsspec.asyn import sync

from ... import basis
from ...scan import RemoteObject
from ...units import MiB
from ..base import Receipt, Store, StoreError, content_type
from ..errors import (
    AccessDenied,
    CredentialsRejected,
    NetworkError,
    NotFound,
)
from .failures import first_line, translate
from .limits import LIMITS
from .listing import CLIENT_MD5_MARK, in_code_point_order, remote_object

if TYPE_CHECKING:
    from ..destination import Destination

# Whole objects above this go as blocks: Put Blob takes up to 5000 MiB, but one failed request resends all of it.
SINGLE_PUT_LIMIT = 64 * MiB
SESSION_HEX = 16  # session tokens are 16 hex digits; block ids are the session plus an 8-digit number
def _block_id(session: str, number: int) -> str:
    """The block id before base64 (the SDK encodes it): the same length for every block of every session."""
    return f"{session}{number:08d}"


def _part_number(session: str, block_id: str) -> int | None:
    if len(block_id) != SESSION_HEX + 8 or not block_id.startswith(session):
        return None
    tail = block_id[SESSION_HEX:]
    return int(tail) if tail.isdigit() else None


class AzureStore(Store):
    min_part_size = LIMITS.min_part
    max_parts = LIMITS.max_parts
    trust_listed_parts = False  # the block list has no checksums and the commit checks no whole-blob MD5

    def __init__(self, target: Destination, fs, *, retries: int = 3) -> None:
        super().__init__(target, fs)
        self._service = self._make_client(target, fs.service_client, retries)
        self._single_put_limit = SINGLE_PUT_LIMIT

    @staticmethod
    def _make_client(target: Destination, base, retries: int):
        """Our own aio client on adlfs's account URL and credential (SAS, key or token alike). The SDK's retry
        loop decides what retries (408, 5xx but 501/505, dropped connections and timeouts); the policy sets how
        often and how long to wait: the SDK's defaults (15 s backoff, at most 3 retries of each kind whatever
        --retries said, no Retry-After) took over a minute to report an unreachable endpoint."""
        from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

        from ...retry import RetryPolicy, retry_after_in

        policy = RetryPolicy.from_retries(retries)

        class PolicyRetry(ExponentialRetry):
            def get_backoff_time(self, settings) -> float:
                last = settings["history"][-1] if settings["history"] else None
                answer = getattr(last, "http_response", None)
                return policy.delay(settings["count"], retry_after_in(getattr(answer, "headers", None)))

        # The SDK counts connect, read and status retries apart (3 each by default) within the total.
        retry = PolicyRetry(retry_total=policy.retries, retry_connect=policy.retries, retry_read=policy.retries,
                            retry_status=policy.retries)
        url, credential = str(base.url), base.credential
        endpoint = (target.endpoint_url or "").rstrip("/")
        if endpoint and not target.connection_string and not url.rstrip("/").startswith(endpoint):
            # adlfs builds https://<account>.blob.core.windows.net from an account name: honour the override.
            url = endpoint
            if target.account_name and target.account_key:
                credential = {"account_name": target.account_name, "account_key": target.account_key}
        return BlobServiceClient(account_url=url, credential=credential, max_single_put_size=SINGLE_PUT_LIMIT,
                                 retry_policy=retry, connection_timeout=policy.connect_timeout)

    # plumbing
    def _endpoint(self) -> str:
        parts = urlsplit(str(getattr(self._service, "url", "") or self.target.endpoint_url or ""))
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}" if parts.netloc else "the Azure endpoint"

    def _blob(self, rel: str):
        return self._service.get_blob_client(self.bucket, self._key(rel))

    def _scrub(self, text: str) -> str:
        for secret in (self.target.account_key, self.target.connection_string):
            if secret:
                text = text.replace(secret, "***")
        return re.sub(r"(?i)\bsig=[^&\s'\"]+", "sig=***", text)

    def _run(self, action: str, rel: str | None, fn, *args, **kwargs):
        try:
            return sync(self.fs.loop, fn, *args, **kwargs)
        except HttpResponseError as exc:  # includes ClientAuthenticationError and ResourceNotFoundError
            raise translate(exc, action, rel, where=self._where(rel), bucket=self.bucket, scrub=self._scrub) from None
        except ServiceRequestError:
            raise NetworkError(f"cannot reach the Azure endpoint ({self._endpoint()}) for {action}; "
                             "check the account name, endpoint and the network") from None
        except ServiceResponseError:  # connected, but the connection broke (reset, read timeout)
            raise NetworkError(f"{action} {self._where(rel)} failed: the connection to the Azure endpoint "
                               f"({self._endpoint()}) broke before an answer") from None
        except AzureError as exc:
            raise StoreError(self._scrub(f"{action} {self._where(rel)} failed: {exc.__class__.__name__}: "
                                         f"{first_line(str(exc))}")) from None
        except (OSError, TimeoutError) as exc:  # the connection's own failures, not wrapped by azure-core
            raise NetworkError(self._scrub(f"{action} {self._where(rel)} failed: {exc.__class__.__name__}: {exc}")) from None

    @staticmethod
    def _content_settings(rel: str, md5: bytes | None) -> ContentSettings:
        """With `md5` None the service computes the blob's Content-MD5 itself (Put Blob does, a commit not)."""
        kind, encoding = content_type(rel)
        return ContentSettings(content_type=kind, content_encoding=encoding,
                               content_md5=bytearray(md5) if md5 is not None else None)

    # Store
    def check(self) -> None:
        async def properties():
            return await self._service.get_container_client(self.bucket).get_container_properties()

        try:
            self._run("GetContainerProperties", None, properties)
        except AccessDenied as exc:
            if isinstance(exc, CredentialsRejected):
                raise
            # A container-scoped SAS or a data-plane role may not read container properties: a one-blob listing
            # says whether the container is usable for what lsmigrate needs.
            next(iter(self._list_page(None, 1)[0]), None)

    async def _list_page_async(self, token: str | None, size: int):
        container = self._service.get_container_client(self.bucket)
        pages = container.list_blobs(name_starts_with=self.prefix or None, include=["metadata"],
                                     results_per_page=size).by_page(continuation_token=token)
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return [], None
        items = []
        async for blob in page:
            md5 = blob.content_settings.content_md5 if blob.content_settings else None
            items.append((blob.name, blob.size, blob.etag, bytes(md5) if md5 else None, blob.last_modified,
                          dict(blob.metadata or {})))
        return items, pages.continuation_token

    def _list_page(self, token: str | None, size: int = 5000):
        return self._run("ListBlobs", None, self._list_page_async, token, size)

    def _list_raw(self) -> Iterator[RemoteObject]:
        token = None
        cut = len(self.prefix)
        while True:
            items, token = self._list_page(token)
            for name, size, etag, md5, modified, metadata in items:
                if name.endswith("/") or str(metadata.get("hdi_isfolder", "")).lower() == "true":
                    continue  # a "folder" marker, not a file
                yield remote_object(name[cut:], size, etag, md5, modified, metadata)
            if not token:
                return

    def list(self) -> Iterator[RemoteObject]:
        return in_code_point_order(self._list_raw())

    def head(self, rel: str) -> RemoteObject | None:
        async def properties():
            return await self._blob(rel).get_blob_properties()

        try:
            props = self._run("GetBlobProperties", rel, properties)
        except NotFound:
            return None
        md5 = props.content_settings.content_md5 if props.content_settings else None
        return remote_object(rel, props.size, props.etag, md5, props.last_modified, props.metadata)

    def put(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        """Put Blob: the service checks the request's Content-MD5, computes the blob's own and answers it."""
        if len(data) > self._single_put_limit:
            return self._put_in_blocks(rel, data, md5)

        async def upload():
            return await self._blob(rel).upload_blob(
                data, length=len(data), overwrite=True, content_settings=self._content_settings(rel, None),
                transactional_content_md5=md5, max_concurrency=1)

        answer = self._run("PutBlob", rel, upload)
        reported = answer.get("content_md5")
        if reported:
            return Receipt(bytes(reported).hex(), basis.SERVER_MD5, bytes(reported).hex())
        head = self.head(rel)
        if head is not None and head.md5:
            return Receipt(head.md5, basis.SERVER_MD5, head.md5)
        return Receipt(head.etag if head else None, basis.CONTENT_MD5)

    def _put_in_blocks(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        """A whole object above the SDK's single-put size: blocks of that size, each MD5-checked."""
        session = self.start_upload(rel, md5, len(data))
        step = self._single_put_limit
        view = memoryview(data)
        parts = []
        for number, offset in enumerate(range(0, len(data), step), start=1):
            chunk = bytes(view[offset:offset + step])
            parts.append((number, self.put_part(rel, session, number, chunk, hashlib.md5(chunk).digest())))
        return self.complete(rel, session, parts, md5)

    def start_upload(self, rel: str, md5: bytes, size: int) -> str:
        return secrets.token_hex(SESSION_HEX // 2)

    def uploaded_parts(self, rel: str, session: str, *, size: int = 0,
                       part_size: int = 0) -> dict[int, str | None] | None:
        async def blocks():
            return await self._blob(rel).get_block_list("all")

        try:
            committed, uncommitted = self._run("GetBlockList", rel, blocks)
        except NotFound as exc:
            if exc.code == "BlobNotFound":
                return {}  # nothing staged (or Azure dropped the uncommitted blocks): every part goes again
            raise
        parts: dict[int, str | None] = {}
        # Committed blocks of this session count too: a run killed between the commit and the journal's update
        # commits the same list again (the ids are referenced as "latest").
        for block in [*committed, *uncommitted]:
            number = _part_number(session, str(block.id))
            if number is None or number < 1:
                continue
            if size and part_size:
                offset = (number - 1) * part_size
                if offset >= size or block.size != min(part_size, size - offset):
                    continue  # not the block this part should be: send it again
            parts[number] = None  # the block list has no checksums: the journal decides
        return parts

    def put_part(self, rel: str, session: str, number: int, data: bytes, md5: bytes, *, offset: int = 0,
                 size: int = 0) -> str:
        async def stage():
            return await self._blob(rel).stage_block(_block_id(session, number), data, length=len(data),
                                                     transactional_content_md5=md5)

        answer = self._run("PutBlock", rel, stage) or {}
        reported = answer.get("content_md5")
        # The service refuses a block whose bytes do not match the Content-MD5 sent with it; Azure also echoes
        # the MD5 it computed (Azurite does not: then the accepted request is the proof).
        return bytes(reported).hex() if reported else md5.hex()

    def complete(self, rel: str, session: str, parts: list[tuple[int, str]], md5: bytes) -> Receipt:
        """Put Block List checks no whole-blob checksum: the blocks were each checked by their Content-MD5 at
        Put Block. The whole MD5 is still stored (rclone check reads it), marked as ours in the metadata so a
        later verify never takes it for the service's."""
        block_ids = [_block_id(session, number) for number, _ in sorted(parts)]

        async def commit():
            blob = self._blob(rel)
            return await blob.commit_block_list(block_ids, content_settings=self._content_settings(rel, md5),
                                                metadata={CLIENT_MD5_MARK: "true"})

        self._run("PutBlockList", rel, commit)
        return Receipt(md5.hex(), basis.CONTENT_MD5)

    def abort(self, rel: str, session: str) -> None:
        # Uncommitted blocks cannot be dropped one by one; Azure discards them a week after the last one was
        # staged, or when the blob is next committed. Deleting the blob would destroy a committed version.
        return None

    def expected_token(self, md5: bytes, part_md5s: list[bytes] | None) -> str | None:
        return md5.hex()

    def part_token(self, md5: bytes) -> str | None:
        return md5.hex()

    def read_range(self, rel: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""

        async def download():
            stream = await self._blob(rel).download_blob(offset=start, length=length, max_concurrency=1)
            return await stream.readall()

        return self._run("GetBlob", rel, download)

    def delete(self, rel: str) -> None:
        async def remove():
            await self._blob(rel).delete_blob(delete_snapshots="include")

        try:
            self._run("DeleteBlob", rel, remove)
        except NotFound as exc:
            if exc.code != "BlobNotFound":
                raise

    def close(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            try:
                sync(self.fs.loop, service.close)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    # doctor
    def cors_rules(self) -> list:
        props = self._run("GetBlobServiceProperties", None, self._service.get_service_properties)
        return [{"allowed_origins": rule.allowed_origins, "allowed_methods": rule.allowed_methods,
                 "allowed_headers": rule.allowed_headers, "exposed_headers": rule.exposed_headers,
                 "max_age_in_seconds": rule.max_age_in_seconds} for rule in props.get("cors") or []]

    def apply_cors(self, rule: dict) -> None:
        def listed(value) -> list[str]:
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            return [str(part) for part in value or []]

        new = CorsRule(listed(rule["allowed_origins"]), listed(rule["allowed_methods"]),
                       allowed_headers=listed(rule.get("allowed_headers")),
                       exposed_headers=listed(rule.get("exposed_headers")),
                       max_age_in_seconds=int(rule.get("max_age_in_seconds") or 0))

        async def apply():
            # CORS is per storage account (all containers); keep the rules already there.
            props = await self._service.get_service_properties()
            await self._service.set_service_properties(cors=[*(props.get("cors") or []), new])

        self._run("SetBlobServiceProperties", None, apply)

    def doctor_checks(self) -> list:
        from ...checks import PASS, WARN, Check

        name = "storage account type"

        async def info():
            return await self._service.get_container_client(self.bucket).get_account_information()

        try:
            answer = self._run("GetAccountInformation", None, info)
        except StoreError as exc:
            return [Check(name, WARN, f"cannot read it: {exc}")]
        sku = str(getattr(answer.get("sku_name"), "value", answer.get("sku_name")) or "unknown")
        kind = str(getattr(answer.get("account_kind"), "value", answer.get("account_kind")) or "unknown")
        detail = f"{sku}, {kind}" + (", hierarchical namespace" if answer.get("is_hns_enabled") else "")
        if sku.startswith("Premium") and kind == "BlockBlobStorage":
            return [Check(name, PASS, detail)]
        return [Check(name, WARN, detail,
                      "a premium block blob account (BlockBlobStorage, Premium_LRS) has lower and steadier "
                      "latency for many small files, which is what Label Studio serves")]
