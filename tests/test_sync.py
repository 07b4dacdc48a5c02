"""`lsmigrate sync` between clouds, for cron: incremental, deletes only on request, one run at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gcsfs
import pytest
from lsdata import make_data_dir
from s3util import all_objects, run

MiB = 1024 * 1024


@pytest.fixture
def clouds(s3_env, s3_bucket, fake_gcs, monkeypatch):
    """An S3 bucket filled by `lsmigrate copy` from a generated data dir, and an empty GCS bucket."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    gcs = gcsfs.GCSFileSystem(endpoint_url=fake_gcs.endpoint_url, token="anon", project="t", skip_instance_cache=True)
    name = f"sync{time.time_ns() % 10**12}"
    gcs.mkdir(name)
    return s3_bucket, gcs, name


def _seed(tmp_path, bucket, **kw):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=15, **kw)
    result = run("copy", str(data.root), f"{bucket.url}/m", "-q", "--chunk-size", "5MiB", "--multipart-threshold", "6MiB")
    assert result.exit_code == 0, result.output
    return data


def _sync(src, dst, *extra):
    result = run("sync", src, dst, "--json", "--chunk-size", "8MiB", "--multipart-threshold", "9MiB", *extra)
    return result, json.loads(result.stdout) if result.stdout.startswith("{") else None


def test_s3_to_gcs_incremental_changed_and_deletes(clouds, tmp_path):
    bucket, gcs, name = clouds
    data = _seed(tmp_path, bucket, large_files=(17 * MiB,))
    result, doc = _sync(f"{bucket.url}/m", f"gs://{name}/r")
    assert result.exit_code == 0, result.output
    assert doc["copied"] == len(data.files)
    assert doc["verified_by"] == {"server-md5": len(data.files)}, "GCS's own md5Hash of every object"
    for rel in data.files:
        assert gcs.cat_file(f"{name}/r/{rel}") == data.path(rel).read_bytes(), rel

    result, doc = _sync(f"{bucket.url}/m", f"gs://{name}/r")
    assert doc["copied"] == 0 and doc["skipped"] == len(data.files)
    assert sum(doc["verified_by"].values()) == len(data.files)

    client = bucket.client()
    rel = sorted(data.files)[3]
    client.put_object(Bucket=bucket.name, Key=f"m/{rel}", Body=b"changed at the source")
    gcs.pipe_file(f"{name}/r/extra-1.txt", b"x")
    gcs.pipe_file(f"{name}/r/extra-2.txt", b"y")
    result, doc = _sync(f"{bucket.url}/m", f"gs://{name}/r")
    assert doc["copied"] == 1 and gcs.cat_file(f"{name}/r/{rel}") == b"changed at the source"
    assert gcs.exists(f"{name}/r/extra-1.txt"), "no deletes without --delete"

    result, doc = _sync(f"{bucket.url}/m", f"gs://{name}/r", "--delete", "--max-delete", "1")
    assert result.exit_code == 1 and doc["deleted"] == 0 and "exceed --max-delete 1" in doc["delete_refused"]
    assert gcs.exists(f"{name}/r/extra-2.txt")

    log = tmp_path / "sync.jsonl"
    result, doc = _sync(f"{bucket.url}/m", f"gs://{name}/r", "--delete", "--max-delete", "2", "--json-log", str(log))
    assert result.exit_code == 0 and doc["deleted"] == 2
    gcs.invalidate_cache()
    assert not gcs.exists(f"{name}/r/extra-1.txt") and gcs.exists(f"{name}/r/{rel}")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(e.get("verified_by") for e in events if e["event"] in ("copied", "skipped", "identical"))
    assert {e["path"] for e in events if e["event"] == "deleted"} == {"extra-1.txt", "extra-2.txt"}
    assert events[-1]["event"] == "stats" and events[-1]["deleted"] == 2
    assert len(all_objects(client, bucket.name, "m/")) == len(data.files), "the source is never modified"


def test_filters(clouds, tmp_path):
    bucket, gcs, name = clouds
    data = _seed(tmp_path, bucket)
    result, doc = _sync(f"{bucket.url}/m", f"gs://{name}/f", "--include", "avatars/*", "--exclude", "*.jpg")
    assert result.exit_code == 0
    expected = {rel for rel in data.files if rel.startswith("avatars/") and not rel.endswith(".jpg")}
    assert doc["copied"] == len(expected) > 0


def test_local_to_s3_sync_is_incremental(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=10)
    url = f"{s3_bucket.url}/l"
    first, doc = _sync(str(data.root), url, "--endpoint-url", s3_bucket.endpoint_url)
    assert first.exit_code == 0 and doc["copied"] == len(data.files)
    again, doc = _sync(str(data.root), url, "--endpoint-url", s3_bucket.endpoint_url)
    assert again.exit_code == 0 and doc["copied"] == 0


