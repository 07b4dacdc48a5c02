"""One retry policy (lsmigrate/retry.py): its numbers, and that every provider keeps to them on the wire.

`--retries N` means a request is tried at most N + 1 times, whichever layer retries it (botocore, our GCS
loop, the Azure SDK's policy) and whether or not the engine sends the file again afterwards. The proxy
(tests/faultproxy.py) counts what reached it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from faultproxy import FaultProxy
from s3util import run
from test_faults import make_cloud

from lsmigrate.retry import RetryPolicy, is_retryable, parse_retry_after, retry_after_of, retryable_status

MiB = 1024 * 1024


# ------------------------------------------------------------------------------------------------- the policy
def test_attempts_come_from_retries():
    assert RetryPolicy.from_retries(0).attempts == 1
    assert RetryPolicy.from_retries(2).attempts == 3 and RetryPolicy.from_retries(2).retries == 2
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_delays_grow_are_capped_and_jittered_within_bounds():
    policy = RetryPolicy(attempts=12)
    assert [policy.ceiling(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 20, 20]
    for retry in range(1, 12):
        ceiling = policy.ceiling(retry)
        assert policy.delay(retry, rand=lambda: 0.0) == ceiling / 2
        assert policy.delay(retry, rand=lambda: 1.0) == ceiling
        samples = [policy.delay(retry) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100, "jittered"
    # equal jitter: a later retry never waits less than an earlier one could
    assert all(policy.delay(n + 1, rand=lambda: 0.0) >= policy.delay(n, rand=lambda: 1.0) for n in range(1, 5))


def test_retry_after_is_honoured_up_to_a_cap():
    policy = RetryPolicy(attempts=3)
    assert policy.delay(1, 7.0, rand=lambda: 1.0) == 7.0, "longer than the backoff: the server's word"
    assert policy.delay(3, 0.0, rand=lambda: 1.0) == 4.0, "shorter: the backoff still applies"
    assert policy.delay(1, 3600.0) == policy.max_retry_after
    assert parse_retry_after("2") == 2.0 and parse_retry_after("1.5") == 1.5 and parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    date = format_datetime(now + timedelta(seconds=90), usegmt=True)  # "Thu, 01 Jan 2026 00:01:30 GMT"
    assert parse_retry_after(date, now=now.timestamp()) == pytest.approx(90)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now.timestamp()) == 0


def test_the_bound_of_a_dead_endpoint_is_the_one_help_states():
    assert RetryPolicy.from_retries(2).bound() == 3 * 5 + 1 + 2
    assert RetryPolicy.from_retries(5).bound() == 6 * 5 + 1 + 2 + 4 + 8 + 16
    text = " ".join(run("copy", "--help").output.split())
    assert "(N+1) x 5 s connect timeout" in text and "61 s for 5, 18 s for 2" in text


def _client_error(status: int, code: str, headers: dict | None = None):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}}, "PutObject")


def test_which_errors_retry():
    import aiohttp
    from azure.core.exceptions import HttpResponseError
    from gcsfs.retry import HttpError

    for status in (408, 429, 500, 502, 503, 504, 599):
        assert retryable_status(status), status
    for status in (400, 401, 403, 404, 409, 410, 412, 501, 505):
        assert not retryable_status(status), status
    assert retryable_status(400, "RequestTimeout"), "S3's slow-body timeout comes as a 400"

    assert is_retryable(_client_error(503, "SlowDown"))
    assert is_retryable(_client_error(500, "InternalError"))
    for status, code in ((403, "AccessDenied"), (403, "SignatureDoesNotMatch"), (404, "NoSuchKey"),
                         (400, "BadDigest"), (400, "InvalidDigest"), (404, "NoSuchUpload")):
        assert not is_retryable(_client_error(status, code)), code
    assert is_retryable(HttpError({"code": 429, "message": "rateLimitExceeded"}))
    assert is_retryable(HttpError({"code": 503, "message": "backendError"}))
    assert not is_retryable(HttpError({"code": 401, "message": "Invalid Credentials"}))
    busy = HttpResponseError(message="busy")
    busy.status_code, busy.error_code = 503, "ServerBusy"
    assert is_retryable(busy)
    denied = HttpResponseError(message="denied")
    denied.status_code, denied.error_code = 403, "AuthorizationPermissionMismatch"
    assert not is_retryable(denied)
    for exc in (ConnectionResetError(), TimeoutError(), aiohttp.ServerDisconnectedError(),
                aiohttp.ClientPayloadError("cut short"), aiohttp.ServerTimeoutError()):
        assert is_retryable(exc), exc
    for exc in (PermissionError(), FileNotFoundError(), ValueError("bad"), KeyError("x")):
        assert not is_retryable(exc), exc
    assert retry_after_of(_client_error(503, "SlowDown", {"retry-after": "3"})) == 3.0


def test_run_stops_at_the_attempts_and_on_what_cannot_succeed():
    import asyncio

    policy = RetryPolicy(attempts=3, base=0.001)
    calls = []

    async def flaky(exc):
        calls.append(exc)
        raise exc

    with pytest.raises(ConnectionResetError):
        asyncio.run(policy.run(lambda: flaky(ConnectionResetError())))
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(PermissionError):
        asyncio.run(policy.run(lambda: flaky(PermissionError())))
    assert len(calls) == 1


# -------------------------------------------------------------------------------------------- on the wire
#: The request that uploads the test file, per provider and shape (method, request target).
def _upload_request(provider: str, shape: str):
    if shape == "whole":
        return {
            "s3": lambda m, t: m == "PUT" and "/one.bin" in t and "uploadId=" not in t,
            "gcs": lambda m, t: m == "POST" and "uploadType=multipart" in t,
            "azure": lambda m, t: m == "PUT" and "/one.bin" in t and "comp=" not in t,
        }[provider]
    return {
        "s3": lambda m, t: m == "PUT" and "/big.bin?" in t and "partNumber=1&" in t + "&",
        "gcs": lambda m, t: m == "PUT" and "upload_id=" in t,
        "azure": lambda m, t: m == "PUT" and "/big.bin?" in t and "comp=block&" in t,
    }[provider]


def _source(tmp_path, shape: str, size_of_large: int):
    src = tmp_path / "src"
    src.mkdir()
    if shape == "whole":
        (src / "one.bin").write_bytes(os.urandom(100_000))
    else:
        (src / "big.bin").write_bytes(os.urandom(size_of_large))
    return src


@pytest.mark.parametrize("shape", ["whole", "parts"])
@pytest.mark.parametrize("provider", ["s3", "gcs", "azure"])
def test_a_failing_request_is_tried_at_most_retries_plus_one_times(provider, shape, request, monkeypatch, tmp_path):
    cloud = make_cloud(provider, request, monkeypatch)
    src = _source(tmp_path, shape, cloud.large[0])
    failing = _upload_request(provider, shape)
    with FaultProxy(cloud.backend, flavor=provider, fail_rate=1.0, kinds=["503"], match=failing) as proxy:
        result = run("copy", str(src), *cloud.args(proxy.endpoint_url), "--retries", "2", "--json",
                     env=cloud.env(proxy.endpoint_url))
        log = proxy.log
    tries = Counter(target for method, target, _ in log if failing(method, target))
    print(f"{provider} {shape}: {dict(tries)}")
    assert tries, f"the upload never reached the proxy: {log}"
    assert max(tries.values()) <= 3, f"one request tried {max(tries.values())} times with --retries 2: {dict(tries)}"
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["failed"] == 1 and doc["copied"] == 0, doc


# ------------------------------------------------------------------------------------------- a dead endpoint
def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def _copy_to_dead(provider: str, endpoint: str, tmp_path, monkeypatch) -> tuple[subprocess.CompletedProcess, float]:
    """`copy --retries 2` of one file to `endpoint` as its own process: its result and how long it took."""
    src = _source(tmp_path, "whole", 0)
    env = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    if provider == "azure":
        from servers import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME

        env["AZURE_STORAGE_CONNECTION_STRING"] = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};AccountKey={AZURITE_ACCOUNT_KEY};"
            f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT_NAME};")
        args = ["az://cont/m"]
    else:
        args = [{"s3": "s3://bucket/m", "gcs": "gs://bucket/m"}[provider], "--endpoint-url", endpoint]
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lsmigrate.cli", "copy", str(src), *args, "--retries", "2"],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=3 * RetryPolicy.from_retries(2).bound())
    return proc, time.monotonic() - started


def _failed_cleanly(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("lsmigrate: error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("provider", ["s3", "gcs", "azure"])
def test_a_dead_endpoint_fails_within_the_stated_bound(provider, s3_env, monkeypatch, tmp_path):
    """Nothing listens on the port: every connection is refused at once, so only the backoff counts."""
    bound = RetryPolicy.from_retries(2).bound()
    proc, took = _copy_to_dead(provider, f"http://127.0.0.1:{_dead_port()}", tmp_path, monkeypatch)
    print(f"{provider}: refused endpoint failed in {took:.1f} s (stated bound {bound:.0f} s); {proc.stderr!r}")
    _failed_cleanly(proc)
    assert "cannot reach" in proc.stderr
    assert took < 3 * bound


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["s3", "gcs", "azure"])
def test_a_black_holed_endpoint_fails_within_the_stated_bound(provider, s3_env, monkeypatch, tmp_path):
    """Connections are never answered (a full accept queue drops the SYNs): each try waits out the connect
    timeout, the largest part of the bound. Before the policy set one: Azure 20 s a try, GCS the OS's minutes."""
    bound = RetryPolicy.from_retries(2).bound()
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        filler.connect(server.getsockname())  # fills the queue; nothing is ever accepted
        proc, took = _copy_to_dead(provider, f"http://127.0.0.1:{server.getsockname()[1]}", tmp_path, monkeypatch)
    print(f"{provider}: black-holed endpoint failed in {took:.1f} s (stated bound {bound:.0f} s); {proc.stderr!r}")
    _failed_cleanly(proc)
    assert took < 3 * bound


