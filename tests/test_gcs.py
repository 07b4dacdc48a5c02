"""GCS: the same guarantees as S3, against fake-gcs-server (bulk) and gcp-storage-emulator (session resume)."""

from __future__ import annotations

import hashlib
import json

import gcsfs
import pytest
from lsdata import make_data_dir
from s3util import journaled_parts, kill_when, run, spawn

from lsmigrate.stores.gcs.store import GCSStore

MiB = 1024 * 1024


def _fs(server):
    return gcsfs.GCSFileSystem(endpoint_url=server.endpoint_url, token="anon", project="test",
                               skip_instance_cache=True)


@pytest.fixture
def gcs_bucket(fake_gcs, request):
    name = f"b{abs(hash(request.node.name)) % 10**10}"
    fs = _fs(fake_gcs)
    fs.mkdir(name)
    return name


def _objects(server, bucket, prefix):
    fs = _fs(server)
    return {path.split("/", 1)[1]: info for path, info in fs.find(f"{bucket}/{prefix}", detail=True).items()}


def test_copy_to_gcs_lands_byte_identical_with_md5(s3_env, fake_gcs, gcs_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=25, large_files=(19 * MiB,))
    args = ("copy", str(data.root), f"gs://{gcs_bucket}/media", "--endpoint-url", fake_gcs.endpoint_url,
            "--chunk-size", "8MiB", "--multipart-threshold", "9MiB", "--json")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["copied"] == len(data.files)
    fs = _fs(fake_gcs)
    objects = _objects(fake_gcs, gcs_bucket, "media")
    assert set(objects) == {f"media/{rel}" for rel in data.files}
    for rel in data.files:
        local = data.path(rel).read_bytes()
        assert fs.cat_file(f"{gcs_bucket}/media/{rel}") == local, rel
        import base64

        assert objects[f"media/{rel}"]["md5Hash"] == base64.b64encode(hashlib.md5(local).digest()).decode()
    again = json.loads(run(*args).stdout)
    assert again["copied"] == 0 and again["skipped"] == len(data.files)
    verified = run("verify", str(data.root), f"gs://{gcs_bucket}/media", "--endpoint-url", fake_gcs.endpoint_url,
                   "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["bases"] == {"server-md5": len(data.files)}


def test_gcs_missing_bucket_and_unusable_credentials(s3_env, fake_gcs, tmp_path, monkeypatch):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2)
    result = run("copy", str(data.root), "gs://no-such-gcs-bucket/x", "--endpoint-url", fake_gcs.endpoint_url)
    assert result.exit_code == 2 and "no-such-gcs-bucket does not exist" in result.stderr
    assert result.stderr.count("\n") == 1
    bad = tmp_path / "sa.json"
    bad.write_text('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nnot-a-key"}')
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(bad))
    result = run("copy", str(data.root), "gs://any-bucket/x", "--endpoint-url", fake_gcs.endpoint_url)
    assert result.exit_code == 2 and "GCS credentials cannot be used" in result.stderr
    assert "not-a-key" not in result.output


def _persisted(session: str, size: int) -> int:
    """Ask the emulator itself how many bytes a resumable session holds (GCS's documented status query)."""
    import urllib.request

    request = urllib.request.Request(session, method="PUT", data=b"", headers={"Content-Range": f"bytes */{size}"})
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as answer:
        if answer.code == 308:
            header = answer.headers.get("Range")
            return int(header.rsplit("-", 1)[1]) + 1 if header else 0
        raise
    return size


@pytest.mark.slow
def test_gcs_session_resumes_after_sigkill(s3_env, gcs_emulator, tmp_path, monkeypatch):
    fs = _fs(gcs_emulator)
    fs.mkdir("resume")
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False,
                         large_files=(48 * MiB,))
    big = next(rel for rel, size in data.files.items() if size == 48 * MiB)
    state = tmp_path / "journal.sqlite3"
    args = ("copy", str(data.root), "gs://resume/media", "--endpoint-url", gcs_emulator.endpoint_url,
            "--transfers", "1", "--chunk-size", "8MiB", "--multipart-threshold", "9MiB", "--state", str(state))
    def two_parts():
        parts, session = journaled_parts(state)
        return (parts, session) if parts >= 2 and session else None

    done_parts, session = kill_when(spawn(*args, "--quiet"), two_parts) or (0, None)
    assert done_parts >= 2 and session, "the copy should have been killed inside the large file"
    persisted = _persisted(session, 48 * MiB)
    assert persisted >= done_parts * 8 * MiB  # the server holds what the journal says was sent

    sent: list[int] = []
    original = GCSStore.put_part

    def counting(self, rel, session_uri, number, data_, md5, **kw):
        sent.append(len(data_))
        assert session_uri == session, "the re-run must continue the same session"
        return original(self, rel, session_uri, number, data_, md5, **kw)

    monkeypatch.setattr(GCSStore, "put_part", counting)
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    assert sum(sent) <= 48 * MiB - (persisted // (8 * MiB)) * 8 * MiB, "persisted chunks were sent again"
    assert fs.cat_file(f"resume/media/{big}") == data.path(big).read_bytes()
