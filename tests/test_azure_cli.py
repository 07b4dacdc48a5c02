"""Azure through the command line: local-to-azure, kill and resume, and sync between three clouds."""

from __future__ import annotations

import hashlib
import json
import uuid

import gcsfs
import pytest
from azure.storage.blob import BlobServiceClient
from lsdata import make_data_dir
from s3util import all_objects, journaled_parts, kill_when, run, spawn

from lsmigrate.stores.azure.store import AzureStore

MiB = 1024 * 1024
ACCOUNT = "devstoreaccount1"


@pytest.fixture
def az(s3_env, azurite, monkeypatch):
    """A fresh container on Azurite; credentials in the provider's standard variable."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"c{uuid.uuid4().hex[:12]}"
    service.create_container(name)
    return service.get_container_client(name)


def _blobs(container, prefix=""):
    return {blob.name: blob for blob in container.list_blobs(name_starts_with=prefix)}


def test_local_to_azure_lands_byte_identical_then_switches(az, azurite, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=20, large_files=(11 * MiB,))
    env_list = tmp_path / "env.list"
    env_list.write_text("# LS\nSTORAGE_TYPE=azure\n"
                        f"STORAGE_AZURE_CONTAINER_NAME={az.container_name}\nSTORAGE_AZURE_FOLDER=media\n"
                        f"STORAGE_AZURE_ACCOUNT_NAME={ACCOUNT}\n")
    args = ("local-to-azure", "--data-dir", str(data.root), "--env-file", str(env_list), "--chunk-size", "4MiB",
            "--multipart-threshold", "5MiB", "--json", "--yes")
    result = run(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["copy"]["copied"] == len(data.files) and doc["verify"]["clean"]
    blobs = _blobs(az, "media/")
    assert set(blobs) == {f"media/{rel}" for rel in data.files}
    for rel in data.files:
        local = data.path(rel).read_bytes()
        assert az.download_blob(f"media/{rel}").readall() == local, rel
        assert bytes(blobs[f"media/{rel}"].content_settings.content_md5 or b"") == hashlib.md5(local).digest()
    again = json.loads(run(*args).stdout)
    assert again["copy"]["copied"] == 0 and again["copy"]["skipped"] == len(data.files)


def test_wrong_key_and_missing_container(az, azurite, tmp_path, monkeypatch):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2)
    missing = run("copy", str(data.root), "az://no-such-container/x")
    assert missing.exit_code == 2 and "no-such-container does not exist" in missing.stderr
    assert missing.stderr.count("\n") == 1
    bad_key = "QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5=="
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("STORAGE_AZURE_ACCOUNT_NAME", ACCOUNT)
    monkeypatch.setenv("STORAGE_AZURE_ACCOUNT_KEY", bad_key)
    wrong = run("copy", str(data.root), f"az://{az.container_name}/x", "--endpoint-url", azurite.blob_endpoint)
    assert wrong.exit_code == 2 and "credentials were rejected" in wrong.stderr
    assert bad_key not in wrong.output


@pytest.mark.slow
def test_azure_resumes_after_sigkill(az, azurite, tmp_path, monkeypatch):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False, large_files=(64 * MiB,))
    big = next(rel for rel, size in data.files.items() if size == 64 * MiB)
    state = tmp_path / "journal.sqlite3"
    args = ("copy", str(data.root), f"az://{az.container_name}/m", "--transfers", "1", "--chunk-size", "4MiB",
            "--multipart-threshold", "5MiB", "--state", str(state))
    proc = spawn(*args, "--quiet", "--bwlimit", "16MiB")
    journaled = kill_when(proc, lambda: journaled_parts(state)[0] >= 4 and journaled_parts(state)[0]) or 0
    assert journaled >= 4, "the copy should have been killed inside the large file"
    staged = az.get_blob_client(f"m/{big}").get_block_list("uncommitted")[1]
    assert len(staged) >= journaled  # the server holds the blocks the journal says were sent

    sent: list[int] = []
    original = AzureStore.put_part

    def counting(self, rel, session, number, data_, md5, **kw):
        sent.append(number)
        return original(self, rel, session, number, data_, md5, **kw)

    monkeypatch.setattr(AzureStore, "put_part", counting)
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    assert len(sent) <= 16 - journaled and min(sent) > 1, f"blocks already staged were sent again: {sorted(sent)}"
    assert az.download_blob(f"m/{big}").readall() == data.path(big).read_bytes()


def test_sync_gcs_to_azure_and_azure_to_s3(az, fake_gcs, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint_url)
    gcs = gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="t", skip_instance_cache=True)
    bucket = f"g{uuid.uuid4().hex[:10]}"
    gcs.mkdir(bucket)
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=10, large_files=(10 * MiB,))
    sizes = ("--chunk-size", "4MiB", "--multipart-threshold", "5MiB", "--json")
    s3_sizes = ("--chunk-size", "5MiB", "--multipart-threshold", "5MiB", "--json")  # S3 refuses parts under 5 MiB
    assert run("copy", str(data.root), f"gs://{bucket}/m", *sizes).exit_code == 0

    to_azure = run("sync", f"gs://{bucket}/m", f"az://{az.container_name}/r", *sizes)
    assert to_azure.exit_code == 0, to_azure.output
    assert json.loads(to_azure.stdout)["copied"] == len(data.files)
    to_s3 = run("sync", f"az://{az.container_name}/r", f"{s3_bucket.url}/r", "--dst-endpoint-url",
                s3_bucket.endpoint_url, *s3_sizes)
    assert to_s3.exit_code == 0, to_s3.output
    client = s3_bucket.client()
    assert len(all_objects(client, s3_bucket.name, "r/")) == len(data.files)
    for rel in data.files:
        expected = data.path(rel).read_bytes()
        assert az.download_blob(f"r/{rel}").readall() == expected, rel
        assert client.get_object(Bucket=s3_bucket.name, Key=f"r/{rel}")["Body"].read() == expected, rel
    for args in ((f"gs://{bucket}/m", f"az://{az.container_name}/r", *sizes),
                 (f"az://{az.container_name}/r", f"{s3_bucket.url}/r", "--dst-endpoint-url", s3_bucket.endpoint_url,
                  *s3_sizes)):
        again = run("sync", *args)
        assert again.exit_code == 0 and json.loads(again.stdout)["copied"] == 0


def test_each_azure_blob_names_its_basis_and_a_commit_md5_is_never_taken_for_the_services(az, tmp_path):
    """Put Blob: the service computes the blob's MD5 (server-md5). A block list: each block's Content-MD5 was
    checked at Put Block (content-md5), and the whole-blob MD5 stored at the commit is ours: without the
    journal such a blob is unchecked unless read back."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, large_files=(6 * MiB,),
                         odd_names=False, empty_files=False)
    url = f"az://{az.container_name}/b"
    copied = run("copy", str(data.root), url, "--chunk-size", "2MiB", "--multipart-threshold", "5MiB", "--json")
    assert copied.exit_code == 0, copied.output
    small = len(data.files) - 1
    assert json.loads(copied.stdout)["verified_by"] == {"content-md5": 1, "server-md5": small}
    verified = run("verify", str(data.root), url, "--json")
    assert json.loads(verified.stdout)["bases"] == {"content-md5": 1, "server-md5": small}

    fresh = run("verify", str(data.root), url, "--json", "--state", str(tmp_path / "none.sqlite3"))
    doc = json.loads(fresh.stdout)
    assert fresh.exit_code == 3 and doc["bases"] == {"server-md5": small} and doc["counts"]["unchecked"] == 1
    big = next(rel for rel, size in data.files.items() if size == 6 * MiB)
    assert [(p["status"], p["path"]) for p in doc["problems"]] == [("unchecked", big)]
    downloaded = run("verify", str(data.root), url, "--json", "--download", "--state", str(tmp_path / "none.sqlite3"))
    assert downloaded.exit_code == 0 and json.loads(downloaded.stdout)["bases"] == {"download": len(data.files)}
