"""A strict S3 front for tests: what real AWS enforces and moto / rclone serve s3 do not.

    with StrictFront(moto.endpoint_url, sigv4=True, content_md5=True, checksums=True) as front:
        run("copy", ..., "--endpoint-url", front.endpoint_url)
        assert not front.rejected, front.rejected

Modes (each on or off):

- ``sigv4``: every request's SigV4 signature (Authorization header, or presigned query) is computed again
  over the request target AS RECEIVED: the raw path is the canonical URI (S3 does not normalize it) and
  the raw query pairs, sorted, are the canonical query. A mismatch gets 403 ``SignatureDoesNotMatch``;
  the record keeps the target that WAS signed when it can be found (the RFC 3986 form of the path:
  every byte but ``A-Za-z0-9-._~/`` percent-encoded, upper-case hex). ``x-amz-content-sha256`` is
  required with header auth; a hex value must be the body's SHA-256 (400 ``XAmzContentSHA256Mismatch``),
  ``UNSIGNED-PAYLOAD`` and ``STREAMING-*`` are signed as the literal.
- ``content_md5``: PutObject / UploadPart / DeleteObjects with a Content-MD5 that is not the body's get
  400 ``BadDigest`` (400 ``InvalidDigest`` if it is not a base64 MD5).
- ``checksums``: on the same requests ``x-amz-checksum-crc32 / crc32c / crc64nvme / sha1 / sha256`` are
  checked against the body: 400 ``BadDigest`` on a mismatch, 400 ``InvalidRequest`` for a malformed value
  or more than one checksum header. aws-chunked bodies with trailing checksums are not decoded: botocore
  sends trailers only over https, and this front is plain http.
- ``kms`` (or ``sse_c``): the bucket behaves as if it encrypted every object with SSE-KMS (SSE-C): every
  ETag the client can see (headers, and ``<ETag>`` in Complete, Copy, ListObjectsV2 and ListParts answers)
  is an opaque value that is not the MD5 (``md5(b"kms:" + real)``, keeping a ``-N`` suffix), object answers
  carry ``x-amz-server-side-encryption: aws:kms`` and a key id (or the SSE-C algorithm and key MD5), and
  part ETags the client sends back (Complete body, If-Match) are mapped to the real ones. With ``sse_c``,
  an object GET or HEAD without the SSE-C headers gets 400 ``InvalidRequest``, as on S3.

Every request is recorded (`requests`: method, raw target, headers, status, the target the signature was
found over, the front's error code). Built on FaultProxy's plumbing (no faults injected), so it listens
on 127.0.0.1 only and refuses any backend that is not on 127.0.0.1. No pytest import here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes
from xml.sax.saxutils import escape

from faultproxy import _NO_BODY_STATUS, FaultProxy, _Closed, _encode_head, _Message, _read_body

__all__ = ["Seen", "StrictFront", "crc64nvme", "rfc3986_path"]

UNSIGNED = "UNSIGNED-PAYLOAD"
KMS_KEY_ID = "arn:aws:kms:us-east-1:111122223333:key/0000aaaa-strict-front-key"
_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)")
_ETAG_XML_RE = re.compile(rb"<ETag>(&quot;|&#34;|\")?([^<&\"]*)(&quot;|&#34;|\")?</ETag>")
_CHECKSUMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
_REASONS = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}


def rfc3986_path(path: str) -> str:
    """The canonical form of a raw path: each byte but the unreserved ones and '/' percent-encoded once."""
    return quote(unquote_to_bytes(path), safe="/~")


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x9A6C9329AC4BC9B5 if crc & 1 else crc >> 1  # CRC-64/NVME, reflected
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64nvme(data: bytes) -> int:
    """CRC-64/NVME in pure Python (about 0.25 s per MiB here: fine for the small bodies tests send with it)."""
    crc = 0xFFFFFFFFFFFFFFFF
    table = _CRC64
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def _checksum(name: str, body: bytes) -> bytes:
    if name == "crc32":
        return struct.pack(">I", zlib.crc32(body))
    if name == "crc32c":
        import google_crc32c

        return struct.pack(">I", google_crc32c.value(body))
    if name == "crc64nvme":
        return struct.pack(">Q", crc64nvme(body))
    return hashlib.new(name, body).digest()


@dataclass
class Seen:
    """One request as the front received it, and what became of it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    status: int = 0
    signed_target: str | None = None  # the target the signature is valid for (None: unsigned / not found)
    error: str = ""  # the front's own error code when it answered instead of the backend
    detail: dict = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return _Message("", self.headers).get(name)


