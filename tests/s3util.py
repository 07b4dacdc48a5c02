"""Small helpers the S3 tests share: run the CLI in-process or as a process, read objects back,
and count the requests moto received (its recorder), which is how tests prove what was (not) sent."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from lsmigrate.cli.app import main


def run(*args: str, env: dict[str, str] | None = None):
    """The CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def spawn(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """The CLI as its own process (for kill tests)."""
    return subprocess.Popen([sys.executable, "-m", "lsmigrate.cli", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def run_process(*args: str, env: dict[str, str] | None = None, deadline: float = 60,
                hint: Callable[[], str] | None = None) -> tuple[int, str, str, float]:
    """The CLI as its own process, killed at `deadline` seconds so that a hang fails the test instead of holding
    it: (exit code, stdout, stderr, seconds). `hint` adds what the test knows of the hang to the failure."""
    started = time.monotonic()
    proc = spawn(*args, env=env, text=True)
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"`lsmigrate {args[0]}` was still running after {deadline:.0f} s; "
                    f"{hint() if hint else ''} stderr so far: {err[-2000:]!r}")
    return proc.returncode, out, err, time.monotonic() - started


def kill_when(proc: subprocess.Popen, probe, *, timeout: float = 120, every: float = 0.02):
    """SIGKILL `proc` as soon as `probe()` returns something truthy (or at the timeout, or if it ended);
    returns the last value `probe()` gave."""
    import signal
    import time

    seen = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            seen = probe()
            if seen:
                break
            time.sleep(every)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return seen


def journaled_parts(state: Path) -> tuple[int, str | None]:
    """(parts journaled as sent and checked, the open session id) from a journal file, read while it is live."""
    import sqlite3

    try:
        with sqlite3.connect(state) as db:
            parts = db.execute("SELECT count(*) FROM parts WHERE etag IS NOT NULL").fetchone()[0]
            row = db.execute("SELECT upload_id FROM files WHERE upload_id IS NOT NULL").fetchone()
    except sqlite3.Error:
        return 0, None
    return parts, row[0] if row else None


def all_objects(client, bucket: str, prefix: str = "") -> dict[str, dict]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            found[item["Key"]] = item
    return found


class Recorder:
    """moto's request recorder, driven over HTTP: which requests reached the server, and how many."""

    def __init__(self, endpoint_url: str) -> None:
        parts = urlsplit(endpoint_url)
        self.host, self.port = parts.hostname, parts.port

    def _call(self, method: str, path: str) -> bytes:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, f"/moto-api/recorder/{path}")
            return conn.getresponse().read()
        finally:
            conn.close()

    def start(self) -> None:
        self._call("POST", "reset-recording")
        self._call("POST", "start-recording")

    def stop(self) -> list[dict]:
        self._call("POST", "stop-recording")
        lines = self._call("GET", "download-recording").decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def uploads_in(requests: list[dict]) -> tuple[int, int]:
    """(PutObject count, UploadPart count) among recorded requests."""
    puts = parts = 0
    for request in requests:
        if request["method"] != "PUT":
            continue
        query = urlsplit(request["url"]).query
        if "partNumber=" in query:
            parts += 1
        elif "uploadId=" not in query and "x-amz-copy-source" not in {k.lower() for k in request["headers"]}:
            puts += 1
    return puts, parts


def read_object(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()
