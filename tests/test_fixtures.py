"""The test bed itself works: servers answer, buckets are usable, generated data dirs are what
they claim to be."""

from __future__ import annotations

import hashlib
import http.client
import os
import sqlite3
import unicodedata
import uuid
from pathlib import Path

import pytest
from lsdata import ODD_NAMES, MiB, make_data_dir, make_flat_tree
from servers import FakeGcsServer, ServerError, free_port


def _walk(media: Path) -> dict[str, int]:
    found = {}
    for dirpath, _dirs, names in os.walk(media):
        for n in names:
            p = Path(dirpath, n)
            found[p.relative_to(media).as_posix()] = p.stat().st_size
    return found


# -- S3 ------------------------------------------------------------------------------------------


def test_moto_bucket_put_get(s3_bucket):
    client = s3_bucket.client()
    client.put_object(Bucket=s3_bucket.name, Key="upload/1/ab12cd34-café #1.jpg", Body=b"hello")
    got = client.get_object(Bucket=s3_bucket.name, Key="upload/1/ab12cd34-café #1.jpg")
    assert got["Body"].read() == b"hello"
    assert got["ETag"].strip('"') == hashlib.md5(b"hello").hexdigest()
    assert s3_bucket.endpoint_url.startswith("http://127.0.0.1:")


def test_s3_buckets_are_fresh(s3_bucket, _moto_client):
    listed = _moto_client.list_objects_v2(Bucket=s3_bucket.name)
    assert listed.get("KeyCount", 0) == 0


def test_s3fs_with_s3_env(s3_bucket, s3_env):
    import s3fs

    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert "AWS_PROFILE" not in os.environ
    assert os.environ["XDG_STATE_HOME"] == str(s3_env) and s3_env.is_dir()
    fs = s3fs.S3FileSystem(endpoint_url=s3_bucket.endpoint_url, skip_instance_cache=True)
    fs.pipe(f"{s3_bucket.name}/a/b.txt", b"xyz")
    assert fs.cat(f"{s3_bucket.name}/a/b.txt") == b"xyz"


def test_rclone_s3(rclone_s3):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=rclone_s3.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    # Through the API: a folder made behind rclone's back is unseen while its directory cache holds the root.
    bucket = f"bkt-{uuid.uuid4().hex[:8]}"  # the server is shared by the session's tests
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="x/y.bin", Body=b"data")
    assert client.get_object(Bucket=bucket, Key="x/y.bin")["Body"].read() == b"data"
    assert (rclone_s3.root_dir / bucket / "x" / "y.bin").read_bytes() == b"data"


# -- GCS -----------------------------------------------------------------------------------------


def _gcsfs(endpoint_url):
    import gcsfs

    return gcsfs.GCSFileSystem(
        endpoint_url=endpoint_url, token="anon", project="test", skip_instance_cache=True
    )


def test_fake_gcs_roundtrip(fake_gcs):
    fs = _gcsfs(fake_gcs.endpoint_url)
    fs.mkdir("fixture-bucket")
    fs.pipe("fixture-bucket/upload/1/small.txt", b"small")
    assert fs.cat("fixture-bucket/upload/1/small.txt") == b"small"
    assert "md5Hash" in fs.info("fixture-bucket/upload/1/small.txt")
    # > 5 MiB: resumable upload, whose session URL must point back at this server.
    big = os.urandom(6 * MiB)
    fs.pipe("fixture-bucket/big.bin", big)
    assert fs.info("fixture-bucket/big.bin")["size"] == len(big)
    assert fs.cat("fixture-bucket/big.bin") == big


def test_gcs_emulator_roundtrip(gcs_emulator):
    fs = _gcsfs(gcs_emulator.endpoint_url)
    fs.mkdir("emu-bucket")
    fs.pipe("emu-bucket/a.txt", b"abc")
    assert fs.cat("emu-bucket/a.txt") == b"abc"


# -- Azure ---------------------------------------------------------------------------------------


def test_azurite_roundtrip(azurite):
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = svc.create_container("fixture-container")
    container.upload_blob("upload/1/日本語 #1.png", b"\x89PNG data")
    assert container.download_blob("upload/1/日本語 #1.png").readall() == b"\x89PNG data"


