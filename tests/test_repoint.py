"""A live deployment (STORAGE_TYPE already set) is never re-pointed silently: cutover and local-to-* refuse
(exit 2, the file byte-identical, also under --dry-run) unless --move-from-current, under which every object
at the current destination must be copied (sync) and verified at the new one before the switch."""

from __future__ import annotations

import json
import uuid

import pytest
from lsdata import make_data_dir
from s3util import all_objects, run


@pytest.fixture
def other_bucket(s3_bucket, _moto_client):
    name = f"new-{uuid.uuid4().hex[:12]}"
    _moto_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def live(s3_env, s3_bucket, tmp_path):
    """A data dir copied to s3_bucket/media, and an env.list that already serves from there."""
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=4, avatars=1, exports=1, legacy_flat=1,
                         odd_names=False)
    copied = run("copy", str(data.root), f"{s3_bucket.url}/media", "--endpoint-url", s3_bucket.endpoint_url, "-q")
    assert copied.exit_code == 0, copied.output
    env_list = tmp_path / "env.list"
    env_list.write_text("# Label Studio, switched to S3 last month\nSTORAGE_TYPE=s3\n"
                        f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\nSTORAGE_AWS_FOLDER=media\n"
                        f"STORAGE_AWS_ENDPOINT_URL={s3_bucket.endpoint_url}\n"
                        "STORAGE_AWS_ACCESS_KEY_ID=testing\nSTORAGE_AWS_SECRET_ACCESS_KEY=testing\n")
    return data, env_list


def _copy(data, url, endpoint):
    result = run("copy", str(data.root), url, "--endpoint-url", endpoint, "-q")
    assert result.exit_code == 0, result.output


def _unchanged(path, before: bytes) -> None:
    assert path.read_bytes() == before, "the file is byte-identical"
    assert not list(path.parent.glob(f"{path.name}.lsmigrate-backup-*")), "no backup: nothing was written"


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("change", ["bucket", "folder", "endpoint"])
def test_cutover_refuses_to_repoint_a_live_file(live, s3_bucket, other_bucket, change, dry_run):
    data, env_list = live
    endpoint = s3_bucket.endpoint_url
    if change == "bucket":
        url, says = f"s3://{other_bucket}/media", f"bucket {s3_bucket.name} -> {other_bucket}"
    elif change == "folder":
        url, says = f"{s3_bucket.url}/elsewhere", "folder media -> elsewhere"
    else:  # the same server under another name: a different endpoint all the same
        url, says = f"{s3_bucket.url}/media", "endpoint"
        endpoint = endpoint.replace("127.0.0.1", "localhost")
    _copy(data, url, endpoint)  # every file is verified there, so only the re-point itself can stop the switch
    before = env_list.read_bytes()
    result = run("cutover", "--data-dir", str(data.root), "--env-file", str(env_list), "--to", url,
                 "--endpoint-url", endpoint, "--yes", *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, result.output
    error = [line for line in result.stderr.splitlines() if line.startswith("lsmigrate: error:")]
    assert len(error) == 1 and "--move-from-current" in error[0] and says in error[0]
    assert "stop Label Studio serving every file" in error[0]
    _unchanged(env_list, before)


def test_local_to_refuses_to_repoint_before_sending_anything(live, s3_bucket, other_bucket, _moto_client):
    data, env_list = live
    before = env_list.read_bytes()
    result = run("local-to-s3", "--data-dir", str(data.root), "--env-file", str(env_list),
                 "--to", f"s3://{other_bucket}/media", "--yes")
    assert result.exit_code == 2, result.output
    assert "--move-from-current" in result.stderr and f"bucket {s3_bucket.name} -> {other_bucket}" in result.stderr
    assert all_objects(_moto_client, other_bucket) == {}, "nothing was copied to the new bucket"
    _unchanged(env_list, before)


def test_live_helm_values_are_not_repointed(live, s3_bucket, other_bucket, tmp_path):
    data, _ = live
    _copy(data, f"s3://{other_bucket}/media", s3_bucket.endpoint_url)
    values = tmp_path / "ls-values.yaml"
    values.write_text("global:\n  persistence:\n    enabled: true\n    type: s3\n    config:\n      s3:\n"
                      f"        bucket: {s3_bucket.name}\n        region: us-east-1\n        folder: media\n"
                      f"        endpointUrl: {s3_bucket.endpoint_url}\n")
    before = values.read_bytes()
    for extra in (["--dry-run"], ["--yes"]):
        result = run("cutover", "--data-dir", str(data.root), "--values", str(values),
                     "--to", f"s3://{other_bucket}/media", *extra)
        assert result.exit_code == 2, result.output
        assert "--move-from-current" in result.stderr
        _unchanged(values, before)


def test_move_from_current_syncs_the_bucket_then_switches(live, s3_bucket, other_bucket, _moto_client):
    data, env_list = live
    # Uploaded after the first switch: only in the bucket, never in the data dir. It must move too.
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="media/upload/1/after-the-switch.jpg", Body=b"late")
    expected = {key.removeprefix("media/"): _moto_client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
                for key in all_objects(_moto_client, s3_bucket.name, "media/")}
    assert len(expected) == len(data.files) + 1
    before = env_list.read_text()
    result = run("local-to-s3", "--env-file", str(env_list), "--to", f"s3://{other_bucket}/moved",
                 "--move-from-current", "--yes", "--json")  # no --data-dir: the bucket is the source
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["copy"]["copied"] == len(expected) and doc["verify"]["clean"]
    assert doc["verify"]["counts"]["ok"] == len(expected) and doc["cutover"]["switched"]
    moved = {key.removeprefix("moved/"): _moto_client.get_object(Bucket=other_bucket, Key=key)["Body"].read()
             for key in all_objects(_moto_client, other_bucket, "moved/")}
    assert moved == expected
    after = env_list.read_text()
    assert f"STORAGE_AWS_BUCKET_NAME={other_bucket}\n" in after and "STORAGE_AWS_FOLDER=moved\n" in after
    assert after.replace(other_bucket, s3_bucket.name).replace("=moved", "=media") == before
    assert len(all_objects(_moto_client, s3_bucket.name, "media/")) == len(expected), "the old bucket is untouched"