def _spawn_sync(src, dst, env, *extra):
    return subprocess.Popen([sys.executable, "-m", "lsmigrate.cli", "sync", src, dst, "-q", *extra],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_syncs_at_once_one_exits_4_and_a_killed_lock_is_taken_over(clouds, tmp_path):
    bucket, gcs, name = clouds
    _seed(tmp_path, bucket, large_files=(24 * MiB,))
    env = {"XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]}
    slow = _spawn_sync(f"{bucket.url}/m", f"gs://{name}/lock", env, "--bwlimit", "4MiB")
    try:
        _wait_for_lock_of(slow, Path(env["XDG_STATE_HOME"]))  # then it holds it while it sends at 4 MiB/s
        second = run("sync", f"{bucket.url}/m", f"gs://{name}/lock")
        assert second.exit_code == 4, second.output
        assert "another lsmigrate run (pid" in second.stderr and str(slow.pid) in second.stderr
    finally:
        slow.kill()
        slow.wait()
    third = run("sync", f"{bucket.url}/m", f"gs://{name}/lock", "--json")
    assert third.exit_code == 0, third.output
    assert json.loads(third.stdout)["took_over_lock_of_pid"] == slow.pid


@pytest.mark.slow
def test_remote_to_remote_streams_in_bounded_memory(clouds, tmp_path):
    bucket, gcs, name = clouds
    size = 160 * MiB
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=1, odd_names=False, large_files=(size,))
    assert run("copy", str(data.root), f"{bucket.url}/big", "-q", "--chunk-size", "16MiB").exit_code == 0
    # What the interpreter and the three providers' libraries take before a byte is moved:
    baseline = _peak_rss(subprocess.Popen([sys.executable, "-c", "import lsmigrate.cli.app, lsmigrate.stores.s3.store, "
                                           "lsmigrate.stores.gcs.store, s3fs, gcsfs, botocore.session; "
                                           "botocore.session.get_session().create_client('s3', region_name='x')"]))
    proc = _spawn_sync(f"{bucket.url}/big", f"gs://{name}/big", {}, "--transfers", "2", "--chunk-size", "8MiB",
                       "--multipart-threshold", "8MiB")
    peak = _peak_rss(proc)
    assert proc.returncode == 0, proc.stderr.read()
    big = next(rel for rel, s in data.files.items() if s == size)
    assert gcs.info(f"{name}/big/{big}")["size"] == size
    print(f"remote-to-remote sync of a {size // MiB} MiB object: peak RSS {peak / MiB:.0f} MiB, "
          f"{(peak - baseline) / MiB:.0f} MiB above the {baseline / MiB:.0f} MiB the imports take")
    # A few copies of the chunks in flight (read buffer, request body, HTTP client), never the object:
    assert peak - baseline < size / 3, "memory must be bounded by transfers x chunk size, not the object size"


def _wait_for_lock_of(proc: subprocess.Popen, state: Path, timeout: float = 60) -> None:
    """Until `proc` has written itself into a lock file (start-up takes seconds on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for lock in (state / "lsmigrate" / "locks").glob("*.lock"):
            if f'"pid": {proc.pid},' in lock.read_text(errors="replace"):
                return
        time.sleep(0.05)
    raise AssertionError(f"pid {proc.pid} never took the lock")


def _peak_rss(proc: subprocess.Popen) -> int:
    """The process's high-water mark of resident memory (VmHWM), polled until it exits."""
    peak_kib = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak_kib = max(peak_kib, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    proc.wait()
    return peak_kib * 1024


def test_s3_to_s3_on_one_endpoint_copies_server_side(s3_env, s3_bucket, moto_server, tmp_path, monkeypatch):
    from s3util import Recorder, uploads_in

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    data = _seed(tmp_path, s3_bucket, large_files=(7 * MiB,))
    target = f"{s3_bucket.name}-copy"
    s3_bucket.client().create_bucket(Bucket=target)
    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()
    result, doc = _sync(f"{s3_bucket.url}/m", f"s3://{target}/r", "--endpoint-url", s3_bucket.endpoint_url,
                        "--src-endpoint-url", s3_bucket.endpoint_url)
    requests = recorder.stop()
    assert result.exit_code == 0, result.output
    assert doc["copied"] == len(data.files)
    assert uploads_in(requests) == (0, 0), "no object body and no part went through this machine"
    copies = [r for r in requests if r["method"] == "PUT" and "x-amz-copy-source" in {k.lower() for k in r["headers"]}]
    assert len(copies) == len(data.files)
    client = s3_bucket.client()
    for rel in data.files:
        assert client.get_object(Bucket=target, Key=f"r/{rel}")["Body"].read() == data.path(rel).read_bytes()
    again, doc = _sync(f"{s3_bucket.url}/m", f"s3://{target}/r", "--endpoint-url", s3_bucket.endpoint_url,
                       "--src-endpoint-url", s3_bucket.endpoint_url)
    assert doc["copied"] == 0
