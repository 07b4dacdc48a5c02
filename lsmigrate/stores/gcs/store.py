"""Google Cloud Storage: single uploads and resumable sessions, checked against the server's md5Hash.

GCS has no per-chunk checksum in a resumable session; instead the whole object's md5Hash is declared when
the session starts (GCS refuses to finalize other bytes) and compared with what it answers at the end.
Chunks of one session go in order, so `parallel_parts` is off: files run in parallel, their chunks don't.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from fsspec.asyn import sync

from ... import basis
from ...checksum import b64_to_hex, md5_b64
from ...retry import RetryPolicy, is_retryable, retry_after_in, retryable_status, throttled
from ...scan import RemoteObject
from ..base import Receipt, Store, StoreError, content_type
from ..errors import (
    AccessDenied,
    BucketNotFound,
    ChecksumMismatch,
    CredentialsRejected,
    Gone,
    NetworkError,
    NotFound,
    Throttled,
)
from .limits import GRANULE, LIMITS

if TYPE_CHECKING:
    from ..destination import Destination

SESSION_ACTIONS = frozenset({"QueryResumableUpload", "UploadChunk", "CancelResumableUpload"})  # to a session URI
CHUNK_ATTEMPTS = 6  # sends of one chunk while the server persists only part of it
STALLS = 2  # answers that show nothing new persisted before a chunk fails


def _persisted(headers) -> int:
    """Bytes a 308 says the session holds: its Range is `bytes=0-N`, absent while it holds none."""
    value = headers.get("Range")
    return int(value.rsplit("-", 1)[1]) + 1 if value else 0


class _Refused(Exception):
    """A final error answer: its status and GCS's JSON error reason, raised from gcsfs's own error for it
    (whose text the messages keep)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status, self.reason = status, reason


def _reason(contents: bytes) -> str:
    """`error.errors[0].reason` (else `error.status`) of a GCS JSON error body, or ""."""
    try:
        error = json.loads(contents or b"{}").get("error")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(error, dict):
        return ""
    errors = error.get("errors") or [{}]
    return str((errors[0] if isinstance(errors[0], dict) else {}).get("reason") or error.get("status") or "")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _md5_refused(status: int, reason: str, message: str) -> bool:
    """GCS refusing the md5Hash declared for an upload. It has no error code of its own (the reason is
    "invalid", as for every bad request), so this one kind is told by the service's message, on a 4xx only,
    and only with that reason when the answer carries one (an answer without a JSON error reason, "", is
    judged by the message alone)."""
    lowered = message.lower()
    return 400 <= status < 500 and reason in ("", "invalid") and ("md5" in lowered or "hash" in lowered)