def test_move_gate_blocks_a_missing_or_different_object(live, s3_bucket, other_bucket, _moto_client):
    data, env_list = live
    endpoint = s3_bucket.endpoint_url
    sync = ("sync", f"{s3_bucket.url}/media", f"s3://{other_bucket}/moved", "--src-endpoint-url", endpoint,
            "--dst-endpoint-url", endpoint, "-q")
    assert run(*sync).exit_code == 0
    rels = sorted(rel for rel, size in data.files.items() if size > 0)
    missing, different = rels[0], rels[1]
    _moto_client.delete_object(Bucket=other_bucket, Key=f"moved/{missing}")
    _moto_client.put_object(Bucket=other_bucket, Key=f"moved/{different}", Body=b"x" * data.files[different])
    before = env_list.read_bytes()
    cutover = ("cutover", "--env-file", str(env_list), "--to", f"s3://{other_bucket}/moved", "--move-from-current")
    for extra in ("--dry-run", "--yes"):
        blocked = run(*cutover, extra)
        assert blocked.exit_code == 3, blocked.output
        assert f"missing: {missing}" in blocked.stderr and f"different: {different}" in blocked.stderr
        assert "not switching" in blocked.stderr
        _unchanged(env_list, before)

    assert run(*sync).exit_code == 0
    dry = run(*cutover, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"+STORAGE_AWS_BUCKET_NAME={other_bucket}" in dry.stdout
    _unchanged(env_list, before)
    switched = run(*cutover, "--yes", "--json")
    assert switched.exit_code == 0, switched.output
    assert json.loads(switched.stdout)["verify"]["counts"]["ok"] == len(data.files)
    assert f"STORAGE_AWS_BUCKET_NAME={other_bucket}\n" in env_list.read_text()


def test_move_from_current_needs_a_live_file(s3_env, s3_bucket, tmp_path):
    env_list = tmp_path / "env.list"
    env_list.write_text(f"STORAGE_AWS_BUCKET_NAME={s3_bucket.name}\n")  # prepared, not switched
    result = run("cutover", "--env-file", str(env_list), "--to", f"{s3_bucket.url}/x", "--move-from-current",
                 "--endpoint-url", s3_bucket.endpoint_url, "--yes")
    assert result.exit_code == 2 and "nothing to move from" in result.stderr
