"""What a trial operator found on the cutover path, each a way to switch to the wrong place or never repair:
the shell's S3 endpoint written into the switched file, an empty data dir refused, a failed verify making the
next --no-traverse pass send again, and --bwlimit holding for a file sent in one PUT."""

from __future__ import annotations

import json
import time

from lsdata import make_data_dir
from s3util import all_objects, run

MiB = 1024 * 1024


def _prepared(tmp_path, bucket, folder: str = "media", *, endpoint: bool = False) -> tuple:
    env_list = tmp_path / "env.list"
    text = f"STORAGE_AWS_BUCKET_NAME={bucket.name}\nSTORAGE_AWS_FOLDER={folder}\n"
    if endpoint:
        text += f"STORAGE_AWS_ENDPOINT_URL={bucket.endpoint_url}\n"
    env_list.write_text(text)
    return env_list, text


def test_the_shells_s3_endpoint_is_written_into_the_switched_file(s3_env, s3_bucket, tmp_path, monkeypatch):
    """The copy went to AWS_ENDPOINT_URL's server; Label Studio in its container never sees this shell, so the
    file must name that server, or Label Studio would look in AWS for files that are not there."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3, odd_names=False)
    env_list, text = _prepared(tmp_path, s3_bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes", "--json")
    assert result.exit_code == 0, result.output
    switched = env_list.read_text()
    assert f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n" in switched and "STORAGE_TYPE=s3\n" in switched


def test_a_live_file_is_not_repointed_to_the_shells_endpoint(s3_env, s3_bucket, tmp_path, monkeypatch):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=2, odd_names=False)
    env_list = tmp_path / "env.list"
    live = f"STORAGE_TYPE=s3\nSTORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=media\n"  # on AWS itself
    env_list.write_text(live)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    result = run("cutover", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes")
    assert result.exit_code == 2 and "--move-from-current" in result.stderr, result.output
    assert env_list.read_text() == live


def test_an_empty_data_dir_is_not_switched_unless_asked(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=0, uploads_per_project=0, avatars=0, exports=0, legacy_flat=0,
                         odd_names=False, empty_files=False)
    (data.root / "media" / "upload").mkdir(parents=True, exist_ok=True)  # a Label Studio tree, no file in it
    env_list, text = _prepared(tmp_path, s3_bucket, endpoint=True)
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes")
    assert result.exit_code == 2 and "--allow-empty" in result.output, result.output
    assert env_list.read_text() == text
    result = run("cutover", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes")
    assert result.exit_code == 2 and "--allow-empty" in result.stderr and env_list.read_text() == text
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--yes", "--allow-empty")
    assert result.exit_code == 0, result.output
    assert env_list.read_text() == text + "STORAGE_TYPE=s3\n"


def test_after_a_failed_verify_the_last_pass_sends_what_is_missing(s3_env, s3_bucket, tmp_path):
    """--no-traverse trusts the journal; verify found objects missing or changed, so the journal must stop
    vouching for them, or the README's step 3 would fail the same way forever."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, odd_names=False, empty_files=False)
    env_list, _ = _prepared(tmp_path, s3_bucket, endpoint=True)
    assert run("copy", str(data.root), "--env-file", str(env_list)).exit_code == 0
    client = s3_bucket.client()
    gone, changed = sorted(data.files)[:2]
    client.delete_object(Bucket=s3_bucket.name, Key=f"media/{gone}")
    client.put_object(Bucket=s3_bucket.name, Key=f"media/{changed}", Body=b"\0" * data.files[changed])
    step3 = ("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list), "--no-traverse", "--yes",
             "--json")
    first = run(*step3)
    assert first.exit_code == 3, first.output
    second = run(*step3)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["copy"]["copied"] == 2
    objects = all_objects(client, s3_bucket.name, "media/")
    assert client.get_object(Bucket=s3_bucket.name, Key=f"media/{changed}")["Body"].read() == \
        data.path(changed).read_bytes() and f"media/{gone}" in objects


def test_bwlimit_holds_for_a_file_sent_in_one_put(s3_env, s3_bucket, tmp_path):
    """At 1 MiB/s, 3 MiB in one PUT cannot be done in much under 3 s (a lower bound: a slow machine only adds)."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "one.bin").write_bytes(b"x" * (3 * MiB))
    started = time.monotonic()
    result = run("copy", str(root), f"{s3_bucket.url}/bw", "--endpoint-url", s3_bucket.endpoint_url,
                 "--bwlimit", "1MiB", "-q")
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert took >= 2.5, f"3 MiB at --bwlimit 1MiB took {took:.2f} s"