def test_adlfs_with_azurite(azurite):
    import adlfs

    fs = adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string, skip_instance_cache=True)
    fs.mkdir("adlfs-container")
    fs.pipe("adlfs-container/x/y.txt", b"yo")
    assert fs.cat("adlfs-container/x/y.txt") == b"yo"


# -- server lifecycle ----------------------------------------------------------------------------


def test_server_stop_frees_port_and_reaps_process():
    server = FakeGcsServer()
    with server:
        pid, port = server.pid, server.port
        assert server.running and server.startup_seconds is not None
    assert not server.running and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    with pytest.raises(OSError):
        conn.request("GET", "/storage/v1/b")
    server.cleanup()


def test_server_that_dies_reports_its_log(tmp_path, monkeypatch):
    fake = tmp_path / "fake-server"
    fake.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LSMIGRATE_FAKE_GCS", str(fake))
    server = FakeGcsServer(port=free_port())
    with pytest.raises(ServerError, match="boom: cannot start"):
        server.start()
    server.cleanup()


# -- generated data dirs -------------------------------------------------------------------------


def test_make_data_dir_layout(tmp_path):
    dd = make_data_dir(tmp_path / "ls", projects=3, uploads_per_project=5, large_files=(2 * MiB + 7,))
    assert dd.media == dd.root / "media"
    assert _walk(dd.media) == dd.files
    assert dd.total_bytes() == sum(_walk(dd.media).values())

    # The database and the legacy folders exist, outside media/.
    assert dd.sqlite.is_file() and dd.sqlite.parent == dd.root
    con = sqlite3.connect(dd.sqlite)
    uploads = {row[0] for row in con.execute("SELECT file FROM data_import_fileupload")}
    con.close()
    assert uploads and uploads <= set(dd.files)
    assert list((dd.root / "export").glob("*.json"))
    assert any((dd.root / "test_data").iterdir())

    rels = list(dd.files)
    names = [r.rsplit("/", 1)[-1] for r in rels]
    for pid in (1, 2, 3):
        assert sum(r.startswith(f"upload/{pid}/") for r in rels) >= 5
    assert sum(r.count("/") == 1 and r.startswith("upload/") for r in rels) == 3  # legacy flat
    assert sum(r.startswith("avatars/") and r.endswith(".png") for r in rels) == 3
    exports = [r for r in rels if r.startswith("export/")]
    assert len(exports) == 2
    for r in exports:
        data = (dd.media / r).read_bytes()
        assert r.endswith(f"-at-2024-05-01-10-30-{hashlib.md5(data).hexdigest()[:8]}.json")
    for odd in ODD_NAMES:
        assert any(n == odd or n.endswith("-" + odd) for n in names), odd
    assert all(unicodedata.is_normalized("NFC", r) for r in rels)
    assert "-leading-dash.txt" in names
    assert sum(size == 0 for size in dd.files.values()) == 2
    large = [r for r in rels if "-large-" in r]
    assert len(large) == 1 and dd.files[large[0]] == 2 * MiB + 7
    with open(dd.media / large[0], "rb") as f:
        first, second = f.read(MiB), f.read(MiB)
    assert first != second


def test_make_data_dir_is_deterministic(tmp_path):
    a = make_data_dir(tmp_path / "a", uploads_per_project=4)
    b = make_data_dir(tmp_path / "b", uploads_per_project=4)
    c = make_data_dir(tmp_path / "c", uploads_per_project=4, seed=1)
    assert a.files == b.files
    assert all((a.media / r).read_bytes() == (b.media / r).read_bytes() for r in a.files)
    assert a.files != c.files


def test_make_data_dir_options(tmp_path):
    dd = make_data_dir(
        tmp_path / "plain", projects=1, uploads_per_project=2, avatars=0, exports=0,
        legacy_flat=0, odd_names=False, empty_files=False,
    )  # fmt: skip
    assert len(dd.files) == 2 and all(s > 0 for s in dd.files.values())
    assert _walk(dd.media) == dd.files
    with pytest.raises(FileExistsError):
        make_data_dir(tmp_path / "plain")


def test_make_flat_tree(tmp_path):
    ft = make_flat_tree(tmp_path / "flat", 250, 10_000)
    assert len(ft.files) == 250 and ft.total_bytes() == 2_500_000
    assert _walk(tmp_path / "flat") == ft.files
    contents = {(ft.media / r).read_bytes() for r in list(ft.files)[:50]}
    assert len(contents) == 50