class GCSStore(Store):
    min_part_size = LIMITS.min_part
    max_parts = LIMITS.max_parts
    part_granule = LIMITS.granule
    parallel_parts = False
    # What a session reports persisted is trusted: the md5Hash declared at its start is enforced by the
    # server and compared again at the end, so no byte can slip in unchecked.
    trust_listed_parts = True

    def __init__(self, target: Destination, fs, *, retries: int = 3) -> None:
        super().__init__(target, fs)
        self.retries = retries
        self._api = f"{fs._location}/storage/v1/b/{_quote(self.bucket)}"
        self._upload = f"{fs._location}/upload/storage/v1/b/{_quote(self.bucket)}/o"
        self._finals: dict[str, dict] = {}  # session -> the object the last chunk created
        self._resume_at: dict[str, int] = {}  # session -> bytes the server reported persisted

    # plumbing
    async def _send(self, method: str, url: str, *, headers=None, json=None, data=None, **params):
        """gcsfs's own request (its session, auth headers and error mapping) without its fixed six retries
        with up to 32 s of backoff and a logged traceback: the retry policy decides (lsmigrate.retry)."""
        import aiohttp
        from gcsfs.retry import validate_response

        policy = RetryPolicy.from_retries(self.retries)
        # gcsfs sets no connect timeout (the OS gives up after minutes): the policy's keeps a dead endpoint's bound.
        timeout = aiohttp.ClientTimeout(total=self.fs.requests_timeout, sock_connect=policy.connect_timeout)
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                await self.fs._set_session()
                async with self.fs.session.request(
                        method=method, url=url, params=self.fs._get_params(params), json=json, data=data,
                        headers=self.fs._get_headers(headers), timeout=timeout) as response:
                    status, answer_headers, contents = response.status, response.headers, await response.read()
            except Exception as exc:
                if attempt >= policy.attempts or not is_retryable(exc):
                    raise
            else:
                # A 401 on the first try may be a token that expired in flight: gcsfs refreshes it for the next.
                again = retryable_status(status) or (status == 401 and attempt == 1)
                if status < 400 or status == 499 or attempt >= policy.attempts or not again:
                    try:
                        validate_response(status, contents, url)  # raises gcsfs's error for a failure
                    except Exception as exc:
                        raise _Refused(status, _reason(contents)) from exc
                    return status, answer_headers, None, contents
                retry_after = retry_after_in(answer_headers)
            await asyncio.sleep(policy.delay(attempt, retry_after))

    def _request(self, action: str, rel: str | None, method: str, url: str, **kwargs):
        try:
            return sync(self.fs.loop, self._send, method, url, **kwargs)
        except _Refused as refused:
            raise self._refused(refused, action, rel) from None
        except Exception as exc:  # google-auth, aiohttp and OS errors before any answer
            raise self._failed(exc, action, rel) from None

    def _refused(self, refused: _Refused, action: str, rel: str | None) -> StoreError:
        """An error answer as the error it means, by its status and reason (the text is gcsfs's, for the user)."""
        status, reason, exc = refused.status, refused.reason, refused.__cause__
        if status == 404 and action in SESSION_ACTIONS:  # the session URI no longer answers: a new one is started
            return Gone(f"{action} {self._where(rel)}: not found", code=reason)
        if status == 404 and rel is None:  # a request to the bucket itself
            return BucketNotFound(f"bucket {self.bucket} does not exist (create it, or fix the bucket name)")
        if status == 404:
            return NotFound(f"{action} {self._where(rel)}: not found", code=reason)
        if status == 410:  # a resumable session that expired or was cancelled: a new one is started
            return Gone(f"{action} {self._where(rel)}: the upload session is gone", code=reason)
        if status == 401:
            return self._rejected()
        if status == 403:
            return AccessDenied(f"access denied: {action} on {self._where(rel)}; the service account needs that "
                                "permission (see `lsmigrate doctor`)", lacking="service account", code=reason)
        text = str(getattr(exc, "message", "") or exc).splitlines()
        message = text[-1] if text else exc.__class__.__name__
        if _md5_refused(status, reason, message):
            return ChecksumMismatch(f"{action} {self._where(rel)}: the server received other bytes than were sent "
                                    f"({message})", code=reason)
        kind = Throttled if throttled(status, reason) else StoreError
        return kind(f"{action} {self._where(rel)} failed: {exc.__class__.__name__}: {message}", code=reason)

    def _rejected(self) -> StoreError:
        return CredentialsRejected(f"the GCS credentials were rejected for bucket {self.bucket}: check "
                                   "GOOGLE_APPLICATION_CREDENTIALS")

    def _failed(self, exc: Exception, action: str, rel: str | None) -> StoreError:
        """A request that got no answer: the credentials could not be refreshed, or no connection."""
        import aiohttp
        from google.auth.exceptions import RefreshError

        cause: BaseException | None = exc
        while cause is not None:  # gcsfs may wrap google-auth's error in its own ValueError
            if isinstance(cause, RefreshError):  # invalid_grant and the like: the key is revoked, wrong or expired
                return self._rejected()
            cause = cause.__cause__ or cause.__context__
        if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)):
            return NetworkError(f"cannot reach the GCS endpoint for {action}; check STORAGE_GCS_ENDPOINT / the network")
        text = str(getattr(exc, "message", "") or exc).splitlines()
        message = text[-1] if text else exc.__class__.__name__
        return StoreError(f"{action} {self._where(rel)} failed: {exc.__class__.__name__}: {message}")

    def _object_json(self, rel: str, md5: bytes) -> dict:
        kind, encoding = content_type(rel)
        body = {"name": self._key(rel), "contentType": kind, "md5Hash": md5_b64(md5),
                "metadata": {"md5chksum": md5_b64(md5)}}
        if encoding:
            body["contentEncoding"] = encoding
        return body

    @staticmethod
    def _remote(rel: str, item: dict) -> RemoteObject:
        md5 = b64_to_hex(item.get("md5Hash") or "")
        updated = item.get("updated")
        mtime = datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp() if updated else None
        # The token the journal keeps is the content MD5 (what uploads answer), so listings carry the same.
        return RemoteObject(rel, int(item.get("size", 0)), md5 or item.get("etag"), md5, mtime)

    # Store
    def check(self) -> None:
        self._request("GetBucket", None, "GET", self._api)  # a 404 is BucketNotFound (_refused)

    def list(self) -> Iterator[RemoteObject]:
        token = None
        cut = len(self.prefix)
        while True:
            params = {"prefix": self.prefix, "maxResults": 1000}
            if token:
                params["pageToken"] = token
            _, _, _, body = self._request("ListObjects", None, "GET", f"{self._api}/o", **params)
            page = json.loads(body or b"{}")
            for item in page.get("items", ()):
                name = item["name"]
                if name.endswith("/"):
                    continue
                yield self._remote(name[cut:], item)
            token = page.get("nextPageToken")
            if not token:
                return

    def head(self, rel: str) -> RemoteObject | None:
        try:
            _, _, _, body = self._request("GetObject", rel, "GET", f"{self._api}/o/{_quote(self._key(rel))}")
        except NotFound:
            return None
        return self._remote(rel, json.loads(body))

    def put(self, rel: str, data: bytes, md5: bytes) -> Receipt:
        described = self._object_json(rel, md5)
        meta, kind = json.dumps(described), described["contentType"]
        boundary = "lsmigrate-part-boundary"
        payload = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n"
                   f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n").encode() + data + f"\r\n--{boundary}--".encode()
        _, _, _, body = self._request("Upload", rel, "POST", self._upload, uploadType="multipart", data=payload,
                                      headers={"Content-Type": f'multipart/related; boundary="{boundary}"'})
        return self._receipt(rel, json.loads(body))

    def _receipt(self, rel: str, answer: dict | None) -> Receipt:
        """The md5Hash GCS computed over the stored object (it also refused to finalize other bytes than the
        md5Hash declared at the start)."""
        md5 = b64_to_hex((answer or {}).get("md5Hash") or "")
        if md5 is None:
            head = self.head(rel)
            md5 = head.md5 if head else None
        return Receipt(md5, basis.SERVER_MD5, md5)

    def start_upload(self, rel: str, md5: bytes, size: int) -> str:
        meta = self._object_json(rel, md5)
        _, headers, _, _ = self._request("StartResumableUpload", rel, "POST", self._upload, uploadType="resumable",
                                         json=meta, headers={"X-Upload-Content-Type": meta["contentType"],
                                                             "X-Upload-Content-Length": str(size)})
        location = headers.get("Location")
        if not location:
            raise StoreError(f"StartResumableUpload {self._where(rel)}: the server gave no session URI")
        return location

    def uploaded_parts(self, rel: str, session: str, *, size: int = 0,
                       part_size: int = 0) -> dict[int, str | None] | None:
        """Ask the session how much it has persisted (an empty PUT with `bytes */size`); whole parts count."""
        try:
            status, headers, _, body = self._request("QueryResumableUpload", rel, "PUT", session, data=b"",
                                                     headers={"Content-Range": f"bytes */{size}"})
        except StoreError as exc:
            if exc.gone:  # Gone (404 or 410): expired or cancelled, the engine starts a new session
                return None
            raise
        count = -(-size // part_size) if part_size else 0
        if status in (200, 201):  # every byte arrived and the object exists already
            self._finals[session] = json.loads(body or b"{}")
            return {n: None for n in range(1, count + 1)}
        end = _persisted(headers)
        self._resume_at[session] = end
        return {n: "persisted" for n in range(1, end // part_size + 1)} if part_size else {}

    def put_part(self, rel: str, session: str, number: int, data: bytes, md5: bytes, *, offset: int = 0,
                 size: int = 0) -> str:
        end = offset + len(data)
        if end != size and (offset % GRANULE or len(data) % GRANULE):
            raise StoreError(f"UploadChunk {self._where(rel)}: a {len(data)}-byte chunk at byte {offset} is not "
                             f"on GCS's {GRANULE}-byte grid (only the last chunk of an object may be shorter)")
        view = memoryview(data)
        start = max(offset, self._resume_at.get(session, 0))  # the session may hold the start of this chunk
        if start >= end:
            return "persisted"
        stalls = 0
        for _ in range(CHUNK_ATTEMPTS):
            status, headers, _, body = self._request(
                "UploadChunk", rel, "PUT", session, data=view[start - offset:],
                headers={"Content-Range": f"bytes {start}-{end - 1}/{size}"})
            if status in (200, 201):
                final = json.loads(body or b"{}")
                self._finals[session] = final
                return b64_to_hex(final.get("md5Hash") or "") or ""
            persisted = _persisted(headers)
            if persisted >= end:
                return ""
            if persisted < offset:  # the session lost bytes of earlier chunks: the file's retry resumes it
                raise StoreError(f"UploadChunk {self._where(rel)}: the session holds {persisted} bytes, fewer "
                                 f"than the {offset} sent before this chunk", resend=True)
            if persisted <= start:
                stalls += 1
                if stalls >= STALLS:
                    raise StoreError(f"UploadChunk {self._where(rel)}: the server persisted nothing of bytes "
                                     f"{start}-{end - 1} in {stalls} attempts (it holds {persisted} bytes)")
            # GCS persists whole 256 KiB units, so the rest starts on the grid; it ends where the chunk does.
            start = persisted
        raise StoreError(f"UploadChunk {self._where(rel)}: bytes {start}-{end - 1} were still not persisted after "
                         f"{CHUNK_ATTEMPTS} attempts")

    def complete(self, rel: str, session: str, parts: list[tuple[int, str]], md5: bytes) -> Receipt:
        return self._receipt(rel, self._finals.pop(session, None))

    def abort(self, rel: str, session: str) -> None:
        try:
            self._request("CancelResumableUpload", rel, "DELETE", session)
        except StoreError:
            pass  # an expired or finished session is gone already

    def expected_token(self, md5: bytes, part_md5s: list[bytes] | None) -> str | None:
        return md5.hex()

    def part_token(self, md5: bytes) -> str | None:
        return None

    def read_range(self, rel: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        _, _, _, body = self._request("Download", rel, "GET", f"{self._api}/o/{_quote(self._key(rel))}", alt="media",
                                      headers={"Range": f"bytes={start}-{start + length - 1}"})
        return body

    def delete(self, rel: str) -> None:
        self._request("DeleteObject", rel, "DELETE", f"{self._api}/o/{_quote(self._key(rel))}")

    def cors_rules(self) -> list:
        _, _, _, body = self._request("GetBucket", None, "GET", self._api, fields="cors")
        return json.loads(body or b"{}").get("cors", [])

    def apply_cors(self, rule: dict) -> None:
        self._request("PatchBucket", None, "PATCH", self._api, json={"cors": [rule]})
