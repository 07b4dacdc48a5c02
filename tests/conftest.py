"""Shared fixtures: real storage servers (moto, fake-gcs-server, gcp-storage-emulator, Azurite,
rclone serve s3) and S3 test buckets. Data-dir generators live in tests/lsdata.py.
"""

from __future__ import annotations

import os

# gcsfs 2026.x probes the bucket type over gRPC+TLS and waits 60 s per call against an emulator
# (TESTBED.md). Must be set before gcsfs is imported anywhere.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import sys  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

# tests/ has no __init__.py; make `import servers` / `import lsdata` work whatever the import mode.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from servers import (  # noqa: E402
    Azurite,
    FakeGcsServer,
    GcpStorageEmulator,
    MotoServer,
    RcloneS3Server,
    _Server,
)

S3_KEY = "testing"
S3_SECRET = "testing"
S3_REGION = "us-east-1"


def _start_or_skip(server: _Server, *, skip_if_missing: bool) -> _Server:
    if skip_if_missing and not server.available():
        pytest.skip(server.not_installed_message())
    return server.start()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A running moto_server (S3 on `.endpoint_url`); any key/secret is accepted."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcsServer]:
    """A running fake-gcs-server (in memory). gcsfs: GCSFileSystem(endpoint_url=fake_gcs.endpoint_url,
    token="anon", project="test")."""
    server = FakeGcsServer()
    _start_or_skip(server, skip_if_missing=True)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcpStorageEmulator]:
    """A running gcp-storage-emulator (in memory): use it for resumable-session status tests."""
    server = GcpStorageEmulator()
    _start_or_skip(server, skip_if_missing=True)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A running Azurite blob service; `.connection_string` uses the well-known dev account."""
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    _start_or_skip(server, skip_if_missing=True)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def rclone_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3Server]:
    """A running `rclone serve s3` (keys testing/testing; buckets are folders under `.root_dir`).
    Unlike moto it checks Content-MD5 and enforces auth. Skips when rclone is not installed."""
    server = RcloneS3Server(tmp_path_factory.mktemp("rclone-s3"), S3_KEY, S3_SECRET)
    _start_or_skip(server, skip_if_missing=True)
    try:
        yield server
    finally:
        server.cleanup()


@dataclass(frozen=True)
class S3Bucket:
    name: str
    endpoint_url: str
    key: str = S3_KEY
    secret: str = S3_SECRET
    region: str = S3_REGION
    _client: Any = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    def client(self) -> Any:
        """A boto3 S3 client for this server (explicit credentials, independent of the env)."""
        return self._client

    def s3fs_options(self) -> dict[str, Any]:
        """Keyword arguments for s3fs.S3FileSystem."""
        return {"endpoint_url": self.endpoint_url, "key": self.key, "secret": self.secret}


def _boto3_client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


@pytest.fixture(scope="session")
def _moto_client(moto_server: MotoServer) -> Any:
    return _boto3_client(moto_server.endpoint_url)


def _empty_and_delete_bucket(client: Any, name: str) -> None:
    try:
        for up in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)
    except Exception:
        pass  # best effort: moto keeps it in memory until the session ends anyway


@pytest.fixture
def s3_bucket(moto_server: MotoServer, _moto_client: Any) -> Iterator[S3Bucket]:
    """A fresh, uniquely named, empty bucket on the session's moto server (keys testing/testing).
    Emptied and deleted afterwards (frees moto's memory)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    _moto_client.create_bucket(Bucket=name)
    try:
        yield S3Bucket(name=name, endpoint_url=moto_server.endpoint_url, _client=_moto_client)
    finally:
        _empty_and_delete_bucket(_moto_client, name)


_AWS_VARS_TO_DROP = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CA_BUNDLE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Environment for talking to a local S3 server with keys testing/testing, isolated from the
    user's ~/.aws (config/credentials files point to nonexistent paths) and with XDG_STATE_HOME
    in a fresh temp dir. Returns that XDG_STATE_HOME path."""
    for var in _AWS_VARS_TO_DROP:
        monkeypatch.delenv(var, raising=False)
    base = tmp_path_factory.mktemp("s3env")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", S3_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(base / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(base / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    state = base / "state"
    state.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state
