"""`lsmigrate copy` / `local-to-s3` against a real moto server over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import time

import pytest
from lsdata import make_data_dir
from s3util import Recorder, all_objects, kill_when, read_object, run, spawn, uploads_in

MiB = 1024 * 1024
SMALL_PARTS = ("--chunk-size", "5MiB", "--multipart-threshold", "6MiB")


@pytest.fixture
def data_dir(tmp_path):
    return make_data_dir(tmp_path / "ls", projects=3, uploads_per_project=40, large_files=(13 * MiB, 11 * MiB))


def _copy(data_dir, bucket, *extra):
    return run("copy", str(data_dir.root), f"{bucket.url}/lsdata", "--endpoint-url", bucket.endpoint_url,
               "--json", *extra)


def test_copy_lands_every_file_byte_identical_with_md5_metadata(s3_env, s3_bucket, data_dir):
    result = _copy(data_dir, s3_bucket, *SMALL_PARTS)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["copied"] == len(data_dir.files) and doc["failed"] == 0

    client = s3_bucket.client()
    objects = all_objects(client, s3_bucket.name, "lsdata/")
    assert set(objects) == {f"lsdata/{rel}" for rel in data_dir.files}
    assert "label_studio.sqlite3" not in {key.rsplit("/", 1)[-1] for key in objects}
    for rel in data_dir.files:
        body = read_object(client, s3_bucket.name, f"lsdata/{rel}")
        local = data_dir.path(rel).read_bytes()
        assert body == local, rel
        head = client.head_object(Bucket=s3_bucket.name, Key=f"lsdata/{rel}")
        assert head["Metadata"]["md5chksum"] == base64.b64encode(hashlib.md5(local).digest()).decode()
    multipart = [key for key, item in objects.items() if "-" in item["ETag"].strip('"')]
    assert len(multipart) == 2  # the two large files went in parts
    sizes = {rel: size for rel, size in data_dir.files.items()}
    assert 0 in sizes.values()  # the generator did include an empty file


def test_names_are_kept_exactly_and_content_types_guessed(s3_env, s3_bucket, data_dir):
    assert _copy(data_dir, s3_bucket).exit_code == 0
    keys = set(all_objects(s3_bucket.client(), s3_bucket.name))
    odd = [rel for rel in data_dir.files if any(c in rel for c in " #?%+é日")]
    assert odd, "the generator should produce odd names"
    for rel in odd:
        assert f"lsdata/{rel}" in keys
    jpg = next(rel for rel in data_dir.files if rel.endswith(".jpg"))
    head = s3_bucket.client().head_object(Bucket=s3_bucket.name, Key=f"lsdata/{jpg}")
    assert head["ContentType"] == "image/jpeg"


def test_second_run_sends_nothing_and_exits_zero(s3_env, s3_bucket, data_dir, moto_server):
    assert _copy(data_dir, s3_bucket, *SMALL_PARTS).exit_code == 0
    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()
    again = _copy(data_dir, s3_bucket, *SMALL_PARTS)
    requests = recorder.stop()
    assert again.exit_code == 0
    doc = json.loads(again.stdout)
    assert doc["copied"] == 0 and doc["skipped"] == len(data_dir.files)
    assert uploads_in(requests) == (0, 0)
    object_heads = [r for r in requests if r["method"] == "HEAD" and "/lsdata/" in r["url"]]
    assert not object_heads, "no per-object HEADs when nothing changed"


def test_without_journal_existing_objects_are_compared_not_resent(s3_env, s3_bucket, data_dir, moto_server, tmp_path):
    assert _copy(data_dir, s3_bucket, *SMALL_PARTS, "--state", str(tmp_path / "a.sqlite3")).exit_code == 0
    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()
    again = _copy(data_dir, s3_bucket, *SMALL_PARTS, "--state", str(tmp_path / "fresh.sqlite3"))
    requests = recorder.stop()
    doc = json.loads(again.stdout)
    assert again.exit_code == 0 and doc["copied"] == 0 and doc["identical"] == len(data_dir.files)
    assert uploads_in(requests) == (0, 0)


def test_no_traverse_trusts_the_journal_and_lists_nothing(s3_env, s3_bucket, data_dir, moto_server):
    assert _copy(data_dir, s3_bucket, *SMALL_PARTS).exit_code == 0
    changed = next(rel for rel, size in data_dir.files.items() if 10 < size < MiB)
    data_dir.path(changed).write_bytes(b"changed while Label Studio was live")
    added = data_dir.root / "media" / "upload" / "1" / "added after the first pass.png"
    added.write_bytes(b"new file")
    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()
    last = _copy(data_dir, s3_bucket, *SMALL_PARTS, "--no-traverse")
    requests = recorder.stop()
    doc = json.loads(last.stdout)
    assert last.exit_code == 0 and doc["copied"] == 2 and doc["skipped"] == len(data_dir.files) - 1
    assert not [r for r in requests if r["method"] == "GET" and "list-type" in r["url"]], "the destination was listed"
    assert uploads_in(requests) == (2, 0)
    client = s3_bucket.client()
    assert read_object(client, s3_bucket.name, f"lsdata/{changed}") == b"changed while Label Studio was live"
    assert read_object(client, s3_bucket.name, "lsdata/upload/1/added after the first pass.png") == b"new file"


def test_changed_file_is_copied_again(s3_env, s3_bucket, data_dir):
    assert _copy(data_dir, s3_bucket).exit_code == 0
    rel = next(rel for rel, size in data_dir.files.items() if size > 10)
    data_dir.path(rel).write_bytes(b"changed content")
    doc = json.loads(_copy(data_dir, s3_bucket).stdout)
    assert doc["copied"] == 1
    assert read_object(s3_bucket.client(), s3_bucket.name, f"lsdata/{rel}") == b"changed content"


def test_kill_during_multipart_then_rerun_resumes(s3_env, s3_bucket, tmp_path, moto_server):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=15, large_files=(80 * MiB,))
    big = next(rel for rel, size in data.files.items() if size == 80 * MiB)
    args = ("copy", str(data.root), f"{s3_bucket.url}/lsdata", "--endpoint-url", s3_bucket.endpoint_url,
            "--transfers", "1", "--chunk-size", "5MiB", "--multipart-threshold", "6MiB", "--quiet")
    client = s3_bucket.client()
    def parts_on_server() -> int:
        uploads = client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])
        if not uploads:
            return 0
        listed = client.list_parts(Bucket=s3_bucket.name, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])
        count = len(listed.get("Parts", []))
        return count if count >= 4 else 0

    parts_before = kill_when(spawn(*args), parts_on_server, every=0.05) or 0
    assert parts_before >= 4, "the copy should have been killed in the middle of the large file"
    copied_before = set(all_objects(client, s3_bucket.name))
    assert copied_before, "small files come first in key order, some must be done"

    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()
    again = run(*args[:-1], "--json")
    requests = recorder.stop()
    assert again.exit_code == 0, again.output
    puts, parts = uploads_in(requests)
    total_parts = 16
    # The last part the server stored may not have been journaled yet at the kill (a window of a few ms
    # between the server's answer and the journal write): that one part may honestly be sent again.
    assert parts <= total_parts - parts_before + 1, "parts the server already had must not be sent again"
    assert parts >= 1
    sent_keys = {r["url"].split("?")[0] for r in requests if r["method"] == "PUT" and "partNumber" not in r["url"]}
    resent = {k for k in copied_before if any(u.endswith(k.split("/")[-1].replace(" ", "%20")) for u in sent_keys)}
    assert not resent, f"completed files were sent again: {resent}"
    assert puts == len(data.files) - len(copied_before) - (0 if f"lsdata/{big}" in copied_before else 1)
    body = read_object(client, s3_bucket.name, f"lsdata/{big}")
    assert hashlib.md5(body).digest() == hashlib.md5(data.path(big).read_bytes()).digest()
    assert client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_clean_up_aborts_only_the_uploads_the_journal_recorded(s3_env, s3_bucket, tmp_path):
    """Label Studio itself, or a cron sync, may have a multipart upload open under the same folder, even for a
    key this run verifies: only the upload IDs lsmigrate's journal recorded are its own to abort."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, large_files=(7 * MiB,),
                         odd_names=False, empty_files=False)
    big = next(rel for rel, size in data.files.items() if size == 7 * MiB)
    args = ("copy", str(data.root), f"{s3_bucket.url}/lsdata", "--endpoint-url", s3_bucket.endpoint_url, "--quiet",
            "--chunk-size", "5MiB", "--multipart-threshold", "6MiB", "--state", str(tmp_path / "j.sqlite3"))
    client = s3_bucket.client()
    small = next(rel for rel, size in data.files.items() if size < MiB)
    theirs = {client.create_multipart_upload(Bucket=s3_bucket.name, Key=f"lsdata/{rel}")["UploadId"]
              for rel in (small, big, "upload/1/label-studio-writing.png")}
    # Ours, left by an interrupted run: a session the journal holds for a file since deleted.
    doomed = data.path(big).with_name("gone.bin")
    doomed.write_bytes(os.urandom(7 * MiB))
    gone = str(doomed.relative_to(data.root / "media"))
    ours = client.create_multipart_upload(Bucket=s3_bucket.name, Key=f"lsdata/{gone}")["UploadId"]
    from lsmigrate.journal import Journal

    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.start_upload(gone, 7 * MiB, 1, "00" * 16, ours, 5 * MiB)
    doomed.unlink()

    result = run(*args)
    assert result.exit_code == 0, result.output
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])}
    assert left == theirs, "another writer's uploads are left alone; the journal's own abandoned one is aborted"


