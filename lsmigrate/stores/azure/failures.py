"""What an Azure SDK error means for the user, as the typed StoreError it is: by the answer's status and
its `x-ms-error-code`, never by its message (but for one Azurite quirk, named below)."""

from __future__ import annotations

from collections.abc import Callable

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from ...retry import throttled
from ..errors import (
    AccessDenied,
    BucketNotFound,
    ChecksumMismatch,
    CredentialsRejected,
    NotFound,
    StoreError,
    Throttled,
)

AUTH_CODES = {"AuthenticationFailed", "InvalidAuthenticationInfo", "AuthorizationFailure", "NoAuthenticationInformation"}
DENIED_CODES = {"AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch", "AuthorizationServiceMismatch",
                 "AuthorizationSourceIPMismatch", "AuthorizationProtocolMismatch", "InsufficientAccountPermissions",
                 "KeyBasedAuthenticationNotPermitted"}
ACCOUNT_ACTIONS = {"GetBlobServiceProperties", "SetBlobServiceProperties"}
DIGEST_CODES = {"Md5Mismatch", "InvalidMd5", "Crc64Mismatch"}


def error_code(exc: Exception) -> str:
    """The service's error code, from any of the SDK's errors (some, like IncompleteReadError, carry none)."""
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)
    response = getattr(exc, "response", None)
    if not code and response is not None:
        code = response.headers.get("x-ms-error-code")
    return str(code or "")


def _azurite_md5_refused(status: int | None, code: str, message: str) -> bool:
    """Azurite (3.35) answers a wrong Content-MD5 on Put Blob and Put Block with 400 InvalidOperation "Provided
    contentMD5 doesn't match." (Azure itself says Md5Mismatch): its one error told by the message, and only
    within that status and code, so a real Azure 400 with another code is never taken for it."""
    return status == 400 and code == "InvalidOperation" and "md5" in message.lower()


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def translate(exc: HttpResponseError, action: str, rel: str | None, *, where: str, bucket: str,
              scrub: Callable[[str], str]) -> StoreError:
    """An error answer as the typed error it means, by its status and x-ms-error-code."""
    if exc.response is None and isinstance(exc, ClientAuthenticationError):
        # A signing failure before any request was sent (the account key is not valid base64).
        return CredentialsRejected(f"the Azure credentials were rejected (the account key cannot sign requests) "
                                   f"for container {bucket}: check STORAGE_AZURE_ACCOUNT_KEY")
    code = error_code(exc)
    status = exc.status_code
    message = scrub(first_line(exc.reason if not exc.message else exc.message))
    if code == "ContainerNotFound" or (status == 404 and rel is None and code != "BlobNotFound"):
        return BucketNotFound(f"container {bucket} does not exist (create it, or fix the container name)")
    if action in ACCOUNT_ACTIONS and (code == "AuthorizationFailure" or code in DENIED_CODES or status == 403):
        # Credentials that work on the container (a container SAS, a data role) get this on account settings.
        return AccessDenied(f"access denied: {action} on the storage account ({code or status}); CORS rules "
                            "are account settings that need the account key or an account-level role",
                            lacking="account", code=code)
    if code in AUTH_CODES or (isinstance(exc, ClientAuthenticationError) and code not in DENIED_CODES):
        hint = ("check the account name and key (STORAGE_AZURE_ACCOUNT_NAME / STORAGE_AZURE_ACCOUNT_KEY, or the "
                "connection string / SAS token)")
        if code == "AuthorizationFailure":
            hint += ", and the storage account's firewall and shared-key access settings"
        return CredentialsRejected(f"the Azure credentials were rejected ({code or status}) for container "
                                   f"{bucket}: {hint}", code=code)
    if code in DENIED_CODES or status == 403:
        return AccessDenied(f"access denied: {action} on {where} ({code or status}); "
                            "the credentials need that permission (see `lsmigrate doctor`)", code=code)
    if code in DIGEST_CODES or _azurite_md5_refused(status, code, message):
        return ChecksumMismatch(f"{action} {where}: the server received other bytes than were sent "
                                f"({code or status}: {message})", code=code)
    if code == "InvalidBlobOrBlock":
        return StoreError(f"{action} {where} failed: {code}: {message} (uncommitted blocks left by "
                          "another tool with other block id lengths block new ones until Azure drops them, "
                          "after a week, or until the blob is written whole)")
    text = f"{action} {where} failed: {code or status}: {message}"
    if status == 404:
        return NotFound(text, code=code)
    kind = Throttled if throttled(status, code) else StoreError
    return kind(text, code=code)
