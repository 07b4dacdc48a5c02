"""What a botocore, aiohttp or OS error means for the user, as the typed StoreError it is.

The kind comes from the answer's status and S3 error code (`Error.Code`), never from its message."""

from __future__ import annotations

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ...retry import throttled
from ..errors import (
    AccessDenied,
    BucketNotFound,
    ChecksumMismatch,
    CredentialsRejected,
    Gone,
    NetworkError,
    NotFound,
    StoreError,
    Throttled,
)

AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
              "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidClientTokenId"}
DENIED_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}
DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
# No connection, or one that broke before the answer was whole: botocore's (connect or read timeout, closed,
# proxy, TLS) and aiohttp's and the OS's on the lean PUT and listing paths and a GetObject body's read
# (aiobotocore itself counts a ClientPayloadError as a closed connection).
BOTO_NETWORK = (BotoConnectionError, HTTPClientError)
NETWORK = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError, TimeoutError)


def failure_of(exc: Exception, action: str, rel: str | None, *, where: str, bucket: str) -> StoreError | None:
    """`exc` as a StoreError (None: not a store failure). `where` names the object (the bucket for rel None)."""
    if isinstance(exc, ClientError):
        return _answered(exc, action, rel, where=where, bucket=bucket)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsRejected("no AWS credentials found: set STORAGE_AWS_ACCESS_KEY_ID/STORAGE_AWS_SECRET_ACCESS_KEY "
                                   "(or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or an IAM role)")
    if isinstance(exc, EndpointConnectionError):
        return NetworkError(f"cannot reach the S3 endpoint ({exc.kwargs.get('endpoint_url', 'unknown')}) "
                            f"for {action}; check --endpoint-url and the network")
    if isinstance(exc, BotoCoreError):
        return (NetworkError if isinstance(exc, BOTO_NETWORK) else StoreError)(f"{action} {where} failed: {exc}")
    if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
        kind = NetworkError if isinstance(exc, NETWORK) else StoreError
        return kind(f"{action} {where} failed: {exc.__class__.__name__}: {exc}")
    return None


def _answered(exc: ClientError, action: str, rel: str | None, *, where: str, bucket: str) -> StoreError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "NoSuchBucket" or (code in ("404", "NotFound") and rel is None):
        return BucketNotFound(f"bucket {bucket} does not exist (create it, or fix the bucket name)")
    if code in AUTH_CODES:
        return CredentialsRejected(f"the S3 credentials were rejected ({code}) for bucket {bucket}: "
                                   "check the access key and secret", code=code)
    if code in DENIED_CODES or status == 403:
        return AccessDenied(f"access denied: {action} on {where}; "
                            "the credentials need that permission (see `lsmigrate doctor`)", code=code)
    if code in DIGEST_CODES:
        return ChecksumMismatch(f"{action} {where}: the server received other bytes than were sent ({code})", code=code)
    if code == "NoSuchUpload":
        return Gone(f"upload session for {where} no longer exists", code=code)
    message = f"{action} {where} failed: {code}: {error.get('Message') or code or str(status)}"
    if status == 404 or code in ("404", "NotFound", "NoSuchKey"):
        return NotFound(message, code=code)
    kind = Throttled if throttled(status, code) else StoreError
    return kind(message, code=code)
