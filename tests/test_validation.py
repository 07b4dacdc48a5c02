"""Input validation: destination folders, part sizes per provider, endpoints. Bad input is one line on
stderr and exit 2 before any request; `plan` reports the part sizes a copy really uses."""

from __future__ import annotations

import json
import uuid

import pytest
from s3util import run

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.fixture
def src(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    return tree


def _refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.output
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("folder", ["../etc", "a/../../etc", "./x", "a/.", "a//b", "x?y#z", "x#z", "x?"])
def test_a_destination_folder_with_dot_segments_empty_segments_query_or_fragment_is_refused(
        s3_env, s3_bucket, src, folder):
    result = run("plan", str(src), f"{s3_bucket.url}/{folder}", "--endpoint-url", s3_bucket.endpoint_url)
    _refused(result, f"{s3_bucket.url}/{folder}")


def test_a_folder_from_the_deployment_file_is_checked_too(s3_env, s3_bucket, src, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(f"STORAGE_TYPE=s3\nSTORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=media/../x\n"
                        f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n")
    _refused(run("plan", str(src), "--env-file", str(env_list)), f"STORAGE_AWS_FOLDER in {env_list}", "'media/../x'")
    env_list.write_text(env_list.read_text().replace("media/../x", "/media/prod/"))  # outer slashes are fine
    planned = run("plan", str(src), "--env-file", str(env_list), "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["destination"].startswith(f"{s3_bucket.url}/media/prod ")


@pytest.mark.parametrize("endpoint", ["http://[::1", "not a url", "127.0.0.1:9000", "http://", "ftp://x",
                                      "http://127.0.0.1:99999", "http://u:secret@[::1"])
def test_a_malformed_endpoint_is_a_usage_error(s3_env, src, endpoint):
    result = run("plan", str(src), "s3://some-bucket/f", "--endpoint-url", endpoint, "--retries", "0")
    _refused(result, "is not an http(s) URL")
    assert "secret" not in result.stderr


@pytest.mark.parametrize("size", ["0", "0MiB"])
def test_chunk_size_zero_is_a_usage_error(s3_env, s3_bucket, src, size):
    result = run("copy", str(src), f"{s3_bucket.url}/z", "--endpoint-url", s3_bucket.endpoint_url, "--chunk-size", size)
    assert result.exit_code == 2 and "--chunk-size" in result.stderr and "too small" in result.stderr, result.output


@pytest.mark.parametrize(("option", "size", "message"), [
    ("--chunk-size", "4MiB", "--chunk-size 4 MiB is outside the part sizes S3 takes: pass one from 5 MiB to 5 GiB"),
    ("--chunk-size", "6GiB", "--chunk-size 6 GiB is outside the part sizes S3 takes: pass one from 5 MiB to 5 GiB"),
    ("--multipart-threshold", "6GiB",
     "--multipart-threshold 6 GiB is above 5 GiB, the largest object S3 takes in one request"),
])
def test_s3_part_sizes_outside_its_limits_are_refused_before_anything_is_sent(s3_env, s3_bucket, src, option, size,
                                                                               message):
    for command in ("plan", "copy"):
        result = run(command, str(src), f"{s3_bucket.url}/p", "--endpoint-url", s3_bucket.endpoint_url, option, size)
        _refused(result)
        assert result.stderr == f"lsmigrate: error: {message}\n"
    assert "Contents" not in s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name)


def test_plan_reports_the_part_sizes_really_used_and_the_files_that_need_larger_parts(s3_env, s3_bucket, src):
    with open(src / "huge.bin", "wb") as handle:  # sparse: plan only looks at the size
        handle.truncate(60 * GiB)
    result = run("plan", str(src), f"{s3_bucket.url}/h", "--endpoint-url", s3_bucket.endpoint_url,
                 "--chunk-size", "5MiB", "--json")
    assert result.exit_code == 0, result.output
    multipart = json.loads(result.stdout)["multipart"]
    assert multipart["chunk_size"] == 5 * MiB and multipart["note"] is None
    # 60 GiB in 5 MiB parts would be 12,288 parts: S3 takes 10,000, so 7 MiB parts (whole MiB), 8,778 of them
    assert multipart["larger_parts"] == [{"path": "huge.bin", "bytes": 60 * GiB, "part_size": 7 * MiB,
                                          "parts": 8778, "max_parts": 10_000}]
    text = run("plan", str(src), f"{s3_bucket.url}/h", "--endpoint-url", s3_bucket.endpoint_url,
               "--chunk-size", "5MiB").stdout
    assert "in 5.0 MiB parts)" in text
    assert "huge.bin: in 8,778 parts of 7.0 MiB (more than 10,000 at the chunk size)" in text


def test_gcs_chunks_are_raised_to_the_floor_and_rounded_up_to_the_grid_and_plan_says_so(fake_gcs, monkeypatch, src):
    import gcsfs

    name = f"v{uuid.uuid4().hex[:12]}"
    gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="test",
                        skip_instance_cache=True).mkdir(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(src.parent / "state"))
    args = ("plan", str(src), f"gs://{name}/g", "--endpoint-url", fake_gcs.endpoint_url)
    rule = "GCS parts are sent at least 8 MiB, in multiples of 256 KiB"
    for given, used, note in (("4MiB", 8 * MiB, f"--chunk-size 4 MiB is used as 8 MiB: {rule}"),
                              ("9000000", 35 * 256 * 1024, f"--chunk-size 9,000,000 bytes is used as 8960 KiB: {rule}"),
                              ("16MiB", 16 * MiB, None)):
        result = run(*args, "--chunk-size", given, "--json")
        assert result.exit_code == 0, result.output
        multipart = json.loads(result.stdout)["multipart"]
        assert (multipart["chunk_size"], multipart["note"]) == (used, note)
    text = run(*args, "--chunk-size", "9000000").stdout
    assert f"in 8.8 MiB parts)\nnote: --chunk-size 9,000,000 bytes is used as 8960 KiB: {rule}\n" in text


def test_azure_blocks_above_the_limit_are_refused(azurite, monkeypatch, src):
    from azure.storage.blob import BlobServiceClient

    name = f"v{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("XDG_STATE_HOME", str(src.parent / "state"))
    result = run("copy", str(src), f"az://{name}/b", "--chunk-size", "4001MiB")
    _refused(result)
    assert result.stderr == ("lsmigrate: error: --chunk-size 4001 MiB is outside the part sizes Azure takes: pass one "
                             "at most 4000 MiB\n")
    small = run("plan", str(src), f"az://{name}/b", "--chunk-size", "256KiB", "--json")  # below the store's floor
    assert small.exit_code == 0, small.output
    assert json.loads(small.stdout)["multipart"]["note"] == ("--chunk-size 256 KiB is used as 1 MiB: Azure parts are "
                                                            "sent at least 1 MiB")
