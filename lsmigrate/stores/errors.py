"""What can go wrong with a destination, as types: the caller asks `isinstance`, never the message.

Each store raises these from the service's status code and error code (S3 `Error.Code`, Azure
`x-ms-error-code`, GCS's JSON error status); the message is already phrased for the user.
"""

from __future__ import annotations


class TargetError(Exception):
    """The destination is not fully specified or not understood (one line, says which option or variable)."""


class StoreError(Exception):
    """A failure talking to the object store, already phrased for the user (one line, no secrets).

    `fatal` ones (bad credentials, missing bucket, access denied) stop the whole run: retrying other
    files would only fail the same way. `digest` ones mean the server saw other bytes than we hashed.

    Every request was already retried as `--retries` allows (lsmigrate.retry) before its failure became a
    StoreError, so the engine sends a file again only when that can fix what a retried request could not:
    `resend` (digest and gone imply it).
    """

    def __init__(self, message: str, *, fatal: bool = False, digest: bool = False, gone: bool = False,
                 resend: bool = False, code: str = "") -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the server or library said
        self.code = code  # the service's error code (S3 Error.Code, x-ms-error-code, GCS reason), or ""
        self.fatal = fatal
        self.digest = digest
        self.gone = gone  # the upload session no longer exists
        self.resend = resend or digest or gone  # sending the file again (or resuming it) may succeed


class NotFound(StoreError):
    """The object (or bucket setting, such as a CORS configuration) asked for is not there."""


class BucketNotFound(StoreError):
    """The bucket (container) itself does not exist: always fatal."""

    def __init__(self, message: str) -> None:
        super().__init__(message, fatal=True)


class Gone(StoreError):
    """The upload session no longer exists (expired, cancelled, or completed elsewhere)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message, gone=True, code=code)


class AccessDenied(StoreError):
    """The request was refused for want of a permission: fatal. `lacking` names who lacks it, as the
    message says it ("credentials", "service account", "account")."""

    def __init__(self, message: str, *, lacking: str = "credentials", code: str = "") -> None:
        super().__init__(message, fatal=True, code=code)
        self.lacking = lacking


class CredentialsRejected(AccessDenied):
    """The credentials themselves are missing, malformed or refused (not a missing permission)."""


class Throttled(StoreError):
    """The service kept asking to slow down (429, SlowDown, ServerBusy) after every retry."""


class ChecksumMismatch(StoreError):
    """The server received other bytes than were sent: the file is sent again."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message, digest=True, code=code)


class NetworkError(StoreError):
    """No connection to the endpoint could be made (DNS, refused, timeout), or it broke before the answer
    was whole (closed, reset, read timeout)."""

