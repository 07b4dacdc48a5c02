"""Buckets whose ETags are no MD5s: default SSE-KMS encryption and SSE-C (AWS documents both). No local
server imitates them, so tests/strictfront.py answers like one: opaque ETags everywhere lsmigrate can see one,
the encryption headers, and every Content-MD5 checked as S3 checks it (moto checks none).

What counts as verified there is what the server checked on each request (`content-md5`), recorded in the
journal at upload time; a later run without the journal can only say `unchecked` (or `--download`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from s3util import run
from strictfront import StrictFront

MiB = 1024 * 1024
FILES = {"upload/1/photo (1).jpg": 70_000, "upload/1/empty.txt": 0, "avatars/a b.png": 3_000,
         "upload/2/video.mp4": 12 * MiB, "export/project-1.json": 9 * MiB}
PARTS = ("--multipart-threshold", "5MiB", "--chunk-size", "5MiB")


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "media"
    for rel, size in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = hashlib.sha256(rel.encode()).digest()
        path.write_bytes((seed * (size // 32 + 1))[:size])
    return root


def _writes(front: StrictFront) -> list:
    return [s for s in front.requests if s.method in ("PUT", "POST", "DELETE")]


def _stored(s3_bucket, prefix: str) -> dict[str, bytes]:
    client = s3_bucket.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket.name, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix):]] = client.get_object(Bucket=s3_bucket.name, Key=item["Key"])["Body"].read()
    return found


def _json(result) -> dict:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["kms", "sse_c"])
def test_copy_rerun_verify_and_sync_on_an_encrypted_bucket(s3_env, s3_bucket, moto_server, tree, tmp_path, kind,
                                                           monkeypatch):
    if kind == "sse_c":  # Label Studio's own setting; every request on such objects must carry the key
        monkeypatch.setenv("STORAGE_AWS_OBJECT_PARAMETERS", json.dumps({
            "SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}))
    with StrictFront(moto_server.endpoint_url, sigv4=True, content_md5=True, **{kind: True}) as front:
        url, endpoint = f"{s3_bucket.url}/enc", ("--endpoint-url", front.endpoint_url)

        copied = run("copy", str(tree), url, *endpoint, *PARTS, "--json")
        assert copied.exit_code == 0, copied.output
        doc = _json(copied)
        assert doc["copied"] == len(FILES) and doc["verified_by"] == {"content-md5": len(FILES)}
        assert not front.rejected
        assert _stored(s3_bucket, "enc/") == {rel: (tree / rel).read_bytes() for rel in FILES}

        front.clear()
        again = run("copy", str(tree), url, *endpoint, *PARTS, "--json")
        assert again.exit_code == 0, again.output
        assert _json(again)["skipped"] == len(FILES) and _json(again)["verified_by"] == {"content-md5": len(FILES)}
        assert _writes(front) == [], "a re-run writes nothing"

        verified = run("verify", str(tree), url, *endpoint, "--json")
        assert verified.exit_code == 0, verified.output
        doc = _json(verified)
        assert doc["bases"] == {"content-md5": len(FILES)} and doc["recalled_from_journal"] == len(FILES)

        # Without the journal nothing the server computed can be compared: unchecked, never "different".
        fresh = run("verify", str(tree), url, *endpoint, "--json", "--state", str(tmp_path / "none.sqlite3"))
        doc = _json(fresh)
        assert fresh.exit_code == 3 and set(doc["counts"]) == {"unchecked"}, doc["counts"]
        downloaded = run("verify", str(tree), url, *endpoint, "--json", "--download",
                         "--state", str(tmp_path / "none.sqlite3"))
        assert downloaded.exit_code == 0 and _json(downloaded)["bases"] == {"download": len(FILES)}

        # sync local -> encrypted bucket, twice: the second run writes nothing.
        synced = run("sync", str(tree), f"{s3_bucket.url}/synced", "--dst-endpoint-url", front.endpoint_url,
                     *PARTS, "--json")
        assert synced.exit_code == 0, synced.output
        front.clear()
        synced = run("sync", str(tree), f"{s3_bucket.url}/synced", "--dst-endpoint-url", front.endpoint_url,
                     *PARTS, "--json")
        assert synced.exit_code == 0 and _json(synced)["copied"] == 0, synced.output
        assert _writes(front) == []


def test_sync_between_two_kms_buckets_twice_writes_nothing_the_second_time(s3_env, s3_bucket, moto_server, tree):
    """Both listings hold opaque ETags: lsmigrate must not take them for MD5s (the second run would copy all)."""
    other = f"kms-{uuid.uuid4().hex[:10]}"
    s3_bucket.client().create_bucket(Bucket=other)
    with StrictFront(moto_server.endpoint_url, sigv4=True, content_md5=True, kms=True) as front:
        endpoint = ("--endpoint-url", front.endpoint_url)
        assert run("copy", str(tree), f"{s3_bucket.url}/src", *endpoint, *PARTS).exit_code == 0
        args = ("sync", f"{s3_bucket.url}/src", f"s3://{other}/dst", "--src-endpoint-url", front.endpoint_url,
                "--dst-endpoint-url", front.endpoint_url, "--json")
        first = run(*args)
        assert first.exit_code == 0 and _json(first)["copied"] == len(FILES), first.output
        front.clear()
        second = run(*args)
        assert second.exit_code == 0 and _json(second)["copied"] == 0, second.output
        assert _writes(front) == []
    client = s3_bucket.client()
    for rel in FILES:
        body = client.get_object(Bucket=other, Key=f"dst/{rel}")["Body"].read()
        assert body == (tree / rel).read_bytes()
