"""`--executor dask`: a copy through a real LocalCluster with two worker processes, against moto."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time

import pytest
from lsdata import make_data_dir
from s3util import Recorder, all_objects, run, uploads_in

distributed = pytest.importorskip("distributed")

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster():
    # Workers are processes: they read credentials from their own environment, set before they start.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as local:
        yield local


def test_copy_on_a_cluster_is_complete_and_resumable(s3_env, s3_bucket, cluster, moto_server, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=3, uploads_per_project=40, large_files=(12 * MiB,))
    state = tmp_path / "journal.sqlite3"
    args = ("copy", str(data.root), f"{s3_bucket.url}/d", "--endpoint-url", s3_bucket.endpoint_url,
            "--executor", "dask", "--scheduler", cluster.scheduler_address, "--state", str(state),
            "--chunk-size", "5MiB", "--multipart-threshold", "6MiB", "--json")
    result = run(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["copied"] == len(data.files) and doc["failed"] == 0
    client = s3_bucket.client()
    for rel in data.files:
        body = client.get_object(Bucket=s3_bucket.name, Key=f"d/{rel}")["Body"].read()
        assert hashlib.md5(body).digest() == hashlib.md5(data.path(rel).read_bytes()).digest(), rel

    import sqlite3

    with sqlite3.connect(state) as db:
        verified = db.execute("SELECT count(*) FROM files WHERE status = 'verified'").fetchone()[0]
    assert verified == len(data.files), "the coordinator journaled every file the workers verified"

    recorder = Recorder(moto_server.endpoint_url)
    recorder.start()
    again = run(*args)
    assert again.exit_code == 0 and json.loads(again.stdout)["copied"] == 0
    assert uploads_in(recorder.stop()) == (0, 0)


def test_a_worker_killed_mid_run_does_not_lose_or_double_files(s3_env, s3_bucket, cluster, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=4, uploads_per_project=120, odd_names=False)
    client = distributed.Client(cluster.scheduler_address)
    pids = list(client.run(os.getpid).values())
    args = ("copy", str(data.root), f"{s3_bucket.url}/k", "--endpoint-url", s3_bucket.endpoint_url,
            "--executor", "dask", "--scheduler", cluster.scheduler_address, "--json", "--bwlimit", "4MiB")

    def kill_one_worker():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all_objects(s3_bucket.client(), s3_bucket.name, "k/"):
                os.kill(pids[0], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    result = run(*args)
    killer.join()
    client.close()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["copied"] == len(data.files) and doc["failed"] == 0
    assert set(all_objects(s3_bucket.client(), s3_bucket.name, "k/")) == {f"k/{rel}" for rel in data.files}
    verify = run("verify", str(data.root), f"{s3_bucket.url}/k", "--endpoint-url", s3_bucket.endpoint_url, "--json")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["clean"]


def test_plan_shows_the_cluster_split(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=2, uploads_per_project=300, large_files=(40 * MiB,))
    result = run("plan", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/p", "--endpoint-url",
                 s3_bucket.endpoint_url, "--executor", "dask", "--json")
    assert result.exit_code == 0, result.output
    split = json.loads(result.stdout)["cluster_split"]
    assert split["large_file_items"] == 1
    assert split["small_file_batches"] == -(-(len(data.files) - 1) // 256)


def test_sync_on_a_cluster_logs_every_file_to_the_json_log(s3_env, s3_bucket, cluster, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=10, odd_names=False)
    log = tmp_path / "sync.jsonl"
    result = run("sync", str(data.media), f"{s3_bucket.url}/s", "--endpoint-url", s3_bucket.endpoint_url,
                 "--executor", "dask", "--scheduler", cluster.scheduler_address, "--json-log", str(log), "--json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["path"] for e in events if e["event"] == "copied"} == set(data.files)
    assert events[-1]["event"] == "stats"