def test_local_to_s3_reads_target_from_env_file(s3_env, s3_bucket, data_dir, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(
        "# Label Studio\nSTORAGE_TYPE=s3\n"
        f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=media-folder\n"
        f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n"
        "STORAGE_AWS_ACCESS_KEY_ID=testing\nSTORAGE_AWS_SECRET_ACCESS_KEY=testing\n"
    )
    result = run("local-to-s3", "--data-dir", str(data_dir.root), "--env-file", str(env_list), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verify"]["clean"] and doc["verify"]["counts"]["ok"] == len(data_dir.files)
    assert len(all_objects(s3_bucket.client(), s3_bucket.name, "media-folder/")) == len(data_dir.files)


def test_object_parameters_are_applied(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    env = {"STORAGE_AWS_OBJECT_PARAMETERS": json.dumps({"CacheControl": "max-age=86400"})}
    result = run("copy", str(data.root), f"{s3_bucket.url}/p", "--endpoint-url", s3_bucket.endpoint_url, env=env)
    assert result.exit_code == 0, result.output
    key = next(iter(all_objects(s3_bucket.client(), s3_bucket.name)))
    assert s3_bucket.client().head_object(Bucket=s3_bucket.name, Key=key)["CacheControl"] == "max-age=86400"


# bad input: one line, the DESIGN.md exit code
def test_missing_bucket_exits_2_with_one_line(s3_env, moto_server, data_dir):
    result = run("copy", str(data_dir.root), "s3://no-such-bucket-here/x", "--endpoint-url", moto_server.endpoint_url)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no-such-bucket-here does not exist" in result.stderr


def test_wrong_credentials_exit_2_without_the_secret(s3_env, rclone_s3, tmp_path, monkeypatch):
    (rclone_s3.root_dir / "bkt").mkdir(exist_ok=True)
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-123")
    result = run("copy", str(data.root), "s3://bkt/x", "--endpoint-url", rclone_s3.endpoint_url)
    assert result.exit_code == 2, result.output
    assert "credentials were rejected" in result.stderr and result.stderr.count("\n") == 1
    assert "wrong-secret-value-123" not in result.output


def test_unreadable_file_is_reported_and_the_rest_copied(s3_env, s3_bucket, data_dir, monkeypatch):
    rel = next(rel for rel, size in data_dir.files.items() if size)
    data_dir.path(rel).chmod(0)
    if os.geteuid() == 0:  # root reads every file: make opening this one fail as it would for a user
        real_open, target = os.open, str(data_dir.path(rel))

        def refusing_open(path, flags, *args, **kwargs):
            if str(path) == target:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    result = _copy(data_dir, s3_bucket)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["failed"] == 1 and doc["copied"] == len(data_dir.files) - 1
    assert doc["failures"][0]["path"] == rel and "Permission denied" in doc["failures"][0]["reason"]


def test_symlinks_outside_the_tree_are_never_followed(s3_env, s3_bucket, data_dir, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("not for the bucket")
    (data_dir.media / "upload" / "link.txt").symlink_to(secret)
    (data_dir.media / "upload" / "broken.txt").symlink_to(data_dir.media / "nowhere")
    result = _copy(data_dir, s3_bucket)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    reasons = {item["path"]: item["reason"] for item in doc["failures"]}
    assert "outside the source tree" in reasons["upload/link.txt"]
    assert "broken symlink" in reasons["upload/broken.txt"]
    keys = set(all_objects(s3_bucket.client(), s3_bucket.name))
    assert "lsdata/upload/link.txt" not in keys and doc["copied"] == len(data_dir.files)


def test_not_a_data_dir_is_a_clear_error(s3_env, tmp_path):
    (tmp_path / "random").mkdir()
    result = run("local-to-s3", "--data-dir", str(tmp_path / "random"), "--to", "s3://b-b-b/x")
    assert result.exit_code == 2
    assert "not a Label Studio data dir" in result.stderr


def test_no_request_waits_on_expect_100_continue(s3_env, s3_bucket, moto_server, tmp_path):
    """aiohttp waits for a 100 Continue without fallback: a server that never sends one stalls the part."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False, large_files=(12 * MiB,))
    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()  # one request at a time: moto's recorder interleaves concurrent large bodies
    assert _copy(data, s3_bucket, *SMALL_PARTS, "--transfers", "1").exit_code == 0
    requests = recorder.stop()
    assert uploads_in(requests)[1] >= 2
    assert not [r for r in requests if "expect" in {k.lower() for k in r["headers"]}]


def test_ctrl_c_exits_130_and_the_same_command_finishes(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=30, large_files=(20 * MiB,))
    args = ("copy", str(data.root), f"{s3_bucket.url}/int", "--endpoint-url", s3_bucket.endpoint_url,
            *SMALL_PARTS, "--bwlimit", "8MiB")
    proc = spawn(*args, "-q")
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except Exception:
        proc.kill()
        raise
    assert proc.returncode == 130, err.decode()
    assert "run the same command again to resume" in err.decode() and "Traceback" not in err.decode()
    again = run(*args[:-2], "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert doc["copied"] + doc["skipped"] + doc["identical"] == len(data.files) and doc["skipped"] > 0
