"""`lsmigrate plan`: the figures a planner relies on, checked against the file system itself."""

from __future__ import annotations

import json
import os

import pytest
from lsdata import make_data_dir
from s3util import run

from lsmigrate.plan import ListingOrderError, plan
from lsmigrate.scan import LocalFile, RemoteObject

MiB = 1024 * 1024


def _walk_totals(media):
    files = total = 0
    for directory, _, names in os.walk(media):
        for name in names:
            files += 1
            total += os.lstat(os.path.join(directory, name)).st_size
    return files, total


def test_plan_counts_match_the_tree_and_drop_to_zero_after_copy(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=3, uploads_per_project=30, large_files=(40 * MiB,))
    common = ("--data-dir", str(data.root), "--to", f"{s3_bucket.url}/f", "--endpoint-url", s3_bucket.endpoint_url)
    result = run("plan", *common, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    files, total = _walk_totals(data.media)
    assert (doc["total"]["files"], doc["total"]["bytes"]) == (files, total)
    assert doc["to_copy"] == {"files": files, "bytes": total}
    assert doc["multipart"]["files"] == 1 and doc["largest"][0]["bytes"] == 40 * MiB
    assert sum(t["files"] for t in doc["categories"].values()) == files
    assert set(doc["categories"]) >= {"avatars", "exports", "uploads/1", "uploads/(flat legacy names)"}
    assert doc["legacy_export"]["files"] >= 1 and doc["legacy_export"]["included"] is False
    assert doc["estimate"]["seconds"] > 0

    assert run("copy", str(data.root), f"{s3_bucket.url}/f", "--endpoint-url", s3_bucket.endpoint_url).exit_code == 0
    after = json.loads(run("plan", *common, "--json").stdout)
    assert after["to_copy"] == {"files": 0, "bytes": 0} and after["identical"]["files"] == files


def test_copy_dry_run_prints_the_plan_and_writes_nothing(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=5)
    result = run("copy", str(data.root), f"{s3_bucket.url}/f", "--endpoint-url", s3_bucket.endpoint_url, "--dry-run")
    assert result.exit_code == 0 and "To copy:" in result.stdout
    assert s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name).get("KeyCount", 0) == 0


def test_probe_measures_and_cleans_up(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=5)
    result = run("plan", "--data-dir", str(data.root), "--to", f"{s3_bucket.url}/f", "--endpoint-url",
                 s3_bucket.endpoint_url, "--probe", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["estimate"]["basis"] == "measured by --probe"
    assert s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name).get("KeyCount", 0) == 0


def test_legacy_export_is_copied_only_when_asked(s3_env, s3_bucket, tmp_path):
    data = make_data_dir(tmp_path / "ls", projects=1, uploads_per_project=3)
    url = f"{s3_bucket.url}/f"
    assert run("copy", str(data.root), url, "--endpoint-url", s3_bucket.endpoint_url).exit_code == 0
    keys = {o["Key"] for o in s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]}
    assert not any(k.startswith("f/legacy-export/") for k in keys)
    assert run("copy", str(data.root), url, "--endpoint-url", s3_bucket.endpoint_url,
               "--include-legacy-export").exit_code == 0
    keys = {o["Key"] for o in s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]}
    legacy = {k for k in keys if k.startswith("f/legacy-export/")}
    expected = {f"f/legacy-export/{p.relative_to(data.root / 'export').as_posix()}"
                for p in (data.root / "export").rglob("*") if p.is_file()}
    assert legacy == expected and legacy


def _listed(*rels):
    return [RemoteObject(rel, 1, f"etag-{rel}") for rel in rels]


def test_the_merge_refuses_a_listing_out_of_key_order_naming_the_key():
    with pytest.raises(ListingOrderError, match=r"destination listing is not in key order: 'a/c' came after 'b'"):
        list(plan([], _listed("a/b", "b", "a/c")))


def test_the_merge_refuses_a_listing_holding_a_key_twice_naming_it():
    source = [LocalFile("a", 1, 0, "/a"), LocalFile("b", 1, 0, "/b"), LocalFile("b", 1, 0, "/b")]
    with pytest.raises(ListingOrderError, match=r"source listing holds 'b' twice") as caught:
        list(plan(source, _listed("a", "b")))
    assert caught.value.fatal  # the run stops: nothing may be decided from such a listing
