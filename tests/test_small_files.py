"""Small local files are sent from the store's event loop in batches; anything unusual falls back to the
thread path. Against `rclone serve s3`, which checks every signature and Content-MD5."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from lsmigrate.endpoints import open_store, parse_url, with_overrides
from lsmigrate.engine.scheduling import Engine
from lsmigrate.engine.sizes import Settings
from lsmigrate.journal import Journal
from lsmigrate.origins import LocalOrigin
from lsmigrate.plan import plan
from lsmigrate.scan import scan_local
from lsmigrate.stores.base import StoreError

NAMES = ["plain.jpg", "with space.png", "ünïcødé 日本.txt", "odd #hash?q=1%25+plus&x.jpg", "empty.txt",
         "~tilde/'quote'(p)!*.bin"] + [f"many/img{i:03d}.jpg" for i in range(70)]


@pytest.fixture
def bucket(s3_env, rclone_s3):
    import boto3

    name = f"small-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=rclone_s3.endpoint_url, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return client, name, rclone_s3.endpoint_url


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "media"
    for i, name in enumerate(NAMES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"" if name == "empty.txt" else hashlib.sha256(name.encode()).digest() * (i + 1))
    return root


def run_engine(tree, client_bucket, tmp_path, monkeypatch, *, fail_once=()):
    client, name, endpoint = client_bucket
    store = open_store(with_overrides(parse_url(f"s3://{name}/dest"), endpoint_url=endpoint))
    threaded = []
    process = Engine._process

    def on_threads(self, action):
        threaded.append(action.rel)
        return process(self, action)

    monkeypatch.setattr(Engine, "_process", on_threads)
    put_async, failed = store.put_async, set()

    async def flaky(rel, data, md5):
        if rel in fail_once and rel not in failed:
            failed.add(rel)
            # What sending the file again can fix (a failed request was already retried by the store)
            raise StoreError(f"{rel}: the server's checksum differs (injected)", digest=True)
        return await put_async(rel, data, md5)

    store.put_async = flaky
    try:
        with Journal(tmp_path / "journal.sqlite3") as journal:
            stats = Engine(store, journal, Settings(transfers=4), origin=LocalOrigin()).run(
                plan(scan_local(tree), store.list(), journal.records()))
    finally:
        store.close()
    objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix="dest/"):
        for item in page.get("Contents", []):
            objects[item["Key"][len("dest/"):]] = client.get_object(Bucket=name, Key=item["Key"])["Body"].read()
    return stats, threaded, objects


def test_small_files_all_go_from_the_event_loop(tree, bucket, tmp_path, monkeypatch):
    stats, threaded, objects = run_engine(tree, bucket, tmp_path, monkeypatch)
    assert stats.ok and stats.copied == len(NAMES), stats.failures
    assert threaded == []
    assert objects == {name: (tree / name).read_bytes() for name in NAMES}


def test_a_failed_small_file_is_retried_on_the_thread_path(tree, bucket, tmp_path, monkeypatch):
    stats, threaded, objects = run_engine(tree, bucket, tmp_path, monkeypatch, fail_once={"with space.png"})
    assert stats.ok and stats.copied == len(NAMES), stats.failures
    assert threaded == ["with space.png"]
    assert objects == {name: (tree / name).read_bytes() for name in NAMES}