# --------------------------------------------------------------------------------------------- Retry-After
class _RetryAfterProxy(FaultProxy):
    """Its 503s carry `Retry-After: <seconds>`; every request's arrival time is kept."""

    def __init__(self, *args, retry_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after
        self.arrivals: list[tuple[float, str, str, str]] = []

    def _decide(self, method, target):
        kind = super()._decide(method, target)
        self.arrivals.append((time.monotonic(), method, target, kind or ""))
        return kind

    async def _send_error(self, writer, status, method, *, close):
        body = {"s3": b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
                "gcs": json.dumps({"error": {"code": 503, "message": "Backend Error"}}).encode(),
                "azure": b"<Error><Code>ServerBusy</Code><Message>busy</Message></Error>"}[self.flavor]
        head = [f"HTTP/1.1 {status} Service Unavailable", f"Content-Length: {len(body)}",
                f"Retry-After: {self.retry_after}", "Connection: close"]
        if self.flavor == "azure":
            head.append("x-ms-error-code: ServerBusy")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if method == "HEAD" else body))
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("provider", ["s3", "gcs", "azure"])
def test_a_503_with_retry_after_is_waited_on(provider, request, monkeypatch, tmp_path):
    """S3 here is the small-file PUT (our own request); botocore's own requests (multipart, HEAD, listing)
    keep botocore's standard retries, which honour only `x-amz-retry-after`."""
    cloud = make_cloud(provider, request, monkeypatch)
    src = _source(tmp_path, "whole", 0)
    failing = _upload_request(provider, "whole")
    with _RetryAfterProxy(cloud.backend, flavor=provider, fail_rate=1.0, kinds=["503"], match=failing, max_faults=1,
                          retry_after=5) as proxy:
        result = run("copy", str(src), *cloud.args(proxy.endpoint_url), "--retries", "2", "--json",
                     env=cloud.env(proxy.endpoint_url))
        arrivals = [(when, fault) for when, method, target, fault in proxy.arrivals if failing(method, target)]
    assert result.exit_code == 0, result.output
    assert [fault for _, fault in arrivals] == ["503", ""], arrivals
    waited = arrivals[1][0] - arrivals[0][0]
    print(f"{provider}: retried {waited:.2f} s after a 503 with Retry-After: 5")
    # 5 s: longer than any first backoff (ours at most 1 s, the Azure SDK's old 2-4 s), so only honouring it passes
    assert waited >= 4.9, f"retried after {waited:.2f} s; the server asked for 5 s"