class _Reject(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class StrictFront(FaultProxy):
    def __init__(self, backend_url: str, *, sigv4: bool = True, content_md5: bool = False,
                 checksums: bool = False, kms: bool = False, sse_c: bool = False,
                 secrets: dict[str, str] | None = None) -> None:
        if kms and sse_c:
            raise ValueError("kms and sse_c are two kinds of bucket: choose one")
        super().__init__(backend_url, flavor="s3")
        self.sigv4, self.content_md5, self.checksums, self.kms, self.sse_c = sigv4, content_md5, checksums, kms, sse_c
        self.secrets = dict(secrets or {"testing": "testing"})  # access key id -> secret key
        self._seen: list[Seen] = []
        self._real_etag: dict[str, str] = {}  # opaque ETag -> the backend's

    # -- what the tests look at -------------------------------------------------------------------
    @property
    def requests(self) -> list[Seen]:  # type: ignore[override]
        with self._lock:
            return list(self._seen)

    @property
    def rejected(self) -> list[Seen]:
        return [s for s in self.requests if s.error]

    @property
    def mismatches(self) -> list[tuple[str, str | None]]:
        """(target sent, target signed) of every request refused for its signature."""
        return [(s.target, s.signed_target) for s in self.requests if s.error == "SignatureDoesNotMatch"]

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def __repr__(self) -> str:
        modes = [m for m in ("sigv4", "content_md5", "checksums", "kms", "sse_c") if getattr(self, m)]
        return f"<StrictFront {self.endpoint_url if self.port else 'stopped'} -> {self.backend_url} {modes}>"

    # -- one exchange ------------------------------------------------------------------------------
    async def _exchange(self, head: _Message, reader, writer, backend) -> bool:
        parts = head.first.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Closed(f"not an HTTP/1.x request line: {head.first!r}")
        method, target, version = parts
        keep_alive = version == "HTTP/1.1" and not head.wants_close()
        expects = "100-continue" in (head.get("Expect") or "").lower()
        seen = Seen(method, target, list(head.headers))
        with self._lock:
            self._seen.append(seen)
        try:
            self._check_head(head, method, target, seen)  # before 100-continue, as S3 does
        except _Reject as reject:
            if not expects:
                await _read_body(reader, head)
            return await self._refuse(writer, seen, reject, close=expects or not keep_alive)
        if expects:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await _read_body(reader, head)
        try:
            self._check_body(head, method, target, body)
        except _Reject as reject:
            return await self._refuse(writer, seen, reject, close=not keep_alive)

        head, body = self._map_request(head, method, target, body)
        try:
            answer, answer_body, backend_closes = await self._forward(head, body, backend)
        except (OSError, _Closed, ValueError, EOFError):
            return await self._refuse(writer, seen, _Reject(502, "BadGateway", "the backend failed"), close=True)
        status = int(answer.first.split(" ")[1])
        seen.status = status
        headers, answer_body = self._map_answer(method, target, head, status, answer, answer_body)
        headers = [(k, self._rewrite(k, v)) for k, v in headers if k.lower() not in ("transfer-encoding", "content-length")]
        no_body = method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200
        if no_body:
            if answer.get("Content-Length") is not None:
                headers.append(("Content-Length", answer.get("Content-Length") or "0"))
        else:
            headers.append(("Content-Length", str(len(answer_body))))
        writer.write(_encode_head(answer.first, headers) + (b"" if no_body else answer_body))
        await writer.drain()
        if backend_closes and backend[0] is not None:
            backend[0][1].transport.abort()
            backend[0] = None
        return keep_alive and not answer.wants_close()

    async def _refuse(self, writer, seen: Seen, reject: _Reject, *, close: bool) -> bool:
        seen.status, seen.error = reject.status, reject.code
        fields = {"Code": reject.code, "Message": reject.message, **reject.extra, "RequestId": "STRICTFRONT"}
        payload = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                   + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items()) + "</Error>").encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))]
        if close:
            headers.append(("Connection", "close"))
        writer.write(_encode_head(f"HTTP/1.1 {reject.status} {_REASONS[reject.status]}", headers)
                     + (b"" if seen.method == "HEAD" else payload))
        await writer.drain()
        if close:
            writer.close()
        return not close

    # -- sigv4 ---------------------------------------------------------------------------------------
    def _check_head(self, head: _Message, method: str, target: str, seen: Seen) -> None:
        path, _, query = target.partition("?")
        if self.sse_c and method in ("GET", "HEAD") and _is_object(path) and "uploadId=" not in query \
                and not head.get("x-amz-server-side-encryption-customer-algorithm"):
            raise _Reject(400, "InvalidRequest", "The object was stored using a form of Server Side Encryption. "
                                                 "The correct parameters must be provided to retrieve the object.")
        if not self.sigv4:
            return
        pairs = [p.partition("=")[::2] for p in query.split("&") if p] if query else []
        presigned = dict(pairs).get("X-Amz-Algorithm") is not None
        if presigned:
            params = {k: unquote_to_bytes(v).decode() for k, v in pairs}
            if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
                raise _Reject(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports AWS4-HMAC-SHA256")
            credential, names = params.get("X-Amz-Credential", ""), params.get("X-Amz-SignedHeaders", "")
            provided, stamp = params.get("X-Amz-Signature", ""), params.get("X-Amz-Date", "")
            try:
                expires = time.mktime(time.strptime(stamp, "%Y%m%dT%H%M%SZ")) - time.timezone \
                    + int(params.get("X-Amz-Expires", "0"))
            except ValueError:
                raise _Reject(403, "AccessDenied", "X-Amz-Date or X-Amz-Expires is malformed") from None
            if expires < time.time():
                raise _Reject(403, "AccessDenied", "Request has expired")
            pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
            payload = head.get("x-amz-content-sha256") or UNSIGNED
        else:
            auth = head.get("Authorization")
            if auth is None:
                why = "Signature Version 2 is not checked" if "Signature=" in query else "Anonymous access is refused"
                raise _Reject(403, "AccessDenied", f"{why} by this front")
            match = _AUTH_RE.fullmatch(auth.strip())
            if match is None:
                raise _Reject(400, "AuthorizationHeaderMalformed", f"The authorization header is malformed: {auth}")
            credential, names, provided = match.groups()
            stamp, payload = head.get("x-amz-date") or "", head.get("x-amz-content-sha256")
            if payload is None:
                raise _Reject(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        key_id, _, scope = credential.partition("/")
        if key_id not in self.secrets:
            raise _Reject(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        if not stamp or scope.split("/", 1)[0] != stamp[:8]:
            raise _Reject(403, "AccessDenied", "X-Amz-Date is missing or not the credential scope's day")
        values: dict[str, list[str]] = {}
        for name, value in head.headers:
            values.setdefault(name.lower(), []).append(" ".join(value.split()))
        signed = names.split(";")
        if "host" not in signed or any(n not in values for n in signed):
            raise _Reject(403, "AccessDenied", f"a signed header is missing (signed: {names})")
        canon_headers = "".join(f"{n}:{','.join(values[n])}\n" for n in signed)
        canon_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))

        def string_to_sign(canon_path: str) -> tuple[str, str]:
            request = "\n".join([method, canon_path, canon_query, canon_headers, names, payload])
            digest = hashlib.sha256(request.encode()).hexdigest()
            return request, f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"

        signing_key = f"AWS4{self.secrets[key_id]}".encode()
        for part in scope.split("/"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()

        def valid(text: str) -> bool:
            return hmac.compare_digest(hmac.new(signing_key, text.encode(), hashlib.sha256).hexdigest(), provided)

        canonical_request, text = string_to_sign(path)
        seen.detail["canonical_request"] = canonical_request
        if valid(text):
            seen.signed_target = target
            return
        # Which target did the client sign? The RFC 3986 form of what arrived is the usual answer.
        other = rfc3986_path(path)
        if other != path and valid(string_to_sign(other)[1]):
            seen.signed_target = other + (f"?{query}" if query else "")
        raise _Reject(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.", AWSAccessKeyId=key_id,
                      StringToSign=text, SignatureProvided=provided, CanonicalRequest=canonical_request)

    # -- bodies ------------------------------------------------------------------------------------
    def _check_body(self, head: _Message, method: str, target: str, body: bytes) -> None:
        payload = head.get("x-amz-content-sha256") or ""
        if self.sigv4 and re.fullmatch(r"[0-9a-f]{64}", payload) and hashlib.sha256(body).hexdigest() != payload:
            raise _Reject(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not "
                          "match what was computed.")
        query = target.partition("?")[2]
        carries_body = (method == "PUT" and head.get("x-amz-copy-source") is None) or \
            (method == "POST" and "delete" in [p.partition("=")[0] for p in query.split("&")])
        if not carries_body:
            return
        md5 = head.get("Content-MD5")
        if self.content_md5 and md5 is not None:
            try:
                expected = base64.b64decode(md5, validate=True)
            except binascii.Error:
                expected = b""
            if len(expected) != 16:
                raise _Reject(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
            if expected != hashlib.md5(body).digest():
                raise _Reject(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        if not self.checksums:
            return
        given = [(n, head.get(f"x-amz-checksum-{n}")) for n in _CHECKSUMS if head.get(f"x-amz-checksum-{n}") is not None]
        if len(given) > 1:
            raise _Reject(400, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum "
                                                 "Types are not allowed.")
        declared = (head.get("x-amz-sdk-checksum-algorithm") or "").lower()
        trailer = (head.get("x-amz-trailer") or "").lower()
        if declared and not given and not trailer:
            raise _Reject(400, "InvalidRequest", "x-amz-sdk-checksum-algorithm specified, but no corresponding "
                                                 "x-amz-checksum-* or x-amz-trailer headers were found.")
        for name, value in given:
            try:
                sent = base64.b64decode(value, validate=True)
            except binascii.Error:
                sent = b""
            computed = _checksum(name, body)
            if len(sent) != len(computed):
                raise _Reject(400, "InvalidRequest", f"Value for x-amz-checksum-{name} header is invalid.")
            if sent != computed:
                raise _Reject(400, "BadDigest", f"The {name.upper()} you specified did not match the calculated "
                                                "checksum.")

    # -- encrypted buckets ---------------------------------------------------------------------------
    def _opaque(self, etag: str) -> str:
        etag = etag.strip('"')
        if not etag:
            return etag
        salt = b"kms:" if self.kms else b"ssec:"
        opaque = hashlib.md5(salt + etag.encode()).hexdigest()
        if "-" in etag:
            opaque += "-" + etag.rsplit("-", 1)[1]
        with self._lock:
            self._real_etag[opaque] = etag
        return opaque

    def _real(self, etag: str) -> str:
        with self._lock:
            return self._real_etag.get(etag.strip('"'), etag.strip('"'))

    def _map_request(self, head: _Message, method: str, target: str, body: bytes) -> tuple[_Message, bytes]:
        if not (self.kms or self.sse_c):
            return head, body
        drop = {"content-md5", *(f"x-amz-checksum-{n}" for n in _CHECKSUMS)}
        headers = []
        for name, value in head.headers:
            if name.lower() in ("if-match", "if-none-match", "x-amz-copy-source-if-match",
                                "x-amz-copy-source-if-none-match"):
                value = ",".join(f'"{self._real(v.strip())}"' for v in value.split(","))
            headers.append((name, value))
        if method == "POST" and "uploadId=" in target and b"<ETag>" in body:
            mapped = _ETAG_XML_RE.sub(lambda m: b"<ETag>&quot;" + self._real(m.group(2).decode()).encode()
                                      + b"&quot;</ETag>", body)
            if mapped != body:  # the digests were checked over the client's body: the backend's would differ
                body, headers = mapped, [(k, v) for k, v in headers if k.lower() not in drop]
        return _Message(head.first, headers), body

    def _map_answer(self, method: str, target: str, head: _Message, status: int, answer: _Message,
                    body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        headers = list(answer.headers)
        if not (self.kms or self.sse_c) or not 200 <= status < 300:
            return headers, body
        path, _, query = target.partition("?")
        headers = [(k, f'"{self._opaque(v)}"' if k.lower() == "etag" else v) for k, v in headers
                   if not k.lower().startswith("x-amz-server-side-encryption")]
        listing = method == "GET" and (not _is_object(path) or "uploadId=" in query)
        if method in ("POST", "PUT") or listing:  # XML answers; never an object's own bytes
            body = _ETAG_XML_RE.sub(lambda m: b"<ETag>&quot;" + self._opaque(m.group(2).decode()).encode()
                                    + b"&quot;</ETag>", body)
        if _is_object(path) and method in ("PUT", "POST", "GET", "HEAD") and not listing:
            if self.kms:
                headers += [("x-amz-server-side-encryption", "aws:kms"),
                            ("x-amz-server-side-encryption-aws-kms-key-id", KMS_KEY_ID)]
            else:
                key_md5 = head.get("x-amz-server-side-encryption-customer-key-MD5") or \
                    base64.b64encode(hashlib.md5(b"strict-front").digest()).decode()
                headers += [("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                            ("x-amz-server-side-encryption-customer-key-MD5", key_md5)]
        return headers, body


def _is_object(path: str) -> bool:
    """Path-style /bucket/key with a key (the front is on 127.0.0.1: no virtual-hosted buckets)."""
    return len(path.split("/", 2)) == 3 and path.split("/", 2)[2] != ""
