"""A flaky or dead network between lsmigrate and S3 (moto), GCS (fake-gcs-server) and Azure (Azurite).

tests/faultproxy.py sits in front of each emulator and injects 500s, 503s (SlowDown / backendError /
ServerBusy), connection resets in the request body and in the response body, truncated answers and stalls.
lsmigrate must still land every file byte for byte (checked by `verify --download` straight at the emulator),
and when the network is gone it must say so, one line per file, exit non-zero without a traceback, and
finish the job from its journal once the network is back.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from faultproxy import FAULT_KINDS, FaultProxy
from lsdata import make_data_dir
from s3util import run, run_process

MiB = 1024 * 1024
PROVIDERS = ("s3", "gcs", "azure")
#: Faults that make a request fail (a stall only delays it).
FAILING = ("500", "503", "reset_request", "reset_response", "truncate")


@dataclass
class Cloud:
    """One destination on one emulator, and how to point lsmigrate at it through any endpoint."""

    provider: str
    backend: str  # the emulator's own endpoint (the healthy path)
    url: str
    sizes: tuple[str, ...]  # --chunk-size/--multipart-threshold that make the large files go in parts
    large: tuple[int, ...]
    connection_string: str = field(default="", repr=False)

    def options(self, endpoint: str) -> list[str]:
        return [] if self.provider == "azure" else ["--endpoint-url", endpoint]

    def env(self, endpoint: str) -> dict[str, str]:
        if self.provider != "azure":
            return {}
        # Credentials and endpoint come whole from the provider's standard variable; its BlobEndpoint can
        # point anywhere, the proxy included.
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string.replace(self.backend, endpoint)}

    def args(self, endpoint: str) -> list[str]:
        return [self.url, *self.options(endpoint), *self.sizes]


def make_cloud(provider: str, request, monkeypatch) -> Cloud:
    """A fresh bucket (container) on the session's emulator for `provider`."""
    request.getfixturevalue("s3_env")  # isolated credentials and XDG_STATE_HOME (the journals)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    if provider == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return Cloud("s3", bucket.endpoint_url, f"{bucket.url}/m", ("--chunk-size", "5MiB", "--multipart-threshold",
                     "6MiB"), (12 * MiB, 11 * MiB))
    if provider == "gcs":
        import gcsfs

        server = request.getfixturevalue("fake_gcs")
        name = f"f{uuid.uuid4().hex[:12]}"
        gcsfs.GCSFileSystem(endpoint_url=server.endpoint_url, token="anon", project="test",
                            skip_instance_cache=True).mkdir(name)
        return Cloud("gcs", server.endpoint_url, f"gs://{name}/m", ("--chunk-size", "8MiB", "--multipart-threshold",
                     "9MiB"), (19 * MiB,))
    from azure.storage.blob import BlobServiceClient

    server = request.getfixturevalue("azurite")
    name = f"f{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(server.connection_string).create_container(name)
    return Cloud("azure", server.endpoint_url, f"az://{name}/m", ("--chunk-size", "4MiB", "--multipart-threshold",
                 "5MiB"), (11 * MiB, 9 * MiB), connection_string=server.connection_string)


@pytest.fixture(params=PROVIDERS)
def cloud(request, monkeypatch) -> Cloud:
    return make_cloud(request.param, request, monkeypatch)


def _verified_clean(cloud: Cloud, data) -> None:
    """Every object read back straight from the emulator (no proxy) and hashed: all there, all equal."""
    result = run("verify", str(data.root), cloud.url, *cloud.options(cloud.backend), "--download", "--json",
                 env=cloud.env(cloud.backend))
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["clean"], result.output
    assert doc["bases"] == {"download": len(data.files)} and doc["counts"] == {"ok": len(data.files)}


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and 'File "' not in text, text


