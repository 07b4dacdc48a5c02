"""`lsmigrate verify`: objects written by lsmigrate and by other tools, each checked the strongest way."""

from __future__ import annotations

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
    assert doc["methods"] == {"md5": len(data.files) - 1, "multipart-etag": 1}

    result, doc = _verify(data, s3_bucket, "--download")
    assert result.exit_code == 0 and doc["methods"] == {"download": len(data.files)}


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
