"""Each store's failures come out as typed errors, decided by status and service code, not by message."""

from __future__ import annotations

import json
from types import SimpleNamespace

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

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


@pytest.mark.parametrize("exc", [
    aiohttp.ServerDisconnectedError(),  # the lean PUT's or listing's connection dropped
    aiohttp.ClientOSError(104, "Connection reset by peer"),
    aiohttp.ClientPayloadError("Response payload is not completed"),  # a GetObject body cut short
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:9000/b/a"),
    ConnectionClosedError(endpoint_url="http://127.0.0.1:9000/b/a"),
])
def test_s3_connection_failures_are_network_errors_with_their_messages(exc):
    error = failure_of(exc, "PutObject", "a", where="s3://b/a", bucket="b")
    assert type(error) is NetworkError and not (error.fatal or error.resend)
    assert str(error).startswith("PutObject s3://b/a failed: ")


def test_s3_client_failures_that_are_no_connection_failure_stay_store_errors():
    error = failure_of(aiohttp.InvalidURL("http://[::1"), "PutObject", "a", where="s3://b/a", bucket="b")
    assert type(error) is StoreError and str(error) == "PutObject s3://b/a failed: InvalidURL: http://[::1"


def test_azure_answers_become_typed_errors():
    from azure.core.exceptions import HttpResponseError

    from lsmigrate.stores.azure.failures import translate

    class Response:
        def __init__(self, status: int, code: str) -> None:
            self.status_code, self.reason, self.headers = status, "reason", {"x-ms-error-code": code}
            self.request = None

        def text(self, encoding=None):
            return ""

    def error(status: int, code: str, rel: str | None = "a", message: str = "BlobNotFound 404 md-nothing") -> StoreError:
        exc = HttpResponseError(message=message, response=Response(status, code))
        return translate(exc, "Op", rel, where="az://c/a", bucket="c", scrub=lambda text: text)

    assert type(error(404, "ContainerNotFound")) is BucketNotFound
    assert type(error(404, "BlobNotFound")) is NotFound and error(404, "BlobNotFound").code == "BlobNotFound"
    assert type(error(403, "AuthenticationFailed")) is CredentialsRejected
    assert type(error(403, "AuthorizationPermissionMismatch")) is AccessDenied
    assert type(error(400, "Md5Mismatch")) is ChecksumMismatch
    assert type(error(503, "ServerBusy")) is Throttled
    assert type(error(500, "InternalError")) is StoreError
    # Azurite (3.35) says InvalidOperation "Provided contentMD5 doesn't match." where Azure says Md5Mismatch
    assert type(error(400, "InvalidOperation", message="Provided contentMD5 doesn't match.")) is ChecksumMismatch
    assert type(error(400, "InvalidHeaderValue", message="The value for x-ms-blob-content-md5 is invalid.")) is StoreError
    assert type(error(400, "InvalidOperation", message="The size of the request body mismatches.")) is StoreError


def test_azure_connection_failures_are_network_errors():
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from fsspec.asyn import get_loop

    from lsmigrate.stores.azure.store import AzureStore
    from lsmigrate.stores.base import Store
    from lsmigrate.target import Target

    store = AzureStore.__new__(AzureStore)  # no client: _run is given the failing call itself
    Store.__init__(store, Target(provider="azure", bucket="c", account_name="acct", account_key="secret=="),
                   SimpleNamespace(loop=get_loop()))
    store._service = SimpleNamespace(url="https://acct.blob.core.windows.net/")

    def failing(exc: Exception) -> StoreError:
        async def call():
            raise exc
        with pytest.raises(StoreError) as failed:
            store._run("GetBlob", "a", call)
        return failed.value

    broke = failing(ServiceResponseError("Connection reset by peer"))
    assert type(broke) is NetworkError and str(broke) == ("GetBlob az://c/a failed: the connection to the Azure "
                                                          "endpoint (https://acct.blob.core.windows.net) broke before an answer")
    assert type(failing(ServiceRequestError("Name or service not known"))) is NetworkError
    assert type(failing(ConnectionResetError(104, "reset"))) is NetworkError


def _gcs_store():
    from lsmigrate.stores.gcs.store import GCSStore
    from lsmigrate.target import Target

    return GCSStore(Target(provider="gcs", bucket="b", folder="f"), SimpleNamespace(_location="https://gcs.test"))


def _gcs_answer(status: int, body: bytes, action: str = "GetObject", rel: str | None = "a") -> StoreError:
    """What the GCS store makes of an error answer, reached as in GCSStore._send: gcsfs's own error for it
    (validate_response), wrapped with the status and JSON reason."""
    from gcsfs.retry import validate_response

    from lsmigrate.stores.gcs.store import _reason, _Refused

    try:
        try:
            validate_response(status, body, "https://gcs.test/b/o/a")
        except Exception as exc:
            raise _Refused(status, _reason(body)) from exc
    except _Refused as refused:
        return _gcs_store()._refused(refused, action, rel)
    raise AssertionError("validate_response accepted the answer")


def _gcs_json(status: int, reason: str, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message,
                                 "errors": [{"domain": "global", "reason": reason, "message": message}]}}).encode()


@pytest.mark.parametrize(("status", "reason", "action", "rel", "kind"), [
    (404, "notFound", "GetObject", "a", NotFound),
    (404, "notFound", "Download", "a", NotFound),
    (404, "notFound", "ListObjects", None, BucketNotFound),
    (404, "notFound", "GetBucket", None, BucketNotFound),
    (404, "notFound", "UploadChunk", "a", Gone),  # the session URI no longer answers
    (404, "notFound", "QueryResumableUpload", "a", Gone),
    (410, "gone", "UploadChunk", "a", Gone),
    (401, "required", "GetObject", "a", CredentialsRejected),
    (403, "forbidden", "Upload", "a", AccessDenied),
    (429, "rateLimitExceeded", "Upload", "a", Throttled),
    (503, "rateLimitExceeded", "Upload", "a", Throttled),
    (503, "backendError", "Upload", "a", StoreError),
    (500, "internalError", "Upload", "a", StoreError),
    (400, "invalid", "Upload", "a", ChecksumMismatch),
])
def test_gcs_answers_become_typed_errors(status, reason, action, rel, kind):
    error = _gcs_answer(status, _gcs_json(status, reason, 'Provided MD5 hash "x" doesn\'t match calculated MD5 hash "y".'
                                          if status == 400 else "words that decide nothing: 404 not found md5"),
                        action, rel)
    assert type(error) is kind
    assert error.fatal == isinstance(error, (BucketNotFound, AccessDenied))
    assert error.resend == isinstance(error, (ChecksumMismatch, Gone))
    if kind is AccessDenied:
        assert error.lacking == "service account"


def test_gcs_md5_refusal_needs_the_invalid_reason_when_the_answer_has_one():
    refused = 'Provided MD5 hash "x" doesn\'t match calculated MD5 hash "y".'
    assert type(_gcs_answer(400, _gcs_json(400, "invalid", refused), "Upload")) is ChecksumMismatch
    assert type(_gcs_answer(400, _gcs_json(400, "badRequest", refused), "Upload")) is StoreError
    assert type(_gcs_answer(400, _gcs_json(400, "invalid", "Invalid argument."), "Upload")) is StoreError
    assert type(_gcs_answer(400, b"md5 hash mismatch", "Upload")) is ChecksumMismatch  # no JSON reason: the text
    assert type(_gcs_answer(500, _gcs_json(500, "", refused), "Upload")) is StoreError  # not a 4xx
