"""Each store's failures come out as typed errors, decided by status and service code, not by message."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lsmigrate.stores.errors import (
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
from lsmigrate.stores.s3.failures import failure_of


def _s3(code: str, status: int, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "Op")


@pytest.mark.parametrize(("code", "status", "rel", "kind"), [
    ("NoSuchBucket", 404, "a", BucketNotFound),
    ("404", 404, None, BucketNotFound),
    ("404", 404, "a", NotFound),
    ("NoSuchKey", 404, "a", NotFound),
    ("NoSuchCORSConfiguration", 404, None, NotFound),
    ("InvalidAccessKeyId", 403, None, CredentialsRejected),
    ("AccessDenied", 403, "a", AccessDenied),
    ("BadDigest", 400, "a", ChecksumMismatch),
    ("NoSuchUpload", 404, "a", Gone),
    ("SlowDown", 503, "a", Throttled),
    ("InternalError", 500, "a", StoreError),
])
def test_s3_answers_become_typed_errors(code, status, rel, kind):
    error = failure_of(_s3(code, status, "words that decide nothing: 404 BlobNotFound does not exist"), "Op", rel,
                       where="s3://b/a", bucket="b")
    assert type(error) is kind
    assert error.fatal == isinstance(error, (BucketNotFound, AccessDenied))
    assert error.resend == isinstance(error, (ChecksumMismatch, Gone))


def test_s3_message_text_alone_decides_nothing():
    error = failure_of(_s3("InternalError", 500, "Not Found 404 NoSuchKey"), "GetObject", "x404", where="s3://b/x404",
                       bucket="b")
    assert type(error) is StoreError and not isinstance(error, NotFound)
    unreachable = failure_of(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "HeadBucket", None,
                             where="s3://b", bucket="b")
    assert isinstance(unreachable, NetworkError) and str(unreachable).startswith("cannot reach")


def test_azure_answers_become_typed_errors():
    from azure.core.exceptions import HttpResponseError

    from lsmigrate.stores.azure.failures import translate

    class Response:
        def __init__(self, status: int, code: str) -> None:
            self.status_code, self.reason, self.headers = status, "reason", {"x-ms-error-code": code}
            self.request = None

        def text(self, encoding=None):
            return ""

    def error(status: int, code: str, rel: str | None = "a") -> StoreError:
        exc = HttpResponseError(message="BlobNotFound 404 md-nothing", response=Response(status, code))
        return translate(exc, "Op", rel, where="az://c/a", bucket="c", scrub=lambda text: text)

    assert type(error(404, "ContainerNotFound")) is BucketNotFound
    assert type(error(404, "BlobNotFound")) is NotFound and error(404, "BlobNotFound").code == "BlobNotFound"
    assert type(error(403, "AuthenticationFailed")) is CredentialsRejected
    assert type(error(403, "AuthorizationPermissionMismatch")) is AccessDenied
    assert type(error(400, "Md5Mismatch")) is ChecksumMismatch
    assert type(error(503, "ServerBusy")) is Throttled
    assert type(error(500, "InternalError")) is StoreError
