"""Small helpers the S3 tests share: run the CLI in-process or as a process, read objects back,
and count the requests moto received (its recorder), which is how tests prove what was (not) sent."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from click.testing import CliRunner

from lsmigrate.cli import main


def run(*args: str, env: dict[str, str] | None = None):
    """The CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def spawn(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """The CLI as its own process (for kill tests)."""
    return subprocess.Popen([sys.executable, "-m", "lsmigrate.cli", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


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