# ---------------------------------------------------------------------------------------- the proxy itself
class _Echo(BaseHTTPRequestHandler):
    """A keep-alive backend that answers with what it received, and a Location pointing at itself."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            raise AssertionError("the proxy forwards bodies with a Content-Length")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"method": self.command, "path": self.path, "body": body.decode(),
                              "expect": self.headers.get("Expect")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/session?id=1")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_HEAD = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_backend():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_proxy_forwards_chunked_bodies_expect_continue_keep_alive_and_injects_faults(echo_backend):
    with pytest.raises(ValueError):
        FaultProxy("http://example.com:80")
    proxy = FaultProxy(echo_backend, flavor="s3", seed=1).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("PUT", "/b/k?partNumber=1", body=iter([b"hello ", b"chunked ", b"world"]), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        answer = conn.getresponse()
        doc = json.loads(answer.read())
        assert answer.status == 200 and doc["body"] == "hello chunked world" and doc["path"] == "/b/k?partNumber=1"
        assert answer.getheader("Location") == f"{proxy.endpoint_url}/session?id=1", "rewritten to the proxy"
        conn.request("HEAD", "/b/k")
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b"" and int(head.getheader("Content-Length")) > 0

        closing = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        closing.request("PUT", "/b/big", body=b"y" * 300_000, headers={"Connection": "close"})
        big = closing.getresponse()
        assert len(json.loads(big.read())["body"]) == 300_000, "a closing connection's last answer arrives whole"
        closing.close()

        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:  # Expect: 100-continue
            raw.sendall(b"PUT /b/e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            raw.sendall(b"body")
            reply = http.client.HTTPResponse(raw)
            reply.begin()
            doc = json.loads(reply.read())
            assert doc["body"] == "body" and doc["expect"] is None

        proxy.set(fail_rate=1.0, kinds=["503"])
        conn.request("GET", "/b?list-type=2")
        answer = conn.getresponse()
        assert answer.status == 503 and b"<Code>SlowDown</Code>" in answer.read()
        conn.request("GET", "/b/k")  # the connection stays usable after an injected error
        answer = conn.getresponse()
        assert answer.status == 503 and answer.read()
        conn.close()
        for kind, error in (("reset_request", (ConnectionError, http.client.HTTPException)),
                            ("reset_response", (ConnectionError, http.client.HTTPException)),
                            ("truncate", http.client.IncompleteRead)):
            proxy.set(kinds=[kind])
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            with pytest.raises(error):
                conn.request("PUT", "/b/k", body=b"x" * 100_000)
                conn.getresponse().read()
            conn.close()
        proxy.set(kinds=["stall"], stall_seconds=0.3)
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/b/k")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.read() and time.monotonic() - started >= 0.3
        proxy.healthy()
        conn.request("GET", "/b/k")
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["method"] == "GET"
        conn.close()
        assert proxy.injected == {"503": 2, "reset_request": 1, "reset_response": 1, "truncate": 1, "stall": 1}
        assert proxy.requests == 11 and proxy.connections == 7, "keep-alive: one connection for many requests"
        assert [entry[2] for entry in proxy.log][:2] == ["", ""]
    finally:
        proxy.stop()
    assert not any(t.name == "faultproxy" for t in threading.enumerate()), "the proxy's thread is gone"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


# --------------------------------------------------------------------------------------------- flaky network
def test_copy_through_a_flaky_network_lands_every_file(cloud, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=10, large_files=cloud.large)
    with FaultProxy(cloud.backend, flavor=cloud.provider, seed=16, fail_rate=0.12, stall_seconds=1.5) as proxy:
        result = run("copy", str(data.root), *cloud.args(proxy.endpoint_url), "--retries", "4", "--json",
                     env=cloud.env(proxy.endpoint_url))
        injected = proxy.injected
        log = proxy.log
    _no_traceback(result.stdout, result.stderr)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["copied"] == len(data.files) and doc["failed"] == 0 and doc["failures"] == []
    assert set(injected) == set(FAULT_KINDS), f"every kind of fault should have been injected: {injected}"
    assert sum(1 for _, _, fault in log if fault) >= 0.05 * len(log)
    writes = [fault for method, _, fault in log if method in ("PUT", "POST")]
    assert any(writes), "some uploads must have been hit"
    _verified_clean(cloud, data)


# ---------------------------------------------------------------------------------------------- dead network
def _cli(*args: str, env: dict[str, str], deadline: float) -> tuple[int, str, str, float]:
    """lsmigrate against a dead endpoint as its own process, killed at `deadline` seconds."""
    return run_process(*args, env=env, deadline=deadline, hint=lambda: "with --retries 1 against a dead endpoint;")




#: How each provider's part (block, chunk) uploads of one object look on the wire.
_PART_MARK = {"s3": "partNumber=", "azure": "comp=block&", "gcs": "upload_id="}


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["s3", "gcs", "azure"])
def test_dead_network_fails_cleanly_and_the_journal_finishes_the_job(provider, request, monkeypatch, tmp_path):
    """Down from the start: exit 2, one line: the destination cannot even be checked, so no file was attempted
    and none "failed"; the endpoint is as good as misconfigured. Down in the middle of a large file: exit 1, one
    line per failed file. Back up: the same command finishes from the journal, sending only what is missing."""
    cloud = make_cloud(provider, request, monkeypatch)
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=8, odd_names=False, exports=1,
                         large_files=cloud.large[:1])
    total = len(data.files)
    large = next(rel for rel, size in data.files.items() if size == cloud.large[0]).rsplit("/", 1)[1]

    def part_of_large(method: str, target: str) -> bool:
        return method == "PUT" and large in target and _PART_MARK[provider] in target

    with FaultProxy(cloud.backend, flavor=cloud.provider, seed=5, fail_rate=1.0, kinds=FAILING) as proxy:
        args = ("copy", str(data.root), *cloud.args(proxy.endpoint_url), "--retries", "1")
        env = cloud.env(proxy.endpoint_url)

        # 1. Dead from the first request. --retries 1 keeps it short: seconds, not minutes.
        code, out, err, _ = _cli(*args, env=env, deadline=8)
        _no_traceback(out, err)
        assert code == 2, (code, out, err)
        assert err.count("\n") == 1 and err.startswith("lsmigrate: error: "), err
        assert proxy.forwarded == 0

        # 2. Dies after the second part of the large file: nothing gets through after that.
        proxy.set(pass_until=part_of_large, pass_until_count=2)
        code, out, err, _ = _cli(*args, env=env, deadline=20)
        _no_traceback(out, err)
        assert code == 1, (code, out, err)
        lines = out.strip().splitlines()
        assert lines[-1].startswith("verified by: "), lines[-1]  # the files that did land, per basis
        assert lines[-2].startswith("sent "), lines[-2]  # bytes sent apart from bytes verified
        lines = lines[:-2]
        assert len(lines) == 1, "stdout: the summary alone"
        summary = lines[-1]
        assert summary.startswith("copied "), summary
        failed = int(summary.split("failed ")[1].split()[0])
        copied = int(summary.split("copied ")[1].split()[0])
        assert 0 < copied < total and failed == total - copied, summary
        errors = err.splitlines()
        assert len(errors) == failed, "stderr: one line per failed file, and nothing else"
        paths = [line.split(": ", 1)[0] for line in errors]
        assert len(set(paths)) == failed and set(paths) <= set(data.files), errors
        assert any(path.endswith(large) for path in paths), "the large file was cut off in the middle"

        # 3. Back up: the same command again, the same journal.
        proxy.healthy()
        seen = len(proxy.log)
        code, out, err, _ = _cli(*args, "--json", env=env, deadline=30)
        assert code == 0, (code, out, err)
        doc = json.loads(out)
        assert doc["failed"] == 0 and doc["skipped"] >= copied
        assert doc["copied"] + doc["identical"] + doc["skipped"] == total
        assert doc["copied"] <= failed < total, "files verified before the failure must not be sent again"
        parts_again = [t for m, t, _ in proxy.log[seen:] if part_of_large(m, t)]
        if provider != "gcs":  # fake-gcs-server finalizes a session on GCS's status query (TESTBED.md)
            assert len(parts_again) <= 1, f"the large file's first two parts were sent again: {parts_again}"
    _verified_clean(cloud, data)


def test_a_server_that_stops_reading_a_part_is_timed_out_and_retried(request, monkeypatch, tmp_path):
    """aiohttp has no write timeout: without lsmigrate's own, a server that stops reading a body holds the upload
    forever (seen with rclone serve s3). A write that makes no progress for WRITE_STALL seconds fails, and the part
    is sent again on a fresh connection."""
    monkeypatch.setattr("lsmigrate.stores.s3.part_body.WRITE_STALL", 1.0)
    cloud = make_cloud("s3", request, monkeypatch)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False, large_files=(40 * MiB,))

    def first_part(method: str, target: str) -> bool:
        return method == "PUT" and "partNumber=1&" in target + "&"

    with FaultProxy(cloud.backend, flavor="s3", fail_rate=1.0, kinds=["stop_reading"], stall_seconds=120,
                    match=first_part, max_faults=1) as proxy:
        started = time.monotonic()
        result = run("copy", str(data.root), *cloud.args(proxy.endpoint_url), "--chunk-size", "32MiB",
                     "--multipart-threshold", "32MiB", "--json", env=cloud.env(proxy.endpoint_url))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["copied"] == len(data.files)
        assert proxy.injected == {"stop_reading": 1}
        assert time.monotonic() - started < 60, "the stalled part waited for the proxy instead of timing out"
    _verified_clean(cloud, data)
