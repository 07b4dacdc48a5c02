"""What a run says about itself: resumed uploads, bytes sent against bytes verified, one `-v` line per file,
and the endpoint really used (AWS_ENDPOINT_URL and the other providers' equivalents), against moto."""

from __future__ import annotations

import json
import re

from lsdata import make_data_dir
from s3util import all_objects, run

from lsmigrate.stores.base import StoreError
from lsmigrate.stores.s3.store import S3Store
from lsmigrate.target import Target

MiB = 1024 * 1024
SMALL_PARTS = ("--chunk-size", "5MiB", "--multipart-threshold", "8MiB", "--retries", "0")
LINE = re.compile(r"^(copied|skipped|identical|failed|problem) +(\S+) +(.+)$")


def _copy(data, bucket, *extra, env=None):
    return run("copy", str(data.root), f"{bucket.url}/media", "--endpoint-url", bucket.endpoint_url, *extra, env=env)


def test_a_rerun_says_what_it_resumed_and_sent_apart_from_what_it_verified(s3_env, s3_bucket, tmp_path, monkeypatch):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, odd_names=False, large_files=(24 * MiB,))
    large = next(rel for rel, size in data.files.items() if size == 24 * MiB)
    small_bytes = sum(size for rel, size in data.files.items() if rel != large)
    put_part = S3Store.put_part

    def first_two_parts_only(self, rel, session, number, *args, **kwargs):
        if number > 2:
            raise StoreError(f"{rel} part {number}: refused by the test")
        return put_part(self, rel, session, number, *args, **kwargs)

    monkeypatch.setattr(S3Store, "put_part", first_two_parts_only)
    first = _copy(data, s3_bucket, *SMALL_PARTS, "--json")
    assert first.exit_code == 1, first.output
    assert json.loads(first.stdout)["resumed_uploads"] == 0
    monkeypatch.setattr(S3Store, "put_part", put_part)

    again = _copy(data, s3_bucket, *SMALL_PARTS, "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    # parts of 5 MiB: the first two (10 MiB) were at the server already; 14 MiB went over the wire
    assert (doc["copied"], doc["skipped"]) == (1, len(data.files) - 1)
    assert (doc["resumed_uploads"], doc["resumed_bytes"]) == (1, 10 * MiB)
    assert (doc["copied_bytes"], doc["sent_bytes"]) == (24 * MiB, 14 * MiB)
    assert doc["verified_bytes"] == 24 * MiB + small_bytes

    # The text summary, for a run that resumes: the same numbers in words.
    monkeypatch.setattr(S3Store, "put_part", first_two_parts_only)
    data.path(large).write_bytes(b"x" * (24 * MiB))  # a new version: a new upload, cut off after two parts again
    assert _copy(data, s3_bucket, *SMALL_PARTS).exit_code == 1
    monkeypatch.setattr(S3Store, "put_part", put_part)
    text = _copy(data, s3_bucket, *SMALL_PARTS)
    assert text.exit_code == 0, text.output
    verified = f"{(24 * MiB + small_bytes) / MiB:.1f} MiB"
    assert (f"sent 14.0 MiB, verified {verified} in {len(data.files):,} files "
            "(1 upload resumed, 10.0 MiB already there)") in text.stdout.splitlines(), text.stdout


def test_verbose_logs_one_line_per_file_with_outcome_and_basis(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=5, odd_names=False, large_files=(9 * MiB,))
    odd = data.root / "media" / "upload" / "1" / "odd\x7fname.txt"
    odd.write_bytes(b"odd")
    names = {*data.files, "upload/1/odd\\x7fname.txt"}  # as printed: the control character escaped

    def lines(result):
        found = [LINE.match(line) for line in result.stderr.splitlines()]
        assert all(found), result.stderr
        return {match[3]: (match[1], match[2]) for match in found}

    first = _copy(data, s3_bucket, "--chunk-size", "5MiB", "--multipart-threshold", "8MiB", "-v")
    assert first.exit_code == 0, first.output
    logged = lines(first)
    assert len(first.stderr.splitlines()) == len(names) and set(logged) == names
    assert {outcome for outcome, _ in logged.values()} == {"copied"}
    large = next(rel for rel, size in data.files.items() if size == 9 * MiB)
    assert logged[large][1] == "multipart-etag" and logged["upload/1/odd\\x7fname.txt"][1] == "etag"

    again = _copy(data, s3_bucket, "-v")
    assert again.exit_code == 0, again.output
    assert lines(again) == {rel: ("skipped", basis) for rel, (_, basis) in logged.items()}
    quiet = _copy(data, s3_bucket)
    assert quiet.exit_code == 0 and quiet.stderr == "", "without -v, nothing per file"


def test_sync_and_copy_name_the_endpoint_aws_endpoint_url_points_at(s3_env, s3_bucket, moto_server, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    endpoint = moto_server.endpoint_url.rstrip("/")

    synced = run("sync", str(data.root), f"{s3_bucket.url}/media", "-v")
    assert synced.exit_code == 0, synced.output
    assert synced.stdout.splitlines()[0] == f"{data.root / 'media'} -> {s3_bucket.url}/media (endpoint {endpoint})"
    logged = [LINE.match(line) for line in synced.stderr.splitlines()]  # -v in sync too, beside --json-log
    assert all(logged) and {match[3] for match in logged} == set(data.files), synced.stderr

    replica = run("sync", f"{s3_bucket.url}/media", f"{s3_bucket.url}/replica", "--json")
    assert replica.exit_code == 0, replica.output
    doc = json.loads(replica.stdout)
    assert doc["source"] == f"{s3_bucket.url}/media at {endpoint}"
    assert doc["destination"] == f"{s3_bucket.url}/replica (endpoint {endpoint})"
    assert len(all_objects(s3_bucket.client(), s3_bucket.name, "replica/")) == len(data.files)

    copied = run("copy", str(data.root), f"{s3_bucket.url}/media", "--json")
    assert json.loads(copied.stdout)["destination"] == f"{s3_bucket.url}/media (endpoint {endpoint})"


def test_the_endpoint_each_provider_really_uses(monkeypatch):
    from lsmigrate.jobs import describe, destination_label

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    s3 = Target("s3", "bkt", "media")
    assert destination_label(s3) == "s3://bkt/media at default endpoint" and describe(s3) == "s3://bkt/media"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000")
    assert destination_label(s3) == "s3://bkt/media at http://minio:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://user:pw@ceph:7480/")  # the one lsmigrate hands to botocore
    assert describe(s3) == "s3://bkt/media (endpoint http://***@ceph:7480)"

    gcs = Target("gcs", "bkt")
    assert destination_label(gcs) == "gs://bkt at default endpoint"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "localhost:4443")  # gcsfs takes a bare host as http
    assert destination_label(gcs) == "gs://bkt at http://localhost:4443"

    key = "a2V5"  # never printed: only the blob endpoint is taken from a connection string
    azurite = Target("azure", "media", connection_string=f"DefaultEndpointsProtocol=http;AccountName=dev;"
                     f"AccountKey={key};BlobEndpoint=http://127.0.0.1:10000/dev;")
    assert destination_label(azurite) == "az://media at http://127.0.0.1:10000/dev"
    suffix = Target("azure", "media", connection_string=f"AccountName=acct;AccountKey={key};"
                    "EndpointSuffix=core.chinacloudapi.cn")
    assert describe(suffix) == "az://media (endpoint https://acct.blob.core.chinacloudapi.cn)"
    assert destination_label(Target("azure", "media", connection_string="UseDevelopmentStorage=true")) == \
        "az://media at http://127.0.0.1:10000/devstoreaccount1"
    assert destination_label(Target("azure", "media", account_name="acct", account_key=key)) == \
        "az://media at https://acct.blob.core.windows.net"
