"""`lsmigrate verify`: objects written by lsmigrate and by other tools, each checked the strongest way."""

from __future__ import annotations

import base64
import hashlib
import json

from boto3.s3.transfer import TransferConfig
from lsdata import make_data_dir
from s3util import run

MiB = 1024 * 1024


def _verify(data, bucket, *extra):
    result = run("verify", str(data.root), f"{bucket.url}/v", "--endpoint-url", bucket.endpoint_url, "--json", *extra)
    return result, json.loads(result.stdout)


def test_objects_from_another_tool_are_checked_by_etag_arithmetic(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=5, large_files=(20 * MiB,))
    client = s3_bucket.client()
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    for rel in data.files:  # as the AWS CLI would have written them: no md5chksum metadata
        client.upload_file(str(data.path(rel)), s3_bucket.name, f"v/{rel}", Config=config)
    result, doc = _verify(data, s3_bucket)
    assert result.exit_code == 0, result.output
    assert doc["bases"] == {"etag": len(data.files) - 1, "multipart-etag": 1}

    result, doc = _verify(data, s3_bucket, "--download")
    assert result.exit_code == 0 and doc["bases"] == {"download": len(data.files)}


def test_missing_different_and_extra(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=6, odd_names=False, empty_files=False)
    assert run("copy", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url).exit_code == 0
    rels = sorted(data.files)
    client = s3_bucket.client()
    client.delete_object(Bucket=s3_bucket.name, Key=f"v/{rels[0]}")
    client.put_object(Bucket=s3_bucket.name, Key=f"v/{rels[1]}", Body=b"\0" * data.files[rels[1]])
    client.put_object(Bucket=s3_bucket.name, Key="v/not-in-source.txt", Body=b"extra")
    result, doc = _verify(data, s3_bucket)
    assert result.exit_code == 3
    found = {(p["status"], p["path"]) for p in doc["problems"]}
    assert ("missing", rels[0]) in found and ("different", rels[1]) in found and ("extra", "not-in-source.txt") in found
    assert doc["counts"]["ok"] == len(rels) - 2


def test_a_check_that_breaks_is_an_error_for_that_file_never_a_gap(s3_env, s3_bucket, tmp_path, monkeypatch):
    """Every planned file ends in exactly one outcome: an exception inside one check is that file's error,
    and the report is not clean (cutover is gated on it)."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False, empty_files=False)
    assert run("copy", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url).exit_code == 0
    victim = sorted(data.files)[0]
    import lsmigrate.verify as verify_module

    real = verify_module.compare

    def breaks_once(local, *args, **kwargs):
        if local.rel == victim:
            raise RuntimeError("a bug in one check")
        return real(local, *args, **kwargs)

    monkeypatch.setattr(verify_module, "compare", breaks_once)
    result, doc = _verify(data, s3_bucket, "--state", str(tmp_path / "fresh.sqlite3"))  # no journal: every file checked
    assert result.exit_code == 3, result.output
    assert doc["clean"] is False and doc["planned"] == len(data.files) and doc["unaccounted"] == 0
    assert doc["counts"] == {"ok": len(data.files) - 1, "error": 1}
    assert {(p["status"], p["path"]) for p in doc["problems"]} == {("error", victim)}
    assert "a bug in one check" in doc["problems"][0]["detail"]


def test_chunk_size_zero_cannot_make_a_file_vanish_from_the_report(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=1, large_files=(6 * MiB,),
                         odd_names=False, empty_files=False)
    copied = run("copy", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url,
                 "--chunk-size", "5MiB", "--multipart-threshold", "5MiB")
    assert copied.exit_code == 0, copied.output
    result = run("verify", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url, "--json",
                 "--chunk-size", "0", "--state", str(tmp_path / "fresh.sqlite3"))
    # a usage error (exit 2) before anything is checked: no report that could leave a file out
    assert result.exit_code == 2 and result.stdout == "" and "--chunk-size" in result.stderr, result.output


def test_every_verified_file_names_its_basis(s3_env, s3_bucket, tmp_path):
    """After a copy: verified on the journal's word, by the basis recorded when the server answered; without
    the journal: by the server's ETag (plain or multipart arithmetic); never by our own md5chksum."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, large_files=(11 * MiB,),
                         odd_names=False, empty_files=False)
    copied = run("copy", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url, "--json",
                 "--chunk-size", "5MiB", "--multipart-threshold", "5MiB")
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout)["verified_by"] == {"etag": len(data.files) - 1, "multipart-etag": 1}
    result, doc = _verify(data, s3_bucket)
    assert result.exit_code == 0 and doc["recalled_from_journal"] == len(data.files)
    assert doc["bases"] == {"etag": len(data.files) - 1, "multipart-etag": 1}
    assert f"by {len(data.files) - 1} etag, 1 multipart-etag" in run("verify", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url",
                                                   s3_bucket.endpoint_url).stdout


def test_a_multipart_etag_no_part_size_explains_is_unchecked_and_md5chksum_never_verifies(s3_env, s3_bucket, tmp_path):
    """Written by another tool in 9 MiB parts (no size lsmigrate tries): the ETag proves nothing either way, and
    the md5chksum metadata the uploader wrote can show a difference but never a match."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=1, large_files=(20 * MiB,),
                         odd_names=False, empty_files=False)
    big = next(rel for rel, size in data.files.items() if size == 20 * MiB)
    client = s3_bucket.client()
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=9 * MiB)
    for rel in data.files:
        digest = base64.b64encode(hashlib.md5(data.path(rel).read_bytes()).digest()).decode()
        client.upload_file(str(data.path(rel)), s3_bucket.name, f"v/{rel}", Config=config,
                           ExtraArgs={"Metadata": {"md5chksum": digest}})
    result, doc = _verify(data, s3_bucket)
    assert result.exit_code == 3, result.output
    assert doc["bases"] == {"etag": len(data.files) - 1} and doc["counts"]["unchecked"] == 1
    assert doc["problems"] == [{"status": "unchecked", "path": big, "detail": doc["problems"][0]["detail"]}]
    assert "uploader wrote" in doc["problems"][0]["detail"]

    result, doc = _verify(data, s3_bucket, "--download")
    assert result.exit_code == 0 and doc["bases"] == {"download": len(data.files)}

    client.upload_file(str(data.path(big)), s3_bucket.name, f"v/{big}", Config=config,
                       ExtraArgs={"Metadata": {"md5chksum": base64.b64encode(b"\0" * 16).decode()}})
    result, doc = _verify(data, s3_bucket, "--state", str(tmp_path / "fresh.sqlite3"))
    assert result.exit_code == 3 and doc["counts"].get("different") == 1


def test_files_found_wanting_are_named_on_stderr_and_the_summary_on_stdout(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False, empty_files=False)
    assert run("copy", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url).exit_code == 0
    gone = sorted(data.files)[0]
    s3_bucket.client().delete_object(Bucket=s3_bucket.name, Key=f"v/{gone}")
    result = run("verify", str(data.root), f"{s3_bucket.url}/v", "--endpoint-url", s3_bucket.endpoint_url)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [f"missing: {gone} (missing at destination)"], result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("verified "), result.stdout
